import Checkpoint
import Foundation
import TensorCore
import TestSupport
import XCTest

import TextEncoder

final class T5EncoderTests: XCTestCase {
    func checkParity(_ name: String, rtol: Double = 1e-4) throws {
        let model = try T5EncoderModel.load(from: TextFixtures.folder.appendingPathComponent(name))
        let io = try Fixture.load("\(name)_io", target: "TextEncoderTests")
        let shape = io.tensor("input_ids").shape
        func rows(_ t: Tensor) -> [[Int]] {
            let flat = t.scalars.map { Int($0) }
            return (0..<shape[0]).map { Array(flat[($0 * shape[1])..<(($0 + 1) * shape[1])]) }
        }
        let out = Autograd.inference {
            model.encode(ids: rows(io.tensor("input_ids")), attentionMask: rows(io.tensor("attention_mask")))
        }
        let expected = io.tensor("last_hidden_state")
        XCTAssertEqual(out.shape, expected.shape)
        // Relative error against the largest reference magnitude (values are O(1) after the final norm).
        let scale = Double(expected.scalars.map(abs).max() ?? 1)
        expectClose(out, expected, rtol: rtol, atol: rtol * scale, "\(name) last_hidden_state")
    }

    func testGatedGeluMatchesTransformers() throws { try checkParity("t5_gated") }

    /// BF16 weights in two shards, embedding stored as `encoder.embed_tokens.weight`, ReLU feed-forward.
    func testReluBF16ShardedMatchesTransformers() throws { try checkParity("t5_relu") }

    /// F16 weights load as float32: the same as rounding the float32 weights to half precision in memory.
    func testFloat16WeightsLoad() throws {
        let source = TextFixtures.folder.appendingPathComponent("t5_gated")
        let folder = try TextFixtures.temporaryFolder()
        try FileManager.default.copyItem(
            at: source.appendingPathComponent("config.json"), to: folder.appendingPathComponent("config.json"))
        let weights = try StateDict.loadTensors(from: source)
        try SafeTensors.write(weights, as: .float16, to: folder.appendingPathComponent("model.safetensors"))
        let half = try T5EncoderModel.load(from: folder)
        let rounded = try T5EncoderModel.load(from: source)
        for (_, p) in rounded.namedParameters() { p.assign(p.to(.float16).to(.float32)) }
        let ids = [[5, 6, 7, 8, 1], [9, 10, 1, 0, 0]], mask = [[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]]
        let a = Autograd.inference { half.encode(ids: ids, attentionMask: mask) }
        let b = Autograd.inference { rounded.encode(ids: ids, attentionMask: mask) }
        expectClose(a, b, rtol: 1e-6, atol: 1e-6, "F16 load")
    }

    func testKeysAreHuggingFaceNames() throws {
        let model = T5EncoderModel(config: .tiny)
        let keys = Set(model.namedParameters().map(\.key))
        for key in [
            "shared.weight", "encoder.block.0.layer.0.SelfAttention.q.weight",
            "encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight",
            "encoder.block.0.layer.0.layer_norm.weight", "encoder.block.1.layer.1.DenseReluDense.wi_0.weight",
            "encoder.block.1.layer.1.DenseReluDense.wi_1.weight", "encoder.block.1.layer.1.DenseReluDense.wo.weight",
            "encoder.final_layer_norm.weight",
        ] {
            XCTAssertTrue(keys.contains(key), "missing \(key); have \(keys.sorted())")
        }
        XCTAssertFalse(keys.contains("encoder.block.1.layer.0.SelfAttention.relative_attention_bias.weight"))
        let params = model.parameterCount
        let c = T5Config.tiny
        let perBlock = 4 * c.dModel * c.numHeads * c.dKV + 3 * c.dModel * c.dFF + 2 * c.dModel
        XCTAssertEqual(
            params, c.vocabSize * c.dModel + c.numLayers * perBlock + c.relativeAttentionNumBuckets * c.numHeads + c.dModel)
    }

    func testRelativePositionBuckets() {
        // 32 buckets, max distance 128 (T5's defaults): 16 per direction, 8 exact, then logarithmic.
        func bucket(_ r: Int) -> Int { T5Attention.bucket(relativePosition: r, buckets: 32, maxDistance: 128) }
        XCTAssertEqual((0..<8).map { bucket(-$0) }, Array(0..<8))
        XCTAssertEqual((1..<8).map { bucket($0) }, (1..<8).map { 16 + $0 })
        // n ≥ 8: 8 + floor(log(n/8) / log(16) · 8), capped at 15.
        for n in [8, 9, 15, 16, 31, 32, 63, 64, 127, 128, 500] {
            let expected = min(8 + Int(log(Double(n) / 8) / log(16.0) * 8), 15)
            XCTAssertEqual(bucket(-n), expected, "distance -\(n)")
            XCTAssertEqual(bucket(n), 16 + expected, "distance \(n)")
        }
    }

    func testPaddingDoesNotChangeRealTokens() {
        let model = T5EncoderModel(config: .tiny, generator: RandomGenerator(seed: 3))
        let ids = [5, 17, 200, 3, 1]
        let alone = Autograd.inference { model.encode(ids: [ids], attentionMask: [[1, 1, 1, 1, 1]]) }
        // A position bias depends on L, so compare with the same length: padded ids change nothing at real rows.
        let padded = Autograd.inference {
            model.encode(ids: [ids + [0, 0, 0]], attentionMask: [[1, 1, 1, 1, 1, 0, 0, 0]])
        }
        let other = Autograd.inference {
            model.encode(ids: [ids + [9, 99, 4]], attentionMask: [[1, 1, 1, 1, 1, 0, 0, 0]])
        }
        expectClose(padded.slice(axis: 1, 0, 5), other.slice(axis: 1, 0, 5), rtol: 1e-6, atol: 1e-6, "padding")
        XCTAssertEqual(alone.shape, [1, 5, 32])
    }

    func testGradientsReachEveryParameter() {
        let model = T5EncoderModel(config: .tiny, generator: RandomGenerator(seed: 4))
        let out = model.encode(ids: [[5, 6, 7, 1], [8, 9, 1, 0]], attentionMask: [[1, 1, 1, 1], [1, 1, 1, 0]])
        out.square().mean().backward()
        for (key, p) in model.namedParameters() {
            XCTAssertNotNil(p.grad, key)
        }
    }

    func testConfigValidationNamesTheField() throws {
        var c = T5Config.tiny
        c.feedForwardProj = "gated-swish"
        XCTAssertThrowsError(try c.validate()) { XCTAssertTrue("\($0)".contains("feed_forward_proj"), "\($0)") }
        c = .tiny
        c.numHeads = 0
        XCTAssertThrowsError(try c.validate()) { XCTAssertTrue("\($0)".contains("num_heads"), "\($0)") }
        c = .tiny
        c.isGatedAct = false
        XCTAssertThrowsError(try c.validate()) { XCTAssertTrue("\($0)".contains("is_gated_act"), "\($0)") }
        XCTAssertEqual(T5Config.flanT5XL.activation, .geluNew)
        XCTAssertTrue(T5Config.flanT5XL.isGated)
        c = .tiny
        c.feedForwardProj = "relu"
        XCTAssertNoThrow(try c.validate())
        XCTAssertFalse(c.isGated)
        XCTAssertNoThrow(try T5Config.flanT5XL.validate())
    }

    func testWeightsThatDoNotMatchTheConfigNameFileAndKey() throws {
        let folder = try TextFixtures.temporaryFolder()
        let source = TextFixtures.folder.appendingPathComponent("t5_gated")
        try FileManager.default.copyItem(
            at: source.appendingPathComponent("model.safetensors"), to: folder.appendingPathComponent("model.safetensors"))
        // Same config with a wider feed-forward: every wi/wo weight is mis-shaped.
        var config = try T5Config.read(from: source)
        config.dFF = 32
        try ConfigFile.write(config, to: folder)
        XCTAssertThrowsError(try T5EncoderModel.load(from: folder)) { error in
            let text = "\(error)"
            XCTAssertTrue(text.contains("model.safetensors") && text.contains("DenseReluDense.wi_0.weight"), text)
        }
        // An unsupported activation in config.json.
        var json = try String(contentsOf: source.appendingPathComponent("config.json"), encoding: .utf8)
        json = json.replacingOccurrences(of: "\"gated-gelu\"", with: "\"gated-mish\"")
        try json.write(to: folder.appendingPathComponent("config.json"), atomically: true, encoding: .utf8)
        XCTAssertThrowsError(try T5EncoderModel.load(from: folder)) { error in
            XCTAssertTrue("\(error)".contains("config.json") && "\(error)".contains("feed_forward_proj"), "\(error)")
        }
    }
}

/// Tokenizer and encoder loaded from one folder, against transformers' tokenizer + `T5EncoderModel`.
final class T5TextEncoderTests: XCTestCase {
    func testPipelineMatchesTransformersFromEitherTokenizerFile() throws {
        let io = try Fixture.load("t5_pipeline_io", target: "TextEncoderTests")
        let prompts = ["A café with 3 red circles  moving right!", "a tiny green star", "東京 ☃ emoji 🍕"]
        let expectedIDs = io.tensor("input_ids").scalars.map { Int($0) }
        let expectedMask = io.tensor("attention_mask").scalars.map { Int($0) }
        for tokenizerFile in ["tokenizer.json", "spiece.model"] {
            let folder = try TextFixtures.temporaryFolder()
            let model = TextFixtures.folder.appendingPathComponent("t5_pipeline")
            for name in ["config.json", "model.safetensors"] {
                try FileManager.default.copyItem(
                    at: model.appendingPathComponent(name), to: folder.appendingPathComponent(name))
            }
            try FileManager.default.copyItem(
                at: TextFixtures.folder.appendingPathComponent("tokenizer").appendingPathComponent(tokenizerFile),
                to: folder.appendingPathComponent(tokenizerFile))
            let encoder = try T5TextEncoder.load(from: folder, maxLength: 20)
            let batch = encoder.tokenizer.encodeBatch(prompts, maxLength: 20)
            XCTAssertEqual(batch.ids.flatMap { $0 }, expectedIDs, tokenizerFile)
            let (hidden, mask) = encoder.encode(prompts)
            XCTAssertEqual(mask.flatMap { $0 }, expectedMask, tokenizerFile)
            expectClose(hidden, io.tensor("last_hidden_state"), rtol: 1e-4, atol: 1e-4, tokenizerFile)
        }
    }
}
