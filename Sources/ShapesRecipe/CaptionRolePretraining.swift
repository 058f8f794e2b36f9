import Foundation
import GokuPipeline
import NN
import Optim
import TensorCore
import TextEncoder
import Training

/// Teaches a jointly trained text encoder the caption roles (`CaptionRoleObjective`) in a short phase of its own,
/// before flow training goes on with the role loss beside it.
///
/// Why a phase: inside flow training the encoder moves at the transformer's learning rate, and its states, shaped by
/// the flow loss alone until then, learn the roles too slowly to matter (measured on the shipped model: the role loss
/// stalled at 0.15 after 1500 steps, the pair words' sides still guessed from the word alone). A phase of its own from
/// those trained weights stalled too (76–80 % of object words right); from fresh weights (`reinitialize`), anchored,
/// the encoder learned them in 3000 steps (99.6 %).
///
/// Anchor: when the encoder already serves a trained transformer, the phase also keeps its states close to what they
/// were (squared distance to the phase's starting encoder over the caption tokens, relative to the starting states'
/// mean square), so the role features are added to the states rather than replacing the colour, shape and motion
/// features the transformer reads.
public struct CaptionRolePretraining {
    /// Steps of the phase.
    public var steps: Int
    /// Peak learning rate (warm-up over the first 5 % of the steps, cosine to 10 % of it).
    public var learningRate: Double
    /// Captions a step.
    public var batchSize = 64
    /// Weight of the anchor term.
    public var anchorWeight = 1.0
    /// Seed of the caption draws (and of the fresh weights when `reinitialize`).
    public var seed: UInt64 = 0
    /// Start the encoder from fresh weights (the anchor still holds its states near the old ones).
    public var reinitialize = false

    /// What the phase reached.
    public struct Report: Sendable {
        /// Role loss and relative anchor distance, means over the last tenth of the steps.
        public var roleLoss: Double, anchor: Double
        /// Share of object words (role not `none`) whose role the head predicts, over up to 512 of the captions.
        public var objectWordAccuracy: Double
    }

    /// A phase of `steps` steps at `learningRate`.
    public init(steps: Int, learningRate: Double, seed: UInt64 = 0) {
        self.steps = steps
        self.learningRate = learningRate
        self.seed = seed
    }

    /// Trains `text`'s encoder and `objective`'s head on `captions` (those outside the Shapes grammar are skipped).
    /// - Throws: `GokuPipelineError.invalidOption` when no caption has roles.
    public func run(text: TextConditioning, objective: CaptionRoleObjective, captions: [String], progress: ProgressBar? = nil) throws -> Report {
        let labelled = captions.filter { CaptionRole.labels(caption: $0) != nil }
        guard !labelled.isEmpty else {
            throw GokuPipelineError.invalidOption(option: "textRoleLossWeight", reason: "no training caption follows the Shapes grammar, so none has roles")
        }
        let model = text.encoder.model
        let reference = T5EncoderModel(config: model.config, generator: RandomGenerator(seed: 0))
        try reference.load(model.parameterDictionary().mapValues { $0.detached().copy() })
        let referenceText = TextConditioning(T5TextEncoder(tokenizer: text.encoder.tokenizer, model: reference, maxLength: text.maxLength))
        if reinitialize {
            try model.load(T5EncoderModel(config: model.config, generator: RandomGenerator(seed: seed &+ 1)).parameterDictionary())
        }

        let parameters = model.namedParameters() + objective.namedParameters
        let optimizer = AdamW(parameters, options: .init(learningRate: learningRate, weightDecay: 0))
        let schedule = LearningRateSchedule(
            peak: learningRate, warmupSteps: max(1, steps / 20), decay: .cosine, totalSteps: steps, minimum: learningRate * 0.1)
        let generator = RandomGenerator(seed: seed)
        model.setTraining(true)
        defer { model.setTraining(false) }
        var recent: [(role: Double, anchor: Double)] = []
        for step in 0..<steps {
            for (_, p) in parameters { p.grad = nil }
            let batch = (0..<batchSize).map { _ in labelled[generator.nextInt(below: labelled.count)] }
            let encoded = text.encodeBatch(batch, differentiable: true)
            guard let role = objective.loss(states: encoded.states, captions: batch) else { continue }
            let anchorStates = Autograd.inference { referenceText.encodeBatch(batch).states }
            let mask = Tensor(
                shape: [batch.count, text.maxLength, 1], scalars: encoded.masks.flatMap { $0.map { $0 ? Float(1) : 0 } })
            let referenceSquare = Autograd.inference { (anchorStates.square() * mask).sum().item() }
            let anchor = ((encoded.states - anchorStates).square() * mask).sum() * Tensor(1 / max(referenceSquare, 1e-12))
            (role + anchor * Tensor(Float(anchorWeight))).backward()
            GradientClipping.clipGlobalNorm(parameters.map(\.tensor), maxNorm: 1)
            optimizer.options.learningRate = schedule(step)
            optimizer.update()
            let values = (role: Double(role.item()), anchor: Double(anchor.item()))
            if step >= steps - max(1, steps / 10) { recent.append(values) }
            progress?.update(completed: step + 1, metrics: [("role", values.role), ("anchor", values.anchor)])
        }
        progress?.finish()
        let mean = { (f: ((role: Double, anchor: Double)) -> Double) in recent.isEmpty ? .nan : recent.map(f).reduce(0, +) / Double(recent.count) }
        return Report(
            roleLoss: mean { $0.role }, anchor: mean { $0.anchor },
            objectWordAccuracy: Self.objectWordAccuracy(text: text, objective: objective, captions: Array(labelled.prefix(512))))
    }

    /// Share of object words in `captions` whose role the head predicts.
    public static func objectWordAccuracy(text: TextConditioning, objective: CaptionRoleObjective, captions: [String]) -> Double {
        var right = 0, total = 0
        for start in stride(from: 0, to: captions.count, by: 64) {
            let batch = Array(captions[start..<min(start + 64, captions.count)])
            let predicted = objective.predictedRoles(states: Autograd.inference { text.encodeBatch(batch).states })
            for (b, caption) in batch.enumerated() {
                guard let labels = CaptionRole.labels(caption: caption), labels.count < predicted[b].count else { continue }
                for (t, label) in labels.enumerated() where label != .none {
                    right += predicted[b][t] == label ? 1 : 0
                    total += 1
                }
            }
        }
        return total == 0 ? .nan : Double(right) / Double(total)
    }
}
