import CZlib

/// PNG decoding and encoding (ISO/IEC 15948), with zlib for the compressed stream and the CRCs.
///
/// Read: colour types grey, RGB, palette, grey+alpha and RGBA, at every bit depth the standard allows (1, 2, 4, 8,
/// 16), non-interlaced. Adam7-interlaced files are rejected with a clear `unsupported` error: no writer in this project
/// makes them and decoders of training data rarely meet them. Results are 8-bit RGB:
/// - 16-bit samples are rounded to 8 bits (`round(v · 255 / 65535)`): the tensors downstream are float32 in [-1, 1]
///   and the models never see more than 8-bit precision;
/// - grey is replicated to R, G and B; sub-byte grey is scaled to 0…255;
/// - alpha (an alpha channel or a `tRNS` chunk) is composited over **black**, the background of the Shapes data,
///   so a transparent pixel reads as black: `round(c · a / 255)`.
/// Every chunk's CRC is checked; a wrong signature, CRC, chunk order, size or compressed stream, and a file that ends
/// before `IEND`, are `corrupt` errors naming the file.
///
/// Write: 8-bit RGB, non-interlaced, one `IDAT` chunk compressed at zlib's default level, each row filtered with the
/// filter of least absolute sum (the heuristic the PNG specification recommends).
public enum PNGCodec {
    static let signature: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]

    /// Decodes a PNG file's bytes; `file` names it in errors.
    public static func decode(_ bytes: [UInt8], file: String) throws -> RGBImage {
        var reader = ByteReader(bytes, file: file)
        guard bytes.count >= 8, Array(bytes[0..<8]) == signature else {
            throw MediaError.corrupt(file: file, reason: "not a PNG file (bad signature)")
        }
        reader.position = 8
        var header: Header?
        var palette: [UInt8] = []
        var transparency: [UInt8] = []
        var compressed: [UInt8] = []
        var sawEnd = false
        while !sawEnd {
            let length = Int(try reader.uint32BE("a chunk length"))
            guard length < 1 << 31 else { throw MediaError.corrupt(file: file, reason: "chunk length \(length)") }
            let typeAndData = try reader.take(4 + length, "a chunk")
            let stored = try reader.uint32BE("a chunk CRC")
            let type = String(decoding: typeAndData.prefix(4), as: UTF8.self)
            let computed = typeAndData.withUnsafeBufferPointer { crc32(0, $0.baseAddress, uInt($0.count)) }
            guard UInt32(computed) == stored else {
                throw MediaError.corrupt(file: file, reason: "CRC mismatch in chunk \(type)")
            }
            let data = Array(typeAndData.dropFirst(4))
            if header == nil && type != "IHDR" {
                throw MediaError.corrupt(file: file, reason: "first chunk is \(type), not IHDR")
            }
            switch type {
            case "IHDR": header = try Header(data, file: file)
            case "PLTE": palette = data
            case "tRNS": transparency = data
            case "IDAT": compressed += data
            case "IEND": sawEnd = true
            default:
                // Ancillary chunks (lower-case first letter) may be skipped; an unknown critical one may not.
                if typeAndData[typeAndData.startIndex] & 0x20 == 0 {
                    throw MediaError.unsupported(file: file, reason: "unknown critical chunk \(type)")
                }
            }
        }
        guard let header else { throw MediaError.corrupt(file: file, reason: "no IHDR chunk") }
        guard !compressed.isEmpty else { throw MediaError.corrupt(file: file, reason: "no IDAT chunk") }
        if header.colorType == 3 && (palette.isEmpty || palette.count % 3 != 0 || palette.count > 768) {
            throw MediaError.corrupt(file: file, reason: "palette image with a missing or malformed PLTE chunk")
        }
        let raw = try inflate(compressed, expected: header.height * (1 + header.rowBytes), file: file)
        let rows = try unfilter(raw, header: header, file: file)
        return try convert(rows, header: header, palette: palette, transparency: transparency, file: file)
    }

    /// Encodes an 8-bit RGB image as PNG bytes.
    public static func encode(_ image: RGBImage) throws -> [UInt8] {
        let rowBytes = image.width * 3
        var filtered = [UInt8](repeating: 0, count: image.height * (rowBytes + 1))
        var previous = [UInt8](repeating: 0, count: rowBytes)
        var candidate = [UInt8](repeating: 0, count: rowBytes)
        var best = [UInt8](repeating: 0, count: rowBytes)
        for y in 0..<image.height {
            let row = Array(image.pixels[y * rowBytes..<(y + 1) * rowBytes])
            var bestType: UInt8 = 0
            var bestCost = Int.max
            for type in UInt8(0)...4 {
                applyFilter(type, row: row, previous: previous, bpp: 3, into: &candidate)
                // Sum of the bytes read as signed values: small residuals compress well.
                let cost = candidate.reduce(0) { $0 + Int(Swift.abs(Int(Int8(bitPattern: $1)))) }
                if cost < bestCost { bestCost = cost; bestType = type; swap(&best, &candidate) }
            }
            filtered[y * (rowBytes + 1)] = bestType
            filtered.replaceSubrange(y * (rowBytes + 1) + 1..<(y + 1) * (rowBytes + 1), with: best)
            previous = row
        }
        var out = signature
        var ihdr = bigEndian(UInt32(image.width)) + bigEndian(UInt32(image.height))
        ihdr += [8, 2, 0, 0, 0]  // 8-bit, RGB, deflate, adaptive filtering, no interlace
        appendChunk("IHDR", ihdr, to: &out)
        appendChunk("IDAT", try deflate(filtered), to: &out)
        appendChunk("IEND", [], to: &out)
        return out
    }

    // MARK: - Header

    struct Header {
        let width: Int, height: Int, bitDepth: Int, colorType: Int
        var channels: Int { [0: 1, 2: 3, 3: 1, 4: 2, 6: 4][colorType]! }
        var bitsPerPixel: Int { channels * bitDepth }
        var rowBytes: Int { (width * bitsPerPixel + 7) / 8 }
        /// Bytes per complete pixel for the filters (at least 1).
        var filterStride: Int { max(1, bitsPerPixel / 8) }

        init(_ data: [UInt8], file: String) throws {
            guard data.count == 13 else { throw MediaError.corrupt(file: file, reason: "IHDR has \(data.count) bytes") }
            func u32(_ i: Int) -> Int { data[i..<i + 4].reduce(0) { $0 << 8 | Int($1) } }
            width = u32(0)
            height = u32(4)
            bitDepth = Int(data[8])
            colorType = Int(data[9])
            guard width > 0, height > 0, width <= 1 << 16, height <= 1 << 16 else {
                throw MediaError.unsupported(file: file, reason: "image size \(width)×\(height)")
            }
            let allowed: [Int: [Int]] = [0: [1, 2, 4, 8, 16], 2: [8, 16], 3: [1, 2, 4, 8], 4: [8, 16], 6: [8, 16]]
            guard let depths = allowed[colorType], depths.contains(bitDepth) else {
                throw MediaError.corrupt(file: file, reason: "colour type \(colorType) with bit depth \(bitDepth)")
            }
            guard data[10] == 0, data[11] == 0 else {
                throw MediaError.corrupt(file: file, reason: "compression \(data[10]) / filter method \(data[11])")
            }
            guard data[12] == 0 else {
                throw MediaError.unsupported(
                    file: file, reason: data[12] == 1 ? "interlaced (Adam7) PNG" : "interlace method \(data[12])")
            }
        }
    }

    // MARK: - zlib

    static func inflate(_ compressed: [UInt8], expected: Int, file: String) throws -> [UInt8] {
        // One byte of slack: a stream that inflates to more than the image needs fails instead of being cut.
        var output = [UInt8](repeating: 0, count: expected + 1)
        var length = uLongf(output.count)
        let status = output.withUnsafeMutableBufferPointer { out in
            compressed.withUnsafeBufferPointer { src in
                uncompress(out.baseAddress, &length, src.baseAddress, uLong(src.count))
            }
        }
        switch status {
        case Z_OK: break
        case Z_DATA_ERROR: throw MediaError.corrupt(file: file, reason: "bad compressed image data")
        case Z_BUF_ERROR:
            throw MediaError.corrupt(file: file, reason: "compressed image data truncated or larger than the image")
        default: throw MediaError.corrupt(file: file, reason: "zlib error \(status) in image data")
        }
        guard Int(length) == expected else {
            throw MediaError.corrupt(file: file, reason: "image data has \(length) bytes, expected \(expected)")
        }
        output.removeLast()
        return output
    }

    static func deflate(_ data: [UInt8]) throws -> [UInt8] {
        var output = [UInt8](repeating: 0, count: Int(compressBound(uLong(data.count))))
        var length = uLongf(output.count)
        let status = output.withUnsafeMutableBufferPointer { out in
            data.withUnsafeBufferPointer { src in
                compress2(out.baseAddress, &length, src.baseAddress, uLong(src.count), Z_DEFAULT_COMPRESSION)
            }
        }
        precondition(status == Z_OK, "PNG: zlib compress2 failed with \(status)")
        output.removeSubrange(Int(length)...)
        return output
    }

    // MARK: - Filters

    /// Undoes the per-row filters; returns the rows without their filter bytes.
    static func unfilter(_ raw: [UInt8], header: Header, file: String) throws -> [UInt8] {
        let rowBytes = header.rowBytes, bpp = header.filterStride
        var out = [UInt8](repeating: 0, count: header.height * rowBytes)
        for y in 0..<header.height {
            let type = raw[y * (rowBytes + 1)]
            let src = y * (rowBytes + 1) + 1, dst = y * rowBytes
            for x in 0..<rowBytes {
                let a = x >= bpp ? Int(out[dst + x - bpp]) : 0
                let b = y > 0 ? Int(out[dst - rowBytes + x]) : 0
                let c = (x >= bpp && y > 0) ? Int(out[dst - rowBytes + x - bpp]) : 0
                let predictor: Int
                switch type {
                case 0: predictor = 0
                case 1: predictor = a
                case 2: predictor = b
                case 3: predictor = (a + b) / 2
                case 4: predictor = paeth(a, b, c)
                default: throw MediaError.corrupt(file: file, reason: "row \(y) has filter type \(type)")
                }
                out[dst + x] = raw[src + x] &+ UInt8(truncatingIfNeeded: predictor)
            }
        }
        return out
    }

    static func applyFilter(_ type: UInt8, row: [UInt8], previous: [UInt8], bpp: Int, into out: inout [UInt8]) {
        for x in 0..<row.count {
            let a = x >= bpp ? Int(row[x - bpp]) : 0
            let b = Int(previous[x])
            let c = x >= bpp ? Int(previous[x - bpp]) : 0
            let predictor: Int
            switch type {
            case 0: predictor = 0
            case 1: predictor = a
            case 2: predictor = b
            case 3: predictor = (a + b) / 2
            default: predictor = paeth(a, b, c)
            }
            out[x] = row[x] &- UInt8(truncatingIfNeeded: predictor)
        }
    }

    @inline(__always)
    static func paeth(_ a: Int, _ b: Int, _ c: Int) -> Int {
        let p = a + b - c
        let pa = Swift.abs(p - a), pb = Swift.abs(p - b), pc = Swift.abs(p - c)
        if pa <= pb && pa <= pc { return a }
        return pb <= pc ? b : c
    }

    // MARK: - Samples to RGB

    static func convert(
        _ rows: [UInt8], header: Header, palette: [UInt8], transparency: [UInt8], file: String
    ) throws -> RGBImage {
        let (w, h, depth) = (header.width, header.height, header.bitDepth)
        let rowBytes = header.rowBytes, channels = header.channels
        let maxSample = (1 << depth) - 1
        /// Sample `i` (channel-interleaved index within the row) of row `y`, at full precision.
        func sample(_ y: Int, _ i: Int) -> Int {
            let base = y * rowBytes
            switch depth {
            case 8: return Int(rows[base + i])
            case 16: return Int(rows[base + 2 * i]) << 8 | Int(rows[base + 2 * i + 1])
            default:
                let bit = i * depth
                let byte = Int(rows[base + bit / 8])
                return (byte >> (8 - depth - bit % 8)) & maxSample
            }
        }
        /// A sample scaled to 0…1.
        func unit(_ s: Int) -> Double { Double(s) / Double(maxSample) }
        func toByte(_ v: Double) -> UInt8 { UInt8(max(0, min(255, (v * 255).rounded()))) }

        // Colour-key transparency for grey and RGB (a tRNS chunk holding one 16-bit sample per channel).
        var key: [Int]? = nil
        if (header.colorType == 0 || header.colorType == 2) && !transparency.isEmpty {
            guard transparency.count == 2 * channels else {
                throw MediaError.corrupt(file: file, reason: "tRNS chunk of \(transparency.count) bytes")
            }
            key = (0..<channels).map { Int(transparency[2 * $0]) << 8 | Int(transparency[2 * $0 + 1]) }
        }
        var pixels = [UInt8](repeating: 0, count: w * h * 3)
        for y in 0..<h {
            for x in 0..<w {
                let o = (y * w + x) * 3
                var rgb: (Double, Double, Double)
                var alpha = 1.0
                switch header.colorType {
                case 3:
                    let index = sample(y, x)
                    guard index * 3 + 2 < palette.count else {
                        throw MediaError.corrupt(file: file, reason: "palette index \(index) out of range")
                    }
                    rgb = (Double(palette[3 * index]) / 255, Double(palette[3 * index + 1]) / 255,
                           Double(palette[3 * index + 2]) / 255)
                    if index < transparency.count { alpha = Double(transparency[index]) / 255 }
                    // Palette entries are always 8-bit: write them exactly.
                    if alpha == 1 {
                        pixels[o] = palette[3 * index]
                        pixels[o + 1] = palette[3 * index + 1]
                        pixels[o + 2] = palette[3 * index + 2]
                        continue
                    }
                case 0, 4:
                    let s = sample(y, x * channels)
                    rgb = (unit(s), unit(s), unit(s))
                    if channels == 2 { alpha = unit(sample(y, x * 2 + 1)) }
                    if let key, s == key[0] { alpha = 0 }
                default:  // 2, 6
                    let r = sample(y, x * channels), g = sample(y, x * channels + 1), b = sample(y, x * channels + 2)
                    rgb = (unit(r), unit(g), unit(b))
                    if channels == 4 { alpha = unit(sample(y, x * 4 + 3)) }
                    if let key, r == key[0], g == key[1], b == key[2] { alpha = 0 }
                }
                pixels[o] = toByte(rgb.0 * alpha)
                pixels[o + 1] = toByte(rgb.1 * alpha)
                pixels[o + 2] = toByte(rgb.2 * alpha)
            }
        }
        return RGBImage(width: w, height: h, pixels: pixels)
    }

    // MARK: - Chunks

    static func bigEndian(_ v: UInt32) -> [UInt8] { [UInt8(v >> 24), UInt8(v >> 16 & 0xFF), UInt8(v >> 8 & 0xFF), UInt8(v & 0xFF)] }

    static func appendChunk(_ type: String, _ data: [UInt8], to out: inout [UInt8]) {
        let typeAndData = Array(type.utf8) + data
        let crc = typeAndData.withUnsafeBufferPointer { crc32(0, $0.baseAddress, uInt($0.count)) }
        out += bigEndian(UInt32(data.count)) + typeAndData + bigEndian(UInt32(crc))
    }
}
