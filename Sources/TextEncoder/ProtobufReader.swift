import Foundation

/// A minimal reader of the protocol-buffers wire format: enough to walk the fields of a message such as
/// SentencePiece's `ModelProto` without generated code or a protobuf dependency.
///
/// Only what a reader of known messages needs: varints, 32- and 64-bit fixed fields, length-delimited fields
/// (strings, bytes, nested messages). Groups (wire types 3 and 4, deprecated since proto2) are rejected. Every
/// malformed input (a varint past 10 bytes, a length past the end) throws instead of trapping.
struct ProtobufReader {
    /// A field's payload, by wire type.
    enum Value {
        /// Wire type 0.
        case varint(UInt64)
        /// Wire type 1 (little-endian 64 bits).
        case fixed64(UInt64)
        /// Wire type 2: the payload's byte range in the buffer.
        case lengthDelimited(Range<Int>)
        /// Wire type 5 (little-endian 32 bits).
        case fixed32(UInt32)
    }

    /// Why the bytes are not a valid message.
    struct Malformed: Error {
        /// What is wrong and at which byte offset.
        let reason: String
    }

    let bytes: [UInt8]
    private(set) var position: Int
    let end: Int

    /// A reader over `bytes[range]` (the whole buffer by default).
    init(_ bytes: [UInt8], range: Range<Int>? = nil) {
        self.bytes = bytes
        position = range?.lowerBound ?? 0
        end = range?.upperBound ?? bytes.count
    }

    /// The next field as (field number, value), or nil at the end of the message.
    mutating func next() throws -> (field: Int, value: Value)? {
        guard position < end else { return nil }
        let key = try readVarint()
        let field = Int(key >> 3)
        guard field > 0 else { throw Malformed(reason: "field number 0 at byte \(position)") }
        switch key & 7 {
        case 0: return (field, .varint(try readVarint()))
        case 1: return (field, .fixed64(try readFixed(8)))
        case 2:
            let length = try readVarint()
            guard length <= UInt64(end - position) else {
                throw Malformed(reason: "field \(field): length \(length) runs past the end at byte \(position)")
            }
            let range = position..<(position + Int(length))
            position += Int(length)
            return (field, .lengthDelimited(range))
        case 5: return (field, .fixed32(UInt32(try readFixed(4))))
        default: throw Malformed(reason: "field \(field): unsupported wire type \(key & 7) at byte \(position)")
        }
    }

    private mutating func readVarint() throws -> UInt64 {
        var result: UInt64 = 0
        for shift in stride(from: 0, to: 70, by: 7) {
            guard position < end else { throw Malformed(reason: "truncated varint at byte \(position)") }
            let byte = bytes[position]
            position += 1
            result |= UInt64(byte & 0x7f) << UInt64(shift)
            if byte & 0x80 == 0 { return result }
        }
        throw Malformed(reason: "varint longer than 10 bytes at byte \(position)")
    }

    private mutating func readFixed(_ count: Int) throws -> UInt64 {
        guard end - position >= count else { throw Malformed(reason: "truncated fixed field at byte \(position)") }
        var result: UInt64 = 0
        for i in 0..<count { result |= UInt64(bytes[position + i]) << UInt64(8 * i) }
        position += count
        return result
    }

    /// The UTF-8 string in `range`; throws when it is not valid UTF-8.
    func string(_ range: Range<Int>) throws -> String {
        guard let text = String(validating: bytes[range], as: UTF8.self) else {
            throw Malformed(reason: "invalid UTF-8 string at byte \(range.lowerBound)")
        }
        return text
    }
}
