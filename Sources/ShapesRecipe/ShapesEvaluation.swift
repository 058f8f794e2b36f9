import Foundation
import GokuPipeline
import ShapesDataset
import TensorCore

/// One evaluated prompt: what was asked, what the detector judged, and the clip.
public struct ShapesEvaluationRecord {
    /// The prompt's ground truth.
    public var attributes: SceneAttributes
    /// The detector's verdicts.
    public var judgement: ShapesJudgement
    /// The generated clip, (3, T, H, W).
    public var video: Tensor
}

extension GokuModelBundle {
    /// Generates every prompt (videos for prompts with motion, images otherwise) and scores the results with the
    /// analytic Shapes detector, GenEval-style: per-category accuracy and an overall mean.
    /// - Parameters:
    ///   - prompts: ground-truth records (e.g. `ShapesPromptSet.sample(…, split: .evaluation)`: captions never
    ///     trained on); `isVideo` picks the frame count.
    ///   - options: applied to every prompt (its `prompt` and `frames` are replaced); the seed of prompt i is
    ///     `options.seed + i`.
    ///   - onRecord: called after each prompt.
    public func evaluateShapes(
        prompts: [(attributes: SceneAttributes, isVideo: Bool)], options: GenerationOptions,
        onRecord: ((Int, ShapesEvaluationRecord) -> Void)? = nil
    ) throws -> ShapesScore {
        try scoreClips(prompts: prompts, options: options, onRecord: onRecord) { attributes, frames, seed in
            var request = options
            request.prompt = attributes.caption
            request.frames = frames
            request.seed = seed
            return try generate(request).video
        }
    }

    /// Scores the prompts' ground truth instead of generations: the detector's ceiling on this prompt set.
    ///
    /// Each prompt is rendered at the model's size (frame count as in `evaluateShapes`, layout seed
    /// `options.seed + i`); with `reconstructed` the render goes through the model's VAE first (encode, posterior
    /// mode, decode), which bounds what any transformer paired with this VAE can score.
    public func evaluateShapesReference(
        prompts: [(attributes: SceneAttributes, isVideo: Bool)], options: GenerationOptions, reconstructed: Bool,
        onRecord: ((Int, ShapesEvaluationRecord) -> Void)? = nil
    ) throws -> ShapesScore {
        let width = options.width ?? index.width, height = options.height ?? index.height
        return try scoreClips(prompts: prompts, options: options, onRecord: onRecord) { attributes, frames, seed in
            let video = ShapesGenerator.render(attributes, width: width, height: height, frames: frames, seed: seed).video
            guard reconstructed else { return video }
            return try Autograd.inference {
                try vae.decode(try vae.encode(video.unsqueeze(0)).mode).squeeze(0).clamp(min: -1, max: 1)
            }
        }
    }

    /// The scoring loop both evaluations share: prompt i gets its frame count (the model's for a video prompt, 1 for
    /// an image) and seed `options.seed + i`, `clip` makes its (3, T, H, W) clip, and the detector judges it.
    private func scoreClips(
        prompts: [(attributes: SceneAttributes, isVideo: Bool)], options: GenerationOptions,
        onRecord: ((Int, ShapesEvaluationRecord) -> Void)?,
        clip: (_ attributes: SceneAttributes, _ frames: Int, _ seed: UInt64) throws -> Tensor
    ) throws -> ShapesScore {
        var score = ShapesScore()
        for (i, prompt) in prompts.enumerated() {
            let frames = prompt.isVideo ? (options.frames ?? index.frames) : 1
            let video = try clip(prompt.attributes, frames, options.seed &+ UInt64(i))
            let judgement = ShapesJudgement(video: video, attributes: prompt.attributes)
            score.add(judgement)
            onRecord?(i, ShapesEvaluationRecord(attributes: prompt.attributes, judgement: judgement, video: video))
        }
        return score
    }

    /// Reads a prompt file: either one caption of the Shapes grammar per line (blank lines and `#` comments skipped;
    /// a caption with motion is a video prompt), or the JSON lines `goku data prompts` writes (`ShapesPromptFile`,
    /// recognised by a first line that starts with `{`; each says whether it is a video).
    /// - Throws: `GokuPipelineError.invalidOption` naming the file and line of a caption outside the grammar.
    public static func readPrompts(_ url: URL) throws -> [(attributes: SceneAttributes, isVideo: Bool)] {
        let text: String
        do { text = try String(contentsOf: url, encoding: .utf8) } catch {
            throw GokuPipelineError.invalidOption(option: "prompts", reason: "\(url.path): cannot read: \(error.localizedDescription)")
        }
        let first = text.split(separator: "\n").lazy.map { $0.trimmingCharacters(in: .whitespaces) }.first { !$0.isEmpty }
        if first?.hasPrefix("{") == true {
            do {
                return try ShapesPromptFile.read(url).map { ($0.attributes, $0.video) }
            } catch {
                throw GokuPipelineError.invalidOption(option: "prompts", reason: "\(error)")
            }
        }
        var prompts: [(SceneAttributes, Bool)] = []
        for (number, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = raw.trimmingCharacters(in: .whitespaces)
            if line.isEmpty || line.hasPrefix("#") { continue }
            do {
                let attributes = try SceneAttributes(caption: line)
                prompts.append((attributes, attributes.motion != .static))
            } catch {
                throw GokuPipelineError.invalidOption(option: "prompts", reason: "\(url.path):\(number + 1): \(error)")
            }
        }
        return prompts
    }
}
