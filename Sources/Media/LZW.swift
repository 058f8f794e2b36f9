/// GIF's variable-width LZW (codes of 3 to 12 bits, least significant bit first, clear and end codes, no "early
/// change"), as in the GIF89a specification, appendix F.
///
/// The code width grows when the next code to be assigned reaches `1 << width`; when all 4096 codes are taken the
/// encoder emits a clear code and starts again, and the decoder stops adding codes until it reads one (a "deferred
/// clear", which valid files from other encoders may use).
enum LZW {
    static let maxCodes = 4096

    /// Compresses `indices` (each below `1 << minimumCodeSize`).
    static func encode(_ indices: [UInt8], minimumCodeSize: Int) -> [UInt8] {
        let clear = 1 << minimumCodeSize, end = clear + 1
        var writer = BitWriter()
        var width = minimumCodeSize + 1
        var next = end + 1
        // (prefix code << 8 | byte) → code. Reset on every clear.
        var table = [Int: Int](minimumCapacity: maxCodes)
        writer.write(clear, width: width)
        guard var prefix = indices.first.map(Int.init) else {
            writer.write(end, width: width)
            return writer.finish()
        }
        for byte in indices.dropFirst() {
            let key = prefix << 8 | Int(byte)
            if let code = table[key] {
                prefix = code
                continue
            }
            writer.write(prefix, width: width)
            if next < maxCodes {
                table[key] = next
                // The decoder, one step behind, widens when its next code reaches 1 << width: match it here.
                if next == 1 << width { width += 1 }
                next += 1
            }
            if next == maxCodes {
                writer.write(clear, width: width)
                table.removeAll(keepingCapacity: true)
                width = minimumCodeSize + 1
                next = end + 1
            }
            prefix = Int(byte)
        }
        writer.write(prefix, width: width)
        writer.write(end, width: width)
        return writer.finish()
    }

    /// Decompresses into exactly `count` indices. Missing data is an error; data after the pixels needed (or after
    /// the end code) is ignored, as every GIF reader does. `file` names the file in errors.
    static func decode(_ data: [UInt8], minimumCodeSize: Int, count: Int, file: String) throws -> [UInt8] {
        guard (2...8).contains(minimumCodeSize) else {
            throw MediaError.corrupt(file: file, reason: "LZW minimum code size \(minimumCodeSize)")
        }
        let clear = 1 << minimumCodeSize, end = clear + 1
        var prefix = [Int](repeating: 0, count: maxCodes)
        var suffix = [UInt8](repeating: 0, count: maxCodes)
        var first = [UInt8](repeating: 0, count: maxCodes)
        var length = [Int](repeating: 0, count: maxCodes)
        for i in 0..<clear {
            suffix[i] = UInt8(i)
            first[i] = UInt8(i)
            length[i] = 1
        }
        var width = minimumCodeSize + 1
        var next = end + 1
        var last = -1
        var output = [UInt8](repeating: 0, count: count)
        var written = 0
        var bitBuffer = 0, bitCount = 0, position = 0
        while written < count {
            while bitCount < width {
                guard position < data.count else {
                    throw MediaError.corrupt(file: file, reason: "image data ends after \(written) of \(count) pixels")
                }
                bitBuffer |= Int(data[position]) << bitCount
                position += 1
                bitCount += 8
            }
            let code = bitBuffer & ((1 << width) - 1)
            bitBuffer >>= width
            bitCount -= width
            if code == clear {
                width = minimumCodeSize + 1
                next = end + 1
                last = -1
                continue
            }
            if code == end { break }
            let entry: Int
            if code < next && (code < clear || code > end) {
                entry = code
                if last >= 0 && next < maxCodes {
                    prefix[next] = last
                    suffix[next] = first[code]
                    first[next] = first[last]
                    length[next] = length[last] + 1
                    next += 1
                }
            } else if code == next && last >= 0 && next < maxCodes {
                // The "KwKwK" case: the code being defined is the previous string plus its own first byte.
                prefix[next] = last
                suffix[next] = first[last]
                first[next] = first[last]
                length[next] = length[last] + 1
                next += 1
                entry = code
            } else {
                throw MediaError.corrupt(file: file, reason: "invalid LZW code \(code) (next free code \(next))")
            }
            // Write the string backwards from its last byte, clipped to the pixels still needed.
            let n = length[entry]
            var c = entry
            for i in stride(from: n - 1, through: 0, by: -1) {
                if written + i < count { output[written + i] = suffix[c] }
                c = prefix[c]
            }
            written += n
            last = entry
            if next == 1 << width && width < 12 { width += 1 }
        }
        guard written >= count else {
            throw MediaError.corrupt(file: file, reason: "image data ends after \(written) of \(count) pixels")
        }
        return output
    }
}

/// Packs codes least significant bit first.
struct BitWriter {
    private var bytes: [UInt8] = []
    private var buffer = 0, count = 0

    mutating func write(_ code: Int, width: Int) {
        buffer |= code << count
        count += width
        while count >= 8 {
            bytes.append(UInt8(buffer & 0xFF))
            buffer >>= 8
            count -= 8
        }
    }

    mutating func finish() -> [UInt8] {
        if count > 0 { bytes.append(UInt8(buffer & 0xFF)) }
        buffer = 0
        count = 0
        return bytes
    }
}
