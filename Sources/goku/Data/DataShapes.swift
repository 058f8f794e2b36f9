import ArgumentParser
import Datasets
import Foundation
import Media
import ShapesDataset
import TensorCore

/// `goku data shapes`: the procedural Shapes dataset as PNG images, GIF videos and a `manifest.jsonl`.
struct DataShapes: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "shapes",
        abstract: "Write Shapes samples (PNG images, GIF videos) and a manifest.jsonl of captions and attributes.")

    @Option(help: "Number of samples.")
    var count: Int

    @Option(help: "Frame size WIDTHxHEIGHT.")
    var size = "64x64"

    @Option(help: "Frames per video (1 makes every sample an image).")
    var frames = 17

    @Option(help: "Share of samples that are images, 0…1.")
    var imageFraction = 0.3

    @Option(help: "Dataset seed: sample i of a seed is always the same.")
    var seed: UInt64 = 0

    @Option(help: "Caption split: training (held-out captions excluded), evaluation, or all.")
    var split = "training"

    @Option(help: "Frames per second stored in the GIFs.")
    var fps = 8.0

    @Option(help: "Output folder (created if missing).")
    var output: String

    func validate() throws {
        guard count >= 1 else { throw ValidationError("--count must be at least 1, got \(count)") }
        _ = try FrameSize.parse(size)
        guard PromptSplit(rawValue: split) != nil else {
            throw ValidationError("--split must be training, evaluation or all, got \"\(split)\"")
        }
        guard fps > 0, fps.isFinite else { throw ValidationError("--fps must be positive, got \(fps)") }
    }

    func run() throws {
        let (width, height) = try FrameSize.parse(size)
        let generator: ShapesGenerator
        do {
            generator = try ShapesGenerator(
                seed: seed, width: width, height: height, frames: frames, imageFraction: imageFraction,
                split: PromptSplit(rawValue: split)!)
        } catch {
            throw ValidationError("\(error)")
        }
        let directory = URL(fileURLWithPath: output)
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let digits = max(5, String(count - 1).count)
        var entries = [(ManifestEntry, SceneAttributes)?](repeating: nil, count: count)
        var failures = [String?](repeating: nil, count: count)
        let start = Date()
        let chunk = max(1, Parallel.threadCount * 8)
        for first in stride(from: 0, to: count, by: chunk) {
            let n = min(chunk, count - first)
            // Samples are independent and deterministic per index: render and encode them in parallel.
            entries.withUnsafeMutableBufferPointer { entryBuffer in
                failures.withUnsafeMutableBufferPointer { failureBuffer in
                    Parallel.forEach(n, grain: 1) { range in
                        for i in range {
                            let index = first + i
                            do {
                                entryBuffer[index] = try write(
                                    index, generator: generator, digits: digits, to: directory)
                            } catch {
                                failureBuffer[index] = "\(error)"
                            }
                        }
                    }
                }
            }
            if let failure = failures[first..<first + n].compactMap({ $0 }).first {
                throw ValidationError(failure)
            }
            let done = first + n, elapsed = Date().timeIntervalSince(start)
            let rate = Double(done) / max(elapsed, 1e-9)
            let eta = Double(count - done) / rate
            print(
                String(format: "\rshapes: %d/%d samples, %.1f/s, ETA %.0fs   ", done, count, rate, eta),
                terminator: done == count ? "\n" : "")
            fflush(stdout)
        }
        try ShapesManifest.write(entries.map { $0!.0 }, attributes: entries.map { $0!.1 }, to: directory)
        print("wrote \(count) samples and \(DatasetFolder.manifestName) to \(directory.path)")
    }

    /// Renders and writes sample `index`; returns its manifest entry.
    func write(_ index: Int, generator: ShapesGenerator, digits: Int, to directory: URL) throws -> (ManifestEntry, SceneAttributes) {
        let sample = generator.sample(at: index)
        let name = String(repeating: "0", count: max(0, digits - String(index).count)) + String(index)
        let file = name + (sample.isImage ? ".png" : ".gif")
        let url = directory.appendingPathComponent(file)
        if sample.isImage {
            try ImageFile.write(sample.video.squeeze(1), to: url)
        } else {
            try VideoFile.write(sample.video, to: url, framesPerSecond: fps)
        }
        let entry = ManifestEntry(
            file: file, caption: sample.caption, width: generator.width, height: generator.height,
            frames: sample.video.shape[1], fps: sample.isImage ? nil : fps)
        return (entry, sample.attributes)
    }
}
