import ArgumentParser
import Foundation
import ShapesDataset

/// `goku data prompts`: a Shapes prompt set (captions with their records) for evaluation.
struct DataPrompts: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "prompts",
        abstract:
            "Write a Shapes prompt set as JSON lines (caption, attributes, video), by default held out from training.")

    @Option(help: "Number of distinct prompts.")
    var count = 200

    @Option(help: "Share of prompts asking for videos, 0…1 (the rest are images).")
    var videoFraction = 0.7

    @Option(help: "Caption split: evaluation (held out from training), training, or all.")
    var split = "evaluation"

    @Option(help: "Seed of the draw.")
    var seed: UInt64 = 0

    @Option(help: "Output file (.jsonl).")
    var output: String

    func validate() throws {
        guard count >= 1 else { throw ValidationError("--count must be at least 1, got \(count)") }
        guard (0...1).contains(videoFraction) else {
            throw ValidationError("--video-fraction must be in [0, 1], got \(videoFraction)")
        }
        guard PromptSplit(rawValue: split) != nil else {
            throw ValidationError("--split must be evaluation, training or all, got \"\(split)\"")
        }
    }

    func run() throws {
        let drawn = ShapesPromptSet.sample(
            count: count, seed: seed, videoFraction: videoFraction, split: PromptSplit(rawValue: split)!)
        let prompts = drawn.map { ShapesPrompt(attributes: $0.attributes, video: $0.isVideo) }
        try ShapesPromptFile.write(prompts, to: URL(fileURLWithPath: output))
        let videos = prompts.filter(\.video).count
        print("wrote \(prompts.count) prompts (\(videos) videos, \(prompts.count - videos) images) to \(output)")
    }
}
