import ArgumentParser
import Foundation
import GokuPipeline
import Media
import ShapesDataset
import ShapesRecipe
import TensorCore
import Training

/// `goku eval`: measured evaluations of a model.
struct EvalCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "eval", abstract: "Evaluate a model.", subcommands: [EvalShapesCommand.self, EvalTextCommand.self])
}

/// `goku eval shapes`: GenEval-style prompt following on the Shapes world, scored by the analytic detector.
struct EvalShapesCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "shapes",
        abstract: "Generate a held-out Shapes prompt set and score colour, shape, count, position and motion.")

    @OptionGroup var sampling: ModelSamplingOptions

    @Option(help: "Prompt file: one Shapes caption per line, or the JSON lines of `goku data prompts` (default: a held-out set drawn from --seed).")
    var prompts: String?

    @Option(help: "Prompts drawn when no file is given.")
    var count = 64

    @Option(help: "Share of video prompts when drawing.")
    var videoFraction = 0.6

    @Option(help: "Prompt-set and noise seed.")
    var seed: UInt64 = 0

    @Option(help: "Write every generated clip (GIF/PNG) and a results.jsonl here.")
    var saveTo: String?

    /// What to score instead of generations, to bound what a model can reach on this prompt set.
    enum Reference: String, ExpressibleByArgument, CaseIterable {
        /// The prompts' ground-truth renders: the detector's own accuracy.
        case rendered
        /// The renders after the model's VAE (encode, mode, decode): the ceiling for this VAE.
        case reconstructed
    }

    @Option(help: "Score the ground truth instead of generating: rendered or reconstructed (through the model's VAE).")
    var reference: Reference?

    func run() throws {
        let bundle = try sampling.loadModel()
        let set = try prompts.map { try GokuModelBundle.readPrompts(URL(fileURLWithPath: $0)) }
            ?? ShapesPromptSet.sample(count: count, seed: seed, videoFraction: videoFraction, split: .evaluation)
        var options = GenerationOptions(prompt: "")
        try sampling.apply(to: &options)
        options.seed = seed
        let saveURL = saveTo.map { URL(fileURLWithPath: $0) }
        if let saveURL { try FileManager.default.createDirectory(at: saveURL, withIntermediateDirectories: true) }
        var lines = ""
        let bar = ProgressBar(total: set.count, label: "eval shapes")
        bar.unit = "prompts"
        let onRecord: (Int, ShapesEvaluationRecord) -> Void = { i, record in
            bar.update(completed: i + 1)
            guard let saveURL else { return }
            let name = String(format: "%04d", i) + (record.video.shape[1] == 1 ? ".png" : ".gif")
            let url = saveURL.appendingPathComponent(name)
            do {
                if record.video.shape[1] == 1 {
                    try ImageFile.write(record.video.squeeze(1), to: url)
                } else {
                    try VideoFile.write(record.video, to: url, framesPerSecond: 8)
                }
            } catch {
                FileHandle.standardError.write(Data("warning: could not save \(url.path): \(error)\n".utf8))
            }
            let line: [String: Any] = [
                "file": name, "caption": record.attributes.caption,
                "judgement": (try? JSONSerialization.jsonObject(with: JSONEncoder().encode(record.judgement))) ?? [:],
            ]
            if let data = try? JSONSerialization.data(withJSONObject: line, options: [.sortedKeys]) {
                lines += String(decoding: data, as: UTF8.self) + "\n"
            }
        }
        let score = try reference.map {
            try bundle.evaluateShapesReference(
                prompts: set, options: options, reconstructed: $0 == .reconstructed, onRecord: onRecord)
        } ?? bundle.evaluateShapes(prompts: set, options: options, onRecord: onRecord)
        bar.finish()
        if let saveURL { try Data(lines.utf8).write(to: saveURL.appendingPathComponent("results.jsonl"), options: .atomic) }
        print("prompts: \(set.count) (\(set.filter(\.isVideo).count) videos)"
            + (reference.map { "; scored: \($0.rawValue) ground truth, not generations" } ?? ""))
        print(score.summary)
    }
}

/// `goku eval text`: how much the model's text encoder states depend on word order (`TextOrderProbe`).
struct EvalTextCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "text",
        abstract: "Probe the text encoder: do its states change when a pair caption's objects swap or its relation flips?")

    @Option(help: "Model folder; default: the shipped model.")
    var model: String?

    @Option(help: "Pair captions drawn (held-out split, static scenes).")
    var count = 64

    @Option(help: "Seed of the draw.")
    var seed: UInt64 = 0

    func run() throws {
        guard count > 0 else { throw ValidationError("--count must be positive") }
        let bundle = try GokuModelBundle.load(from: DefaultModel.resolve(model))
        var rng = ShapesRandom(seed: seed)
        var scenes: [SceneAttributes] = []
        while scenes.count < count {
            // Static scenes: a moving pair's caption ends "circle, both moving …", and "circle," is another word.
            let scene = ShapesPromptSet.random(using: &rng, video: false, split: .evaluation)
            if scene.isPair { scenes.append(scene) }
        }
        print(TextOrderProbe.measure(text: bundle.text, scenes: scenes).summary)
    }
}
