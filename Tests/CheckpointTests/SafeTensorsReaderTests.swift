import Checkpoint
import Foundation
import TensorCore
import TestSupport
import XCTest

/// Reading the Python-written fixtures: every dtype, metadata, conversions and lookups.
final class SafeTensorsReaderTests: XCTestCase {
    func testReadsEveryDTypeLikePyTorch() throws {
        let file = try SafeTensorsFile(url: CheckpointFixtures.url("dtypes.safetensors"))
        let expected = try SafeTensorsFile(url: CheckpointFixtures.url("dtypes_expected.safetensors"))
        XCTAssertEqual(
            file.names, ["bf16", "bool", "empty", "f16", "f32", "f64", "i16", "i32", "i64", "i8", "scalar", "u8"])
        XCTAssertNil(file.metadata)
        for name in file.names where name != "f64" {
            let actual = try file.tensor(name)
            let reference = try expected.tensor(name)
            XCTAssertEqual(actual.dtype, .float32, name)
            XCTAssertEqual(actual.shape, reference.shape, name)
            // Widening to float32 is exact for all these types: compare bits (NaN, ±0 and ±inf included).
            XCTAssertEqual(bitPatterns(actual), bitPatterns(reference), name)
        }
        XCTAssertEqual(bitPatterns(try file.tensor("f64")), bitPatterns(try expected.tensor("f64_as_f32")))
        let f64 = try file.tensor("f64", as: .float64)
        XCTAssertEqual(f64.dtype, .float64)
        XCTAssertEqual(f64.doubleScalars, try expected.tensor("f64", as: .float64).doubleScalars)
        XCTAssertEqual(f64.doubleScalars[0], 1.0 / 3.0)
        XCTAssertEqual(try file.tensor("scalar").shape, [])
        XCTAssertEqual(try file.tensor("scalar").item(), 2.5)
        XCTAssertEqual(try file.tensor("empty").shape, [0, 3])
        XCTAssertEqual(try file.tensor("i64").scalars, [0, -1, 1_099_511_627_776, -1_048_576])
        XCTAssertEqual(try file.tensor("bool").scalars, [1, 0, 0, 1])
    }

    func testInfoReportsStoredDTypeShapeAndOffsets() throws {
        let file = try SafeTensorsFile(url: CheckpointFixtures.url("dtypes.safetensors"))
        let bf16 = try file.info("bf16")
        XCTAssertEqual(bf16.dtype, .bf16)
        XCTAssertEqual(bf16.dtype.rawValue, "BF16")
        XCTAssertEqual(bf16.shape, [4, 5])
        XCTAssertEqual(bf16.byteCount, 40)
        XCTAssertEqual(try file.info("i8").dtype, .i8)
        XCTAssertTrue(file.contains("f16"))
        XCTAssertFalse(file.contains("F16"))
        XCTAssertEqual(file.headerLength % 8, 0)
    }

    func testHalfTypesCanBeReadRawAndMatchOurRounding() throws {
        let file = try SafeTensorsFile(url: CheckpointFixtures.url("dtypes.safetensors"))
        let expected = try SafeTensorsFile(url: CheckpointFixtures.url("dtypes_expected.safetensors"))
        for (name, dtype) in [("bf16", DType.bfloat16), ("f16", .float16)] {
            let raw = try file.tensor(name, as: dtype)
            XCTAssertEqual(raw.dtype, dtype)
            let storedBytes = try file.withRawBytes(name) { Array($0) }
            XCTAssertEqual(storageBytes(raw), storedBytes, "\(name) read raw is a bit copy")
            // TensorCore's rounding of the float32 sources gives torch's bits (ties to even, overflow, subnormals).
            // NaN only has to stay NaN: torch's vectorised bf16 conversion writes 0xFFFF, its scalar one 0x7FC0.
            let source = try expected.tensor("\(name)_source")
            let ours = source.to(dtype), theirs = try file.tensor(name, as: dtype)
            let oursBits = ours.storage.pointer(as: UInt16.self), theirsBits = theirs.storage.pointer(as: UInt16.self)
            var nanCount = 0
            for i in 0..<source.count {
                if source.scalars[i].isNaN {
                    nanCount += 1
                    XCTAssertTrue(ours.scalars[i].isNaN && theirs.scalars[i].isNaN, "\(name)[\(i)] NaN")
                } else {
                    XCTAssertEqual(oursBits[i], theirsBits[i], "\(name)[\(i)] = \(source.scalars[i]) rounds like torch")
                }
            }
            XCTAssertEqual(nanCount, 1)
            // Reading as another narrow type converts through float32.
            let other: DType = dtype == .bfloat16 ? .float16 : .bfloat16
            XCTAssertEqual(
                storageBytes(try file.tensor(name, as: other)), storageBytes(try file.tensor(name).to(other)))
        }
        XCTAssertEqual(try file.tensor("f32", as: .bfloat16).dtype, .bfloat16)
        expectClose(try file.tensor("f32", as: .float64), try file.tensor("f32"), rtol: 0, atol: 0, "f32 as f64")
    }

    func testMetadataIsRead() throws {
        let file = try SafeTensorsFile(url: CheckpointFixtures.url("metadata.safetensors"))
        XCTAssertEqual(
            file.metadata,
            ["format": "pt", "step": "1200", "note": "say \"hi\" \\ back\nslash / \u{01} héllo ✓"])
        XCTAssertEqual(try file.tensor("weight").scalars, [1, 2, 3, 4])
    }

    func testMissingKeyNamesFileAndKey() throws {
        let file = try SafeTensorsFile(url: CheckpointFixtures.url("dtypes.safetensors"))
        expectCheckpointError(["dtypes.safetensors", "'nope'"]) { _ = try file.tensor("nope") }
        expectCheckpointError(["dtypes.safetensors", "'nope'"]) { _ = try file.info("nope") }
    }

    func testShapeCheckedReadNamesFileAndKey() throws {
        let file = try SafeTensorsFile(url: CheckpointFixtures.url("dtypes.safetensors"))
        XCTAssertEqual(try file.tensor("f32", shape: [2, 3]).shape, [2, 3])
        expectCheckpointError(["dtypes.safetensors: tensor 'f32' has shape [2, 3], expected [3, 2]"]) {
            _ = try file.tensor("f32", shape: [3, 2])
        }
    }

    func testUnsupportedStoredDTypeThrowsOnReadButFileOpens() throws {
        // An F8_E4M3 tensor next to an F32 one: the file is valid, only the F8 tensor cannot be converted.
        let header =
            #"{"f8":{"dtype":"F8_E4M3","shape":[4],"data_offsets":[0,4]},"w":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}"#
        var bytes = withUnsafeBytes(of: UInt64(header.utf8.count).littleEndian) { Array($0) } + Array(header.utf8)
        bytes += [1, 2, 3, 4] + withUnsafeBytes(of: Float(1.5).bitPattern.littleEndian) { Array($0) }
        let file = try SafeTensorsFile(bytes: bytes, name: "f8.safetensors")
        XCTAssertEqual(try file.tensor("w").scalars, [1.5])
        XCTAssertEqual(try file.info("f8").dtype, .f8E4M3)
        expectCheckpointError(["f8.safetensors", "'f8'", "F8_E4M3"]) { _ = try file.tensor("f8") }
    }

    func testMissingFileAndDirectoryAreIOErrors() throws {
        let dir = try makeTemporaryDirectory()
        let missing = dir.appendingPathComponent("absent.safetensors")
        let error = expectCheckpointError(["absent.safetensors", "cannot open"]) {
            _ = try SafeTensorsFile(url: missing)
        }
        XCTAssertEqual(error?.file, missing.path)
        expectCheckpointError([dir.path, "not a regular file"]) { _ = try SafeTensorsFile(url: dir) }
    }

    func testLargeTensorConvertsInParallelChunks() throws {
        // More elements than one conversion chunk (65536), with an odd count, through every conversion path.
        let count = 200_003
        let values = (0..<count).map { Float($0 % 1000) * 0.37 - 100 }
        let source = Tensor(shape: [count], scalars: values)
        let dir = try makeTemporaryDirectory()
        let url = dir.appendingPathComponent("big.safetensors")
        try SafeTensors.write(["x": source, "h": source.to(.bfloat16)], to: url)
        let file = try SafeTensorsFile(url: url)
        XCTAssertEqual(try file.tensor("x").scalars, values)
        XCTAssertEqual(try file.tensor("x", as: .float64).scalars, values)
        XCTAssertEqual(storageBytes(try file.tensor("x", as: .bfloat16)), storageBytes(source.to(.bfloat16)))
        XCTAssertEqual(try file.tensor("h").scalars, source.to(.bfloat16).scalars)
        XCTAssertEqual(
            storageBytes(try file.tensor("h", as: .float16)), storageBytes(source.to(.bfloat16).to(.float16)))
    }
}
