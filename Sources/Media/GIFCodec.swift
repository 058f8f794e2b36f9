/// GIF decoding and encoding (GIF87a/GIF89a), with the LZW coder of `LZW`.
///
/// Read: every frame is composed onto a canvas of the logical screen size, honouring each frame's position, local or
/// global colour table, transparent index, interlacing, and disposal method (none/keep, restore to background,
/// restore to previous). The canvas starts black and "restore to background" clears to black (what browsers do,
/// which show the background as transparent; black is the Shapes background). A missing trailer, a frame whose data
/// ends early, a bad signature or block: `corrupt` errors naming the file.
///
/// Write: GIF89a, one global colour table, a NETSCAPE2.0 block that loops forever, and per frame a graphic control
/// block with the delay and "do not dispose". The palette (see `GIFPalette`) is exact when the whole clip has at
/// most 256 distinct colours (the Shapes data does: a few colours and their anti-aliased blends with black), else the
/// fixed 6×7×6 colour cube with optional 4×4 ordered (Bayer) dithering.
public enum GIFCodec {
    /// The frames of a GIF and their delays.
    public struct Animation: Sendable {
        /// The composed frames, all of the logical screen size.
        public var frames: [RGBImage]
        /// Each frame's delay in centiseconds, as stored (0 when the file gives none).
        public var delays: [Int]
    }

    /// How colours are chosen when writing.
    public enum Palette: Sendable, Equatable {
        /// Exact colours when the clip has at most 256 of them, else `.colorCube(dithering:)`.
        case automatic(dithering: Bool)
        /// Always the 252-colour 6×7×6 cube (6 levels of red, 7 of green, 6 of blue; green gets the extra level
        /// because the eye resolves it best), with or without 4×4 ordered dithering.
        case colorCube(dithering: Bool)
    }

    /// The frame delay in centiseconds for a frame rate: `round(100 / fps)`, at least 2, because most viewers
    /// replace delays of 0 or 1 with 10 (so 50 fps is the fastest rate a GIF plays reliably).
    public static func delay(framesPerSecond: Double) -> Int {
        guard framesPerSecond.isFinite, framesPerSecond > 0 else { return 10 }
        return max(2, min(65535, Int((100 / framesPerSecond).rounded())))
    }

    // MARK: - Decode

    /// Decodes a GIF file's bytes; `file` names it in errors.
    public static func decode(_ bytes: [UInt8], file: String) throws -> Animation {
        var reader = ByteReader(bytes, file: file)
        let magic = String(decoding: try reader.take(6, "the header"), as: UTF8.self)
        guard magic == "GIF87a" || magic == "GIF89a" else {
            throw MediaError.corrupt(file: file, reason: "not a GIF file (bad signature)")
        }
        let width = try reader.uint16LE("the logical screen descriptor")
        let height = try reader.uint16LE("the logical screen descriptor")
        let flags = try reader.byte("the logical screen descriptor")
        _ = try reader.take(2, "the logical screen descriptor")  // background index, aspect ratio
        guard width > 0, height > 0 else {
            throw MediaError.corrupt(file: file, reason: "logical screen size \(width)×\(height)")
        }
        var globalTable: [UInt8] = []
        if flags & 0x80 != 0 {
            globalTable = Array(try reader.take(3 << (Int(flags & 7) + 1), "the global colour table"))
        }
        var canvas = [UInt8](repeating: 0, count: width * height * 3)
        var animation = Animation(frames: [], delays: [])
        var delay = 0, transparent = -1, disposal = 0
        while true {
            let introducer = try reader.byte("the block list (no trailer)")
            switch introducer {
            case 0x3B:  // trailer
                guard !animation.frames.isEmpty else { throw MediaError.corrupt(file: file, reason: "no frames") }
                return animation
            case 0x21:  // extension
                let label = try reader.byte("an extension")
                let data = try subBlocks(&reader, "an extension")
                if label == 0xF9 {
                    guard data.count >= 4 else { throw MediaError.corrupt(file: file, reason: "short graphic control") }
                    disposal = Int(data[0] >> 2) & 7
                    delay = Int(data[1]) | Int(data[2]) << 8
                    transparent = data[0] & 1 != 0 ? Int(data[3]) : -1
                }
            case 0x2C:  // image
                let left = try reader.uint16LE("an image descriptor"), top = try reader.uint16LE("an image descriptor")
                let w = try reader.uint16LE("an image descriptor"), h = try reader.uint16LE("an image descriptor")
                let imageFlags = try reader.byte("an image descriptor")
                var table = globalTable
                if imageFlags & 0x80 != 0 {
                    table = Array(try reader.take(3 << (Int(imageFlags & 7) + 1), "a local colour table"))
                }
                guard !table.isEmpty else { throw MediaError.corrupt(file: file, reason: "frame without colour table") }
                let minimumCodeSize = Int(try reader.byte("image data"))
                let data = try subBlocks(&reader, "image data")
                var indices = try LZW.decode(data, minimumCodeSize: minimumCodeSize, count: w * h, file: file)
                if imageFlags & 0x40 != 0 { indices = deinterlace(indices, width: w, height: h) }
                let previous = canvas
                for y in 0..<h where top + y < height {
                    for x in 0..<w where left + x < width {
                        let index = Int(indices[y * w + x])
                        if index == transparent { continue }
                        guard index * 3 + 2 < table.count else {
                            throw MediaError.corrupt(file: file, reason: "colour index \(index) beyond the table")
                        }
                        let o = ((top + y) * width + left + x) * 3
                        canvas[o] = table[3 * index]
                        canvas[o + 1] = table[3 * index + 1]
                        canvas[o + 2] = table[3 * index + 2]
                    }
                }
                animation.frames.append(RGBImage(width: width, height: height, pixels: canvas))
                animation.delays.append(delay)
                if disposal == 2 {
                    for y in top..<min(height, top + h) {
                        for x in left..<min(width, left + w) {
                            let o = (y * width + x) * 3
                            canvas[o] = 0
                            canvas[o + 1] = 0
                            canvas[o + 2] = 0
                        }
                    }
                } else if disposal == 3 {
                    canvas = previous
                }
                delay = 0
                transparent = -1
                disposal = 0
            default:
                throw MediaError.corrupt(
                    file: file, reason: "unknown block 0x\(String(introducer, radix: 16)) at byte \(reader.position - 1)")
            }
        }
    }

    /// Concatenates data sub-blocks up to the zero-length terminator.
    static func subBlocks(_ reader: inout ByteReader, _ what: String) throws -> [UInt8] {
        var data: [UInt8] = []
        while true {
            let size = Int(try reader.byte(what))
            if size == 0 { return data }
            data += try reader.take(size, what)
        }
    }

    /// Reorders rows stored in GIF's four interlace passes into top-to-bottom order.
    static func deinterlace(_ indices: [UInt8], width: Int, height: Int) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: indices.count)
        var row = 0
        for (start, step) in [(0, 8), (4, 8), (2, 4), (1, 2)] {
            for y in stride(from: start, to: height, by: step) {
                out.replaceSubrange(y * width..<(y + 1) * width, with: indices[row * width..<(row + 1) * width])
                row += 1
            }
        }
        return out
    }

    // MARK: - Encode

    /// Encodes equally sized frames as an animated GIF that loops forever, each shown for `delay` centiseconds.
    public static func encode(_ frames: [RGBImage], delay: Int, palette: Palette = .automatic(dithering: true)) -> [UInt8] {
        precondition(!frames.isEmpty, "GIFCodec.encode: no frames")
        let (width, height) = (frames[0].width, frames[0].height)
        precondition(frames.allSatisfy { $0.width == width && $0.height == height }, "GIFCodec.encode: sizes differ")
        precondition(width <= 65535 && height <= 65535, "GIFCodec.encode: \(width)×\(height) exceeds 65535")

        let quantizer = ColorQuantizer(frames: frames, palette: palette)
        var table = quantizer.table
        var bits = 1
        while 1 << bits < table.count / 3 { bits += 1 }
        table += [UInt8](repeating: 0, count: (3 << bits) - table.count)

        var out = Array("GIF89a".utf8)
        out += le16(width) + le16(height)
        out += [0x80 | 0x70 | UInt8(bits - 1), 0, 0]  // global table, 8-bit colour resolution, table size; bg 0
        out += table
        // NETSCAPE2.0 application extension: loop count 0 = forever.
        out += [0x21, 0xFF, 11] + Array("NETSCAPE2.0".utf8) + [3, 1, 0, 0, 0]
        let minimumCodeSize = max(2, bits)
        for frame in frames {
            out += [0x21, 0xF9, 4, 1 << 2] + le16(delay) + [0, 0]  // disposal 1 (keep), no transparency
            out += [0x2C] + le16(0) + le16(0) + le16(width) + le16(height) + [0]
            out.append(UInt8(minimumCodeSize))
            let data = LZW.encode(quantizer.indices(frame), minimumCodeSize: minimumCodeSize)
            var start = 0
            while start < data.count {
                let n = min(255, data.count - start)
                out.append(UInt8(n))
                out += data[start..<start + n]
                start += n
            }
            out.append(0)
        }
        out.append(0x3B)
        return out
    }

    static func le16(_ v: Int) -> [UInt8] { [UInt8(v & 0xFF), UInt8(v >> 8 & 0xFF)] }
}
