import Foundation

/// Whole-file reads and atomic writes shared by the codecs.
enum MediaIO {
    /// The bytes of the file at `url`; throws `MediaError.io` naming it when it cannot be read.
    static func readBytes(_ url: URL) throws -> [UInt8] {
        do {
            return [UInt8](try Data(contentsOf: url))
        } catch {
            throw MediaError.io(file: url.path, reason: "cannot read: \(error.localizedDescription)")
        }
    }

    /// Writes `bytes` so that readers see the old file or the complete new one, never a partial one: Foundation's
    /// atomic write goes to a temporary file in the same directory and renames it over the target.
    static func writeAtomically(_ bytes: [UInt8], to url: URL) throws {
        do {
            try Data(bytes).write(to: url, options: .atomic)
        } catch {
            throw MediaError.io(file: url.path, reason: "cannot write: \(error.localizedDescription)")
        }
    }
}

/// A bounds-checked reader over a byte array; running off the end throws `MediaError.corrupt` naming the file.
struct ByteReader {
    let bytes: [UInt8]
    let file: String
    var position = 0

    init(_ bytes: [UInt8], file: String) {
        self.bytes = bytes
        self.file = file
    }

    var remaining: Int { bytes.count - position }

    mutating func byte(_ what: @autoclosure () -> String) throws -> UInt8 {
        guard position < bytes.count else { throw truncated(what()) }
        defer { position += 1 }
        return bytes[position]
    }

    mutating func take(_ count: Int, _ what: @autoclosure () -> String) throws -> ArraySlice<UInt8> {
        guard count >= 0, count <= remaining else { throw truncated(what()) }
        defer { position += count }
        return bytes[position..<position + count]
    }

    /// Little-endian 16-bit (GIF).
    mutating func uint16LE(_ what: @autoclosure () -> String) throws -> Int {
        let s = try take(2, what())
        return Int(s[s.startIndex]) | Int(s[s.startIndex + 1]) << 8
    }

    /// Big-endian 32-bit (PNG).
    mutating func uint32BE(_ what: @autoclosure () -> String) throws -> UInt32 {
        let s = try take(4, what())
        return s.reduce(0) { $0 << 8 | UInt32($1) }
    }

    func truncated(_ what: String) -> MediaError {
        .corrupt(file: file, reason: "file ends inside \(what) (at byte \(position) of \(bytes.count))")
    }
}
