import ArgumentParser
import Foundation
import GokuPipeline
import Media
import ShapesDataset
import TensorCore
import Training

/// `goku eval`: measured evaluations of a model.
struct EvalCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "eval", abstract: "Evaluate a model.", subcommands: [EvalShapesCommand.self])
}

/// `goku eval shapes`: GenEval-style prompt following on the Shapes world, scored by the analytic detector.
struct EvalShapesCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "shapes",
        abstract: "Generate a held-out Shapes prompt set and score colour, shape, count, position and motion.")

    @Option(help: "Model folder (default: the shipped model).")
    var model: String?

    @Option(help: "Prompt file: one Shapes caption per line (default: a held-out set drawn from --seed).")
    var prompts: String?

    @Option(help: "Prompts drawn when no file is given.")
    var count = 64

    @Option(help: "Share of video prompts when drawing.")
    var videoFraction = 0.6

    @Option(help: "Prompt-set and noise seed.")
    var seed: UInt64 = 0

    @Option(help: "Sampling steps (default: the model's).")
    var steps: Int?

    @Option(help: "Guidance scale (default: the model's).")
    var cfg: Double?

    @Option(help: "Write every generated clip (GIF/PNG) and a results.jsonl here.")
    var saveTo: String?

    @Option(help: "Worker threads (default: all cores).")
    var threads: Int?

    func run() throws {
        if let threads { Parallel.threadCount = threads }
        let modelURL = try DefaultModel.resolve(model)
        let bundle = try GokuModelBundle.load(from: modelURL)
        let set = try prompts.map { try GokuModelBundle.readPrompts(URL(fileURLWithPath: $0)) }
            ?? ShapesPromptSet.sample(count: count, seed: seed, videoFraction: videoFraction, split: .evaluation)
        var options = GenerationOptions(prompt: "")
        options.steps = steps
        options.guidance = cfg
        options.seed = seed
        let saveURL = saveTo.map { URL(fileURLWithPath: $0) }
        if let saveURL { try FileManager.default.createDirectory(at: saveURL, withIntermediateDirectories: true) }
        var lines = ""
        let bar = ProgressBar(total: set.count, label: "eval shapes")
        bar.unit = "prompts"
        let score = try bundle.evaluateShapes(prompts: set, options: options) { i, record in
            bar.update(completed: i + 1)
            guard let saveURL else { return }
            let name = String(format: "%04d", i) + (record.video.shape[1] == 1 ? ".png" : ".gif")
            let url = saveURL.appendingPathComponent(name)
            if record.video.shape[1] == 1 {
                try? ImageFile.write(record.video.squeeze(1), to: url)
            } else {
                try? VideoFile.write(record.video, to: url, framesPerSecond: 8)
            }
            let encoder = JSONEncoder()
            encoder.outputFormatting = .sortedKeys
            if let judgement = try? encoder.encode(record.judgement) {
                lines += "{\"file\":\"\(name)\",\"caption\":\"\(record.attributes.caption)\",\"judgement\":\(String(decoding: judgement, as: UTF8.self))}\n"
            }
        }
        bar.finish()
        if let saveURL { try Data(lines.utf8).write(to: saveURL.appendingPathComponent("results.jsonl"), options: .atomic) }
        print("prompts: \(set.count) (\(set.filter(\.isVideo).count) videos)")
        print(score.summary)
    }
}
