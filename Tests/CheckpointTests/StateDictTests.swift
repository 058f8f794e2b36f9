import Checkpoint
import Foundation
import TensorCore
import XCTest

/// Loading whole checkpoints and checking them against a model's expected keys and shapes.
final class StateDictTests: XCTestCase {
    func testLoadTensorsFromFileAndFolder() throws {
        let dir = try makeTemporaryDirectory()
        let tensors = [
            "a.w": Tensor(shape: [2, 2], scalars: [Float(1), 2, 3, 4]), "b": Tensor(shape: [1], scalars: [Double(0.5)]),
        ]
        try SafeTensors.write(tensors, to: dir.appendingPathComponent("model.safetensors"))
        let fromFolder = try StateDict.loadTensors(from: dir)
        let fromFile = try StateDict.loadTensors(from: dir.appendingPathComponent("model.safetensors"), as: .float64)
        XCTAssertEqual(Set(fromFolder.keys), ["a.w", "b"])
        XCTAssertEqual(fromFolder["a.w"]!.scalars, [1, 2, 3, 4])
        XCTAssertEqual(fromFolder["b"]!.dtype, .float32)
        XCTAssertEqual(fromFile["b"]!.dtype, .float64)
        XCTAssertEqual(fromFile["b"]!.doubleScalars, [0.5])
    }

    func testOpenReportsMissingWeights() throws {
        let dir = try makeTemporaryDirectory()
        expectCheckpointError([dir.path, "model.safetensors", "model.safetensors.index.json"]) {
            _ = try StateDict.open(dir)
        }
        expectCheckpointError(["nothing-here", "no such file"]) {
            _ = try StateDict.open(dir.appendingPathComponent("nothing-here"))
        }
    }

    func testValidateAcceptsAMatchingCheckpoint() throws {
        let url = CheckpointFixtures.url("sharded_all.safetensors")
        try StateDict.validate(
            expected: [
                "blocks.0.attn.weight": [8, 8], "blocks.0.mlp.weight": [8, 16], "blocks.1.attn.weight": [8, 8],
                "embed.weight": [10, 8], "final_norm.weight": [8],
            ], against: url)
    }

    func testValidateListsEveryProblemInOneError() throws {
        let source = try StateDict.open(CheckpointFixtures.url("sharded"))
        let expected: [String: [Int]] = [
            "blocks.0.attn.weight": [8, 8],
            "blocks.0.mlp.weight": [16, 8],  // transposed
            "blocks.1.attn.weight": [8, 8],
            "embed.weight": [10, 8],
            "blocks.2.attn.weight": [8, 8],  // missing
            "head.weight": [4, 8],  // missing
        ]  // final_norm.weight is unexpected
        let error = expectCheckpointError([
            "model.safetensors.index.json", "missing keys (2): 'blocks.2.attn.weight', 'head.weight'",
            "unexpected keys (1): 'final_norm.weight'",
            "tensor 'blocks.0.mlp.weight' has shape [8, 16], expected [16, 8]",
        ]) { try StateDict.validate(expected: expected, against: source) }
        guard case .stateDictMismatch(_, let missing, let unexpected, let mismatched)? = error else {
            return XCTFail("expected stateDictMismatch, got \(String(describing: error))")
        }
        XCTAssertEqual(missing, ["blocks.2.attn.weight", "head.weight"])
        XCTAssertEqual(unexpected, ["final_norm.weight"])
        XCTAssertEqual(mismatched, [.init(key: "blocks.0.mlp.weight", found: [8, 16], expected: [16, 8])])
    }

    func testCheckedTensorReadThroughAnySource() throws {
        let source: any TensorSource = try StateDict.open(CheckpointFixtures.url("sharded"))
        XCTAssertEqual(try source.tensor("final_norm.weight", shape: [8]).shape, [8])
        expectCheckpointError(["tensor 'embed.weight' has shape [10, 8], expected [8, 10]"]) {
            _ = try source.tensor("embed.weight", shape: [8, 10])
        }
    }
}
