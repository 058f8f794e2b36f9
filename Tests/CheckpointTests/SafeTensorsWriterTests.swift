import Checkpoint
import Foundation
import TensorCore
import TestSupport
import XCTest

/// Writing: byte identity with Python's safetensors, round trips, and atomic replacement.
final class SafeTensorsWriterTests: XCTestCase {
    /// The tensors of writer_reference.safetensors, made in Swift from the lossless sources.
    private func writerInputs() throws -> [String: Tensor] {
        let source = try SafeTensorsFile(url: CheckpointFixtures.url("writer_source.safetensors"))
        var tensors: [String: Tensor] = [:]
        for name in source.names {
            let dtype = try source.info(name).dtype.tensorDType!
            tensors[name] = try source.tensor(name, as: dtype)
        }
        tensors["emb"] = tensors["emb"]!.to(.bfloat16)
        tensors["norm"] = tensors["norm"]!.to(.float16)
        return tensors
    }

    func testOutputIsByteIdenticalToPythonSafetensors() throws {
        let reference = try CheckpointFixtures.bytes("writer_reference.safetensors")
        let tensors = try writerInputs()
        XCTAssertEqual(tensors.count, 8)
        XCTAssertEqual(try SafeTensors.encode(tensors, metadata: ["format": "pt"]), reference)
        let url = try makeTemporaryDirectory().appendingPathComponent("out.safetensors")
        try SafeTensors.write(tensors, metadata: ["format": "pt"], to: url)
        let written = Array(try Data(contentsOf: url))
        if written != reference {
            let firstDifference =
                zip(written, reference).enumerated().first { $0.element.0 != $0.element.1 }?.offset
                ?? min(written.count, reference.count)
            XCTFail("differs from Python at byte \(firstDifference) (sizes \(written.count) vs \(reference.count))")
        }
    }

    func testMultiKeyMetadataMatchesPythonUpToKeyOrder() throws {
        // Python orders metadata keys randomly (a Rust HashMap); the fixture was canonicalised to sorted order, which
        // is the order we always write, so the bytes are identical here.
        let reference = try CheckpointFixtures.bytes("metadata.safetensors")
        let file = try SafeTensorsFile(url: CheckpointFixtures.url("metadata.safetensors"))
        XCTAssertEqual(try SafeTensors.encode(try file.tensors(), metadata: file.metadata), reference)
    }

    func testRoundTripEveryDType() throws {
        let dir = try makeTemporaryDirectory()
        let generator = RandomGenerator(seed: 7)
        let base = Tensor.randn([3, 5, 2], generator: generator)
        let tensors: [String: Tensor] = [
            "f32": base, "f64": Tensor.randn([4, 3], generator: generator).to(.float64),
            "bf16": base.to(.bfloat16), "f16": base.to(.float16),
            "scalar": Tensor(3.25), "empty": Tensor(uninitializedShape: [2, 0, 3]),
        ]
        let url = dir.appendingPathComponent("all.safetensors")
        try SafeTensors.write(tensors, metadata: ["a": "1", "b": ""], to: url)
        let file = try SafeTensorsFile(url: url)
        XCTAssertEqual(Set(file.names), Set(tensors.keys))
        XCTAssertEqual(file.metadata, ["a": "1", "b": ""])
        for (name, tensor) in tensors {
            let back = try file.tensor(name, as: tensor.dtype)
            XCTAssertEqual(back.shape, tensor.shape, name)
            XCTAssertEqual(back.dtype, tensor.dtype, name)
            XCTAssertEqual(storageBytes(back), storageBytes(tensor), name)
            XCTAssertEqual(try file.info(name).dtype, SafeTensorsDType(tensor.dtype), name)
        }
    }

    func testConvertingWhileWriting() throws {
        let dir = try makeTemporaryDirectory()
        let x = Tensor.randn([6, 7], generator: RandomGenerator(seed: 3))
        let y = x.to(.float64)
        for dtype in DType.allCases {
            let url = dir.appendingPathComponent("\(dtype).safetensors")
            try SafeTensors.write(["x": x, "y": y], as: dtype, to: url)
            let file = try SafeTensorsFile(url: url)
            XCTAssertEqual(try file.info("x").dtype, SafeTensorsDType(dtype))
            XCTAssertEqual(try file.info("y").dtype, SafeTensorsDType(dtype))
            XCTAssertEqual(storageBytes(try file.tensor("x", as: dtype)), storageBytes(x.to(dtype)), "\(dtype)")
        }
    }

    func testNoMetadataAndEmptyMetadataDiffer() throws {
        let t = ["w": Tensor(shape: [1], scalars: [Float(1)])]
        let none = String(decoding: try SafeTensors.encode(t).dropFirst(8), as: UTF8.self)
        let empty = String(decoding: try SafeTensors.encode(t, metadata: [:]).dropFirst(8), as: UTF8.self)
        XCTAssertFalse(none.contains("__metadata__"))
        XCTAssertTrue(empty.hasPrefix(#"{"__metadata__":{},"w":"#))
        // A file with metadata and no tensors is valid JSON (Python 0.8 writes a broken header for it).
        let onlyMetadata = try SafeTensors.encode([:], metadata: ["k": "v"])
        XCTAssertEqual(try SafeTensorsFile(bytes: onlyMetadata, name: "m").metadata, ["k": "v"])
        XCTAssertEqual(onlyMetadata.count % 8, 0)
    }

    func testAtomicWriteLeavesOnlyTheTarget() throws {
        let dir = try makeTemporaryDirectory()
        let url = dir.appendingPathComponent("model.safetensors")
        try SafeTensors.write(["a": Tensor(shape: [2], scalars: [Float(1), 2])], to: url)
        try SafeTensors.write(["b": Tensor(shape: [3], scalars: [Float(4), 5, 6])], to: url)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir.path), ["model.safetensors"])
        let file = try SafeTensorsFile(url: url)
        XCTAssertEqual(file.names, ["b"])
        XCTAssertEqual(try file.tensor("b").scalars, [4, 5, 6])
    }

    func testFailedWriteDoesNotClobberOrLeaveTemporaryFiles() throws {
        let dir = try makeTemporaryDirectory()
        let url = dir.appendingPathComponent("model.safetensors")
        let good = ["a": Tensor(shape: [2], scalars: [Float(1), 2])]
        try SafeTensors.write(good, to: url)
        let before = Array(try Data(contentsOf: url))

        // Invalid content: refused before anything is written.
        expectCheckpointError(["model.safetensors", "'__metadata__'"]) {
            try SafeTensors.write(["__metadata__": Tensor(1)], to: url)
        }
        // A target that cannot be replaced (a non-empty directory in its place): fails at the rename.
        let blocked = dir.appendingPathComponent("blocked.safetensors")
        try FileManager.default.createDirectory(at: blocked, withIntermediateDirectories: false)
        try Data([1]).write(to: blocked.appendingPathComponent("inside"))
        expectCheckpointError(["blocked.safetensors", "rename"]) { try SafeTensors.write(good, to: blocked) }
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: blocked.path), ["inside"])
        // A target in a folder that does not exist.
        let nowhere = dir.appendingPathComponent("missing/sub/model.safetensors")
        expectCheckpointError(["missing/sub/model.safetensors", "temporary file"]) {
            try SafeTensors.write(good, to: nowhere)
        }

        XCTAssertEqual(Array(try Data(contentsOf: url)), before)
        XCTAssertEqual(
            Set(try FileManager.default.contentsOfDirectory(atPath: dir.path)),
            ["model.safetensors", "blocked.safetensors"])
    }

    func testWritingAGradientTrackedTensorDoesNotRecord() throws {
        let w = Tensor(shape: [2, 2], scalars: [Float(1), 2, 3, 4], requiresGrad: true)
        let bytes = try SafeTensors.encode(["w": w], as: .bfloat16)
        XCTAssertEqual(try SafeTensorsFile(bytes: bytes, name: "w").tensor("w").scalars, [1, 2, 3, 4])
        XCTAssertNil(w.grad)
    }
}
