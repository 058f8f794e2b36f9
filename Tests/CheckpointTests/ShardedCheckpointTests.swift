import Checkpoint
import Foundation
import TensorCore
import XCTest

/// Hugging Face sharded folders: reading Python's, writing identical ones, round trips and bad indexes.
final class ShardedCheckpointTests: XCTestCase {
    private let shardNames = ["model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"]

    func testReadsPythonShardedFolder() throws {
        let sharded = try ShardedCheckpoint(indexURL: CheckpointFixtures.url("sharded/model.safetensors.index.json"))
        let reference = try SafeTensorsFile(url: CheckpointFixtures.url("sharded_all.safetensors"))
        XCTAssertEqual(sharded.names, reference.names)
        XCTAssertEqual(sharded.shardFiles, shardNames)
        XCTAssertEqual(sharded.totalSize, 1216)
        XCTAssertEqual(sharded.weightMap["embed.weight"], shardNames[1])
        for name in reference.names {
            XCTAssertEqual(try sharded.info(name).dtype, try reference.info(name).dtype, name)
            XCTAssertEqual(try sharded.tensor(name).scalars, try reference.tensor(name).scalars, name)
        }
        XCTAssertEqual(try sharded.info("embed.weight").dtype, .bf16)
        try sharded.verifyShards()
        // The folder form picks the index.
        let opened = try StateDict.open(CheckpointFixtures.url("sharded"))
        XCTAssertTrue(opened is ShardedCheckpoint)
        XCTAssertEqual(try StateDict.loadTensors(from: CheckpointFixtures.url("sharded")).count, 5)
    }

    func testWriterReproducesPythonShardsAndIndex() throws {
        let tensors = try SafeTensorsFile(url: CheckpointFixtures.url("sharded_all.safetensors"))
        var stateDict: [String: Tensor] = [:]
        for name in tensors.names {
            stateDict[name] = try tensors.tensor(name, as: try tensors.info(name).dtype.tensorDType!)
        }
        let dir = try makeTemporaryDirectory()
        let written = try ShardedCheckpoint.write(stateDict, to: dir, maxShardBytes: 800)
        XCTAssertEqual(written, shardNames + ["model.safetensors.index.json"])
        for name in written {
            let ours = Array(try Data(contentsOf: dir.appendingPathComponent(name)))
            let python = try CheckpointFixtures.bytes("sharded/\(name)")
            XCTAssertEqual(ours, python, "\(name) differs from the Python-written file")
        }
    }

    func testRoundTripWithConversionAndOversizeTensor() throws {
        let dir = try makeTemporaryDirectory()
        var tensors: [String: Tensor] = [:]
        for i in 0..<7 { tensors["layer.\(i).w"] = Tensor.full([4, 4 + i], Double(i) + 0.5) }
        tensors["big"] = Tensor.full([100], -1)  // 400 bytes as float32, over the limit: a shard of its own
        let written = try ShardedCheckpoint.write(tensors, to: dir, maxShardBytes: 200, metadata: nil, as: .float32)
        XCTAssertEqual(written.last, "model.safetensors.index.json")
        let sharded = try ShardedCheckpoint(indexURL: dir.appendingPathComponent(written.last!))
        XCTAssertEqual(Set(sharded.names), Set(tensors.keys))
        XCTAssertEqual(sharded.totalSize, tensors.values.reduce(0) { $0 + $1.count * 4 })
        try sharded.verifyShards()
        XCTAssertEqual(sharded.shardFiles.filter { (try? sharded.shard($0).names) == ["big"] }.count, 1)
        for shard in sharded.shardFiles {
            let file = try sharded.shard(shard)
            let bytes = file.names.reduce(0) { $0 + ((try? file.info($1).byteCount) ?? 0) }
            XCTAssertTrue(bytes <= 200 || file.names == ["big"], "\(shard) holds \(bytes) bytes")
        }
        for (name, tensor) in tensors { XCTAssertEqual(try sharded.tensor(name).scalars, tensor.scalars, name) }

        // Saving again as bf16 into one shard replaces the sharded layout (stale shards and index removed).
        let single = try ShardedCheckpoint.write(tensors, to: dir, maxShardBytes: 1 << 20, as: .bfloat16)
        XCTAssertEqual(single, ["model.safetensors"])
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir.path), ["model.safetensors"])
        let reopened = try StateDict.open(dir)
        XCTAssertTrue(reopened is SafeTensorsFile)
        XCTAssertEqual(try reopened.info("big").dtype, .bf16)
        XCTAssertEqual(try reopened.tensor("layer.3.w").scalars, tensors["layer.3.w"]!.scalars)
    }

    func testSplitFollowsHuggingFaceOrder() throws {
        let t = { (n: Int) in Tensor(uninitializedShape: [n]) }
        let shards = try writeAndListShards(["a": t(10), "b": t(60), "c": t(20), "d": t(30), "e": t(5)], max: 160)
        // a (40) + b (240 > 160: own shard, emitted before the current one) ; a, c (80), d (120 → 200 > 160: split)…
        XCTAssertEqual(shards, [["b"], ["a", "c"], ["d", "e"]])
    }

    private func writeAndListShards(_ tensors: [String: Tensor], max: Int) throws -> [[String]] {
        let dir = try makeTemporaryDirectory()
        let files = try ShardedCheckpoint.write(tensors, to: dir, maxShardBytes: max).dropLast()
        return try files.map { try SafeTensorsFile(url: dir.appendingPathComponent($0)).names }
    }

    func testBadIndexesNameTheIndexFile() throws {
        let dir = try makeTemporaryDirectory()
        let index = dir.appendingPathComponent("model.safetensors.index.json")
        func check(_ json: String, _ fragments: [String], line: UInt = #line) {
            try? Data(json.utf8).write(to: index)
            expectCheckpointError(["model.safetensors.index.json"] + fragments, line: line) {
                _ = try ShardedCheckpoint(indexURL: index)
            }
        }
        check("{", ["JSON error"])
        check(#"{"metadata":{}}"#, ["'weight_map' is missing"])
        check(#"{"weight_map":{"w":3}}"#, ["'w'", "Int"])
        check(#"{"weight_map":{"w":"../../etc/passwd"}}"#, ["'w'", "not a file in the folder"])
        check(#"{"weight_map":{"w":".."}}"#, ["'w'"])

        // The index names a shard that does not exist, or that lacks the tensor.
        try SafeTensors.write(["other": Tensor(1)], to: dir.appendingPathComponent("s1.safetensors"))
        try Data(#"{"weight_map":{"w":"s1.safetensors","v":"s2.safetensors","other":"s1.safetensors"}}"#.utf8).write(
            to: index)
        let sharded = try ShardedCheckpoint(indexURL: index)
        XCTAssertNil(sharded.totalSize)
        XCTAssertEqual(try sharded.tensor("other").item(), 1)
        expectCheckpointError(["model.safetensors.index.json", "'w'", "s1.safetensors"]) { _ = try sharded.tensor("w") }
        expectCheckpointError(["s2.safetensors", "cannot open"]) { _ = try sharded.tensor("v") }
        expectCheckpointError(["model.safetensors.index.json", "'nope'"]) { _ = try sharded.tensor("nope") }
        expectCheckpointError(["s1.safetensors lacks 'w'"]) { try sharded.verifyShards() }
    }
}
