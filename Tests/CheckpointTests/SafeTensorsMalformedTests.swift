import Checkpoint
import Foundation
import TensorCore
import XCTest

/// Untrusted input: every malformed file must throw an error naming the file (and key), never crash.
final class SafeTensorsMalformedTests: XCTestCase {
    /// A safetensors image with header text `header` (no padding) followed by `data`.
    private func image(_ header: String, data: [UInt8] = []) -> [UInt8] {
        withUnsafeBytes(of: UInt64(header.utf8.count).littleEndian) { Array($0) } + Array(header.utf8) + data
    }

    /// Opens `bytes` under the name "bad.safetensors"; it must fail with a message containing `fragments`.
    private func expectRejected(
        _ bytes: [UInt8], _ fragments: [String], file: StaticString = #filePath, line: UInt = #line
    ) {
        expectCheckpointError(["bad.safetensors"] + fragments, file: file, line: line) {
            _ = try SafeTensorsFile(bytes: bytes, name: "bad.safetensors")
        }
    }

    /// Opens and fully reads `bytes`; returns whether it opened. Must not crash.
    @discardableResult
    private func openAndReadAll(_ bytes: [UInt8]) -> Bool {
        guard let file = try? SafeTensorsFile(bytes: bytes, name: "fuzz.safetensors") else { return false }
        for name in file.names {
            for dtype in DType.allCases { _ = try? file.tensor(name, as: dtype) }
        }
        return true
    }

    func testEveryPrefixOfAValidFileThrows() throws {
        let valid = try smallValidFile()
        XCTAssertTrue(openAndReadAll(valid))
        for length in 0..<valid.count {
            do {
                _ = try SafeTensorsFile(bytes: Array(valid[0..<length]), name: "cut.safetensors")
                XCTFail("prefix of \(length) bytes was accepted")
            } catch let error as CheckpointError {
                XCTAssertTrue(error.description.hasPrefix("cut.safetensors: "), error.description)
            }
        }
    }

    func testTruncatedFilesOnDiskNameTheFile() throws {
        let valid = try smallValidFile()
        let dir = try makeTemporaryDirectory()
        let url = dir.appendingPathComponent("x.safetensors")
        let headerLength = Int(valid[0]) | Int(valid[1]) << 8
        try Data(valid.prefix(12)).write(to: url)
        expectCheckpointError(["x.safetensors: truncated: header says \(headerLength) bytes but file has 12"]) {
            _ = try SafeTensorsFile(url: url)
        }
        try Data(valid.dropLast(3)).write(to: url)
        expectCheckpointError(["x.safetensors: truncated:", "'c'"]) { _ = try SafeTensorsFile(url: url) }
        try Data(valid.prefix(5)).write(to: url)
        expectCheckpointError(["x.safetensors: truncated:", "5 bytes"]) { _ = try SafeTensorsFile(url: url) }
        try Data().write(to: url)
        expectCheckpointError(["x.safetensors: truncated:"]) { _ = try SafeTensorsFile(url: url) }
    }

    func testRandomBuffersNeverCrash() {
        var random = SeededBytes(seed: 2024)
        let alphabet = Array(#"{}[]":, 0123456789-+.eE"FBUI81632_dtypeshapedata_offsets__metadata__\"#.utf8)
        var opened = 0
        for trial in 0..<400 {
            let length = random.below(300)
            var bytes: [UInt8]
            switch trial % 3 {
            case 0:  // Pure noise.
                bytes = (0..<length).map { _ in random.byte() }
            case 1:  // A plausible header length, then noise.
                let headerLength = random.below(length + 8)
                bytes = withUnsafeBytes(of: UInt64(headerLength).littleEndian) { Array($0) }
                bytes += (0..<length).map { _ in random.byte() }
            default:  // A plausible header length, then JSON-like text.
                bytes = withUnsafeBytes(of: UInt64(length).littleEndian) { Array($0) }
                bytes += [UInt8(ascii: "{")] + (0..<length).map { _ in alphabet[random.below(alphabet.count)] }
            }
            if openAndReadAll(bytes) { opened += 1 }
        }
        XCTAssertLessThan(opened, 400)
    }

    func testSingleByteCorruptionsEitherThrowOrLoad() throws {
        let valid = try smallValidFile()
        var random = SeededBytes(seed: 99)
        var rejected = 0
        for _ in 0..<600 {
            var bytes = valid
            let position = random.below(bytes.count)
            bytes[position] = random.byte()
            if !openAndReadAll(bytes) { rejected += 1 }
        }
        // Every position of the header matters to some extent; data bytes can change freely.
        XCTAssertGreaterThan(rejected, 100)
        // Every byte value at every header position, to reach the rarer paths deterministically.
        let headerEnd = 8 + (Int(valid[0]) | Int(valid[1]) << 8)
        for position in stride(from: 0, to: headerEnd, by: 7) {
            for value in stride(from: 0, through: 255, by: 5) {
                var bytes = valid
                bytes[position] = UInt8(value)
                openAndReadAll(bytes)
            }
        }
    }

    func testAbsurdHeaderLength() {
        var bytes = withUnsafeBytes(of: UInt64(100_000_001).littleEndian) { Array($0) }
        bytes += Array("{}".utf8)
        expectRejected(bytes, ["header length 100000001", "limit"])
        expectRejected(
            withUnsafeBytes(of: UInt64.max.littleEndian) { Array($0) }, ["header length 18446744073709551615"])
        expectRejected(
            withUnsafeBytes(of: UInt64(1000).littleEndian) { Array($0) } + [1, 2, 3, 4],
            ["truncated: header says 1000 bytes but file has 12"])
    }

    func testHeaderSyntax() {
        expectRejected(image("  {}"), ["does not start with '{'"])
        expectRejected(image(""), ["does not start with '{'"])
        expectRejected(image("{\"a\":"), ["JSON error"])
        expectRejected(image("{} x"), ["JSON error", "after the JSON value"])
        expectRejected(image("[]"), ["does not start with '{'"])
        expectRejected(withUnsafeBytes(of: UInt64(4).littleEndian) { Array($0) } + [0x7B, 0xFF, 0xFE, 0x7D], ["UTF-8"])
        let deep = "{\"a\":" + String(repeating: "[", count: 10_000) + String(repeating: "]", count: 10_000) + "}"
        expectRejected(image(deep), ["nesting"])
        let duplicate =
            #"{"a":{"dtype":"F32","shape":[],"data_offsets":[0,4]},"a":{"dtype":"F32","shape":[],"data_offsets":[0,4]}}"#
        expectRejected(image(duplicate, data: [0, 0, 0, 0]), ["duplicate key 'a'"])
    }

    func testMalformedEntriesNameTheKey() {
        expectRejected(image(#"{"w":[1,2]}"#), ["tensor 'w'", "found Array"])
        expectRejected(
            image(#"{"w":{"shape":[1],"data_offsets":[0,4]}}"#, data: [0, 0, 0, 0]),
            ["tensor 'w'", "'dtype' is missing"])
        expectRejected(
            image(#"{"w":{"dtype":"F32","data_offsets":[0,4]}}"#, data: [0, 0, 0, 0]), ["tensor 'w'", "'shape'"])
        expectRejected(
            image(#"{"w":{"dtype":"F32","shape":[1]}}"#, data: [0, 0, 0, 0]), ["tensor 'w'", "'data_offsets'"])
        expectRejected(image(#"{"__metadata__":{"k":1}}"#), ["__metadata__", "'k'", "Int"])
        expectRejected(image(#"{"__metadata__":[]}"#), ["__metadata__"])
    }

    func testUnknownDType() {
        let header = #"{"layer.w":{"dtype":"F31","shape":[1],"data_offsets":[0,4]}}"#
        expectRejected(image(header, data: [0, 0, 0, 0]), ["tensor 'layer.w' has unknown dtype 'F31'"])
    }

    func testNegativeAndOverflowingShapes() {
        let negative = #"{"w":{"dtype":"F32","shape":[-1,4],"data_offsets":[0,4]}}"#
        expectRejected(image(negative, data: [0, 0, 0, 0]), ["tensor 'w'", "non-negative", "[-1, 4]"])
        let fractional = #"{"w":{"dtype":"F32","shape":[1.5],"data_offsets":[0,4]}}"#
        expectRejected(image(fractional, data: [0, 0, 0, 0]), ["tensor 'w'", "'shape'"])
        let huge = #"{"w":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,4]}}"#
        expectRejected(image(huge, data: [0, 0, 0, 0]), ["tensor 'w'", "too many elements"])
        let bits = #"{"w":{"dtype":"F64","shape":[1152921504606846976],"data_offsets":[0,4]}}"#
        expectRejected(image(bits, data: [0, 0, 0, 0]), ["tensor 'w'", "too large"])
        let beyondInt = #"{"w":{"dtype":"F32","shape":[99999999999999999999],"data_offsets":[0,4]}}"#
        expectRejected(image(beyondInt, data: [0, 0, 0, 0]), ["tensor 'w'", "'shape'"])
        let packed = #"{"w":{"dtype":"F4","shape":[3],"data_offsets":[0,2]}}"#
        expectRejected(image(packed, data: [0, 0]), ["tensor 'w'", "whole bytes"])
    }

    func testShapeAndSizeMismatch() {
        let header = #"{"blocks.0.attn.q_proj.weight":{"dtype":"F32","shape":[2,3],"data_offsets":[0,20]}}"#
        expectRejected(
            image(header, data: [UInt8](repeating: 0, count: 20)),
            ["tensor 'blocks.0.attn.q_proj.weight'", "hold 20 bytes", "[2, 3]", "needs 24"])
    }

    func testBadOffsets() {
        let zeros = [UInt8](repeating: 0, count: 16)
        expectRejected(
            image(#"{"w":{"dtype":"F32","shape":[1],"data_offsets":[8,4]}}"#, data: zeros),
            ["tensor 'w'", "end before"])
        expectRejected(
            image(#"{"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4,8]}}"#, data: zeros),
            ["tensor 'w'", "[begin, end]"])
        expectRejected(image(#"{"w":{"dtype":"F32","shape":[1],"data_offsets":[-4,0]}}"#, data: zeros), ["tensor 'w'"])
        // Out of range: past the end of the file.
        expectRejected(
            image(#"{"w":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}"#, data: [0, 0, 0, 0]),
            ["truncated", "'w'", "16", "4 data bytes"])
        // Overlap.
        let overlap =
            #"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}"#
        expectRejected(
            image(overlap, data: [UInt8](repeating: 0, count: 12)), ["data region", "'b'", "overlaps tensor 'a'"])
        // Gap.
        let gap =
            #"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}}"#
        expectRejected(image(gap, data: [UInt8](repeating: 0, count: 12)), ["data region", "bytes 4..<8", "'b'"])
        // Not starting at 0.
        expectRejected(image(#"{"w":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}"#, data: zeros), ["bytes 0..<4"])
        // Trailing bytes no tensor owns.
        expectRejected(
            image(#"{"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}"#, data: zeros),
            ["12 bytes after the last tensor"])
    }

    func testEdgeCasesThatAreValid() throws {
        // Zero-size tensors may share an offset; an empty header is a valid empty file; padding spaces are allowed.
        let zeroSized =
            #"{"a":{"dtype":"F32","shape":[0],"data_offsets":[0,0]},"b":{"dtype":"BF16","shape":[2,0],"data_offsets":[0,0]},"c":{"dtype":"U8","shape":[2],"data_offsets":[0,2]}}   "#
        let file = try SafeTensorsFile(bytes: image(zeroSized, data: [3, 250]), name: "ok.safetensors")
        XCTAssertEqual(file.names, ["a", "b", "c"])
        XCTAssertEqual(try file.tensor("b").shape, [2, 0])
        XCTAssertEqual(try file.tensor("c").scalars, [3, 250])
        XCTAssertEqual(try SafeTensorsFile(bytes: image("{}"), name: "empty").names, [])
        // Escapes and unknown extra fields in an entry (the reference implementation ignores them too).
        let escaped = #"{"\u00e9\n\"x\"":{"dtype":"F32","shape":[],"data_offsets":[0,4],"extra":null}}"#
        let unicode = try SafeTensorsFile(bytes: image(escaped, data: [0, 0, 0x80, 0x3F]), name: "u")
        XCTAssertEqual(try unicode.tensor("é\n\"x\"").item(), 1)
    }
}
