import Foundation
import GokuPipeline
import NN
import Optim
import ShapesDataset
import ShapesRecipe
import TensorCore
import TextEncoder
import XCTest

/// The text encoder's caption-role objective: the labels, the targets, that it teaches a T5 the roles that depend on
/// word order, and that the trainer turns it on when resuming.
final class CaptionRoleTests: XCTestCase {
    func testLabelsFollowTheRelation() throws {
        let r = CaptionRole.self
        XCTAssertEqual(
            r.labels(caption: "a small red square below a large blue circle, both moving left"),
            [.none, .bottom, .bottom, .bottom, .none, .none, .top, .top, .top, .none, .none, .none])
        XCTAssertEqual(
            r.labels(caption: "a large cyan triangle to the right of a small white circle"),
            [.none, .right, .right, .right, .none, .none, .none, .none, .none, .left, .left, .left])
        XCTAssertEqual(
            r.labels(caption: "a small yellow circle above a large green square"),
            [.none, .top, .top, .top, .none, .none, .bottom, .bottom, .bottom])
        XCTAssertEqual(r.labels(caption: "a large red circle moving right"), [.none, .sole, .sole, .sole, .none, .none])
        XCTAssertEqual(r.labels(caption: "three small blue triangles"), [.none, .sole, .sole, .sole])
        XCTAssertNil(r.labels(caption: "a dog on a skateboard"))
        XCTAssertNil(r.labels(caption: ""))
    }

    func testTargetsAreOneHotOverLabelledTokens() throws {
        let (oneHot, count) = CaptionRoleObjective.targets(
            captions: ["a large red circle", "", "a small blue square above a small red circle"], length: 8)
        XCTAssertEqual(oneHot.shape, [3, 8, 6])
        XCTAssertEqual(count, 5, "the first caption's 4 words and </s>; the empty one and the truncated one have none")
        let v = oneHot.scalars
        func row(_ b: Int, _ t: Int) -> [Float] { Array(v[(b * 8 + t) * 6..<(b * 8 + t + 1) * 6]) }
        XCTAssertEqual(row(0, 0), [1, 0, 0, 0, 0, 0])
        XCTAssertEqual(row(0, 2), [0, 1, 0, 0, 0, 0])
        XCTAssertEqual(row(0, 4), [1, 0, 0, 0, 0, 0], "</s> is none")
        XCTAssertEqual(row(0, 5), [0, 0, 0, 0, 0, 0], "padding is ignored")
        XCTAssertEqual(oneHot.sum().item(), 5)
    }

    /// A small T5 trained on the objective alone learns to tell the two objects' sides apart, which a bag of words
    /// cannot: the captions come in mirrored pairs with the same words.
    func testObjectiveTeachesWordOrder() throws {
        let generator = RandomGenerator(seed: 4)
        let config = T5Config(
            dModel: 32, dKV: 8, dFF: 64, numLayers: 2, numHeads: 4, relativeAttentionNumBuckets: 16,
            relativeAttentionMaxDistance: 32, vocabSize: (ShapesText.pieces.count + 63) / 64 * 64)
        let text = TextConditioning(
            T5TextEncoder(tokenizer: try ShapesText.tokenizer(), model: T5EncoderModel(config: config, generator: generator), maxLength: 16))
        let objective = CaptionRoleObjective(dimension: 32, generator: generator)
        let captions = [
            "a small red square above a small blue square", "a small blue square above a small red square",
            "a large green circle to the left of a large white circle",
            "a large white circle to the left of a large green circle",
            "a small red square below a small blue square", "a small cyan triangle moving up",
        ]
        let parameters = text.encoder.model.namedParameters() + objective.namedParameters
        let optimizer = AdamW(parameters, options: .init(learningRate: 1e-2, weightDecay: 0))
        func loss() -> Tensor { objective.loss(states: text.encodeBatch(captions, differentiable: true).states, captions: captions)! }
        let initial = Autograd.inference { loss().item() }
        for _ in 0..<80 {
            for (_, p) in parameters { p.grad = nil }
            loss().backward()
            optimizer.update()
        }
        let final = Autograd.inference { loss().item() }
        XCTAssertGreaterThan(initial, 1.0)
        XCTAssertLessThan(final, 0.05, "from \(initial)")
        // The colour word's predicted side in the first two captions (same words, mirrored roles).
        let states = Autograd.inference { text.encodeBatch(Array(captions[0..<2])).states }
        let logits = Autograd.inference { objective.head(states) }.scalars
        func predicted(_ b: Int, _ t: Int) -> Int {
            let row = logits[(b * 16 + t) * 6..<(b * 16 + t + 1) * 6]
            return row.indices.max { row[$0] < row[$1] }! - row.startIndex
        }
        XCTAssertEqual(predicted(0, 2), CaptionRole.top.rawValue, "red in 'red above blue'")
        XCTAssertEqual(predicted(1, 7), CaptionRole.bottom.rawValue, "red in 'blue above red'")
    }

    /// The phase teaches a small encoder the roles of held-out captions (it learns the rule, not the captions); with
    /// a heavy anchor the states stay where they were instead.
    func testPretrainingPhase() throws {
        let config = T5Config(
            dModel: 32, dKV: 8, dFF: 64, numLayers: 2, numHeads: 4, relativeAttentionNumBuckets: 16,
            relativeAttentionMaxDistance: 32, vocabSize: (ShapesText.pieces.count + 63) / 64 * 64)
        func fresh() throws -> (TextConditioning, CaptionRoleObjective) {
            let g = RandomGenerator(seed: 5)
            let text = TextConditioning(T5TextEncoder(
                tokenizer: try ShapesText.tokenizer(), model: T5EncoderModel(config: config, generator: g), maxLength: 16))
            return (text, CaptionRoleObjective(dimension: 32, generator: g))
        }
        var rng = ShapesRandom(seed: 3)
        let captions = (0..<300).map { _ in ShapesPromptSet.random(using: &rng, video: true, split: .training).caption }
        let heldOut = (0..<100).map { _ in ShapesPromptSet.random(using: &rng, video: true, split: .evaluation).caption }

        let (text, objective) = try fresh()
        var phase = CaptionRolePretraining(steps: 300, learningRate: 3e-3, seed: 1)
        phase.batchSize = 32
        phase.anchorWeight = 0
        let report = try phase.run(text: text, objective: objective, captions: captions)
        XCTAssertLessThan(report.roleLoss, 0.1)
        let accuracy = CaptionRolePretraining.objectWordAccuracy(text: text, objective: objective, captions: heldOut)
        XCTAssertGreaterThan(accuracy, 0.85, "guessing the pairs' sides gives about 0.74")

        let (held, heldObjective) = try fresh()
        phase.steps = 60
        phase.anchorWeight = 1000
        let anchored = try phase.run(text: held, objective: heldObjective, captions: captions)
        XCTAssertLessThan(anchored.anchor, 0.01)
        XCTAssertThrowsError(try phase.run(text: held, objective: heldObjective, captions: ["a dog"]))
    }

    /// The order probe reads 0 for swapped objects from an encoder without position information (a T5 whose relative
    /// position bias is zero), and more than that from one with it.
    func testTextOrderProbe() throws {
        let config = T5Config(
            dModel: 32, dKV: 8, dFF: 64, numLayers: 2, numHeads: 4, relativeAttentionNumBuckets: 16,
            relativeAttentionMaxDistance: 32, vocabSize: (ShapesText.pieces.count + 63) / 64 * 64)
        let model = T5EncoderModel(config: config, generator: RandomGenerator(seed: 6))
        let text = TextConditioning(T5TextEncoder(tokenizer: try ShapesText.tokenizer(), model: model, maxLength: 16))
        var rng = ShapesRandom(seed: 2)
        let scenes = (0..<40).map { _ in ShapesPromptSet.random(using: &rng, video: false) }
        let withPositions = TextOrderProbe.measure(text: text, scenes: scenes)
        XCTAssertGreaterThan(withPositions.pairs, 5)
        XCTAssertGreaterThan(withPositions.swappedObjects, 0.05, withPositions.summary)
        XCTAssertGreaterThan(withPositions.flippedRelation, 0.01, withPositions.summary)

        let key = "encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight"
        var weights = model.parameterDictionary()
        weights[key] = Tensor.zeros(weights[key]!.shape)
        try model.load(weights)
        let blind = TextOrderProbe.measure(text: text, scenes: scenes)
        XCTAssertLessThan(blind.swappedObjects, 1e-5, blind.summary)
        XCTAssertGreaterThan(blind.flippedRelation, 0.01, "the relation word itself still differs: \(blind.summary)")
    }
}
