import Foundation
import GokuModel
import GokuPipeline
import RectifiedFlow
import ShapesDataset
import ShapesRecipe
import TensorCore
import TestSupport
import TextEncoder
import VAETraining
import VideoVAE
import XCTest

/// End to end on tiny models: a VAE folder, a transformer trained a few steps (resumed half way), the exported model
/// folder, and generation from it.
final class GokuPipelineTests: XCTestCase {
    private static var folder: URL!
    private static var vaeFolder: URL!
    private let devNull = FileHandle(forWritingAtPath: "/dev/null")!
    /// The recipe of these runs, which have no stages and train their text encoder.
    private let shapes = ShapesTrainingRecipe(options: tinyOptions())

    override class func setUp() {
        folder = FileManager.default.temporaryDirectory.appendingPathComponent("goku-pipeline-\(UUID().uuidString)")
        vaeFolder = folder.appendingPathComponent("vae")
        // A tiny VAE (untrained weights are enough to test the plumbing) with 16×16 frames.
        try! TestModels.saveTinyVAE(to: vaeFolder)
    }

    override class func tearDown() { try? FileManager.default.removeItem(at: folder) }

    private func tinyConfig(steps: Int) -> GokuTrainingConfig {
        var config = GokuTrainingConfig()
        config.preset = "tiny"
        config.vaeFolder = Self.vaeFolder.path
        config.maxTextLength = 12
        config.steps = steps
        config.warmupSteps = 1
        config.emaDecay = 0.9
        config.checkpointEvery = 2
        config.sampling = SamplingDefaults(steps: 3, guidance: 2, sampler: .euler)
        return config
    }

    /// The Shapes recipe's settings of these runs: a tiny text encoder, 6 clips of 16×16, 3 a step.
    private static func tinyOptions() -> ShapesRecipeOptions {
        var options = ShapesRecipeOptions()
        options.textEncoder = TestModels.tinyT5
        options.data.width = 16
        options.data.height = 16
        options.data.frames = 5
        options.datasetSize = 6
        options.samplesPerStep = 3
        return options
    }

    /// A run trained 2 steps in `name`, and copies of its folder named `copies`, each ready to be resumed differently.
    private func trainedRun(_ name: String, copies: [String]) throws -> [URL] {
        let run = Self.folder.appendingPathComponent(name)
        try GokuTrainer(config: tinyConfig(steps: 2), runDirectory: run, recipe: shapes, showProgress: false)
            .run(showProgress: false, output: devNull)
        let others = copies.map { Self.folder.appendingPathComponent($0) }
        for other in others { try FileManager.default.copyItem(at: run, to: other) }
        return [run] + others
    }

    /// Four steps straight equal two steps, a fresh trainer, and two more; the exported folder loads and generates
    /// deterministically.
    /// Without a recipe, a run needs stages (its data) and a pretrained text encoder: each missing one is named.
    func testTrainingWithoutARecipeNeedsStagesAndATextEncoder() throws {
        XCTAssertThrowsError(try GokuTrainer(
            config: tinyConfig(steps: 1), runDirectory: Self.folder.appendingPathComponent("no-recipe"), showProgress: false)
        ) { error in
            XCTAssertTrue("\(error)".contains("stages"), "\(error)")
        }
        var staged = tinyConfig(steps: 1)
        staged.stages = [TrainingStage(name: "s", steps: 1, datasets: [.init(path: "/nowhere")], tokenBudget: 4096)]
        XCTAssertThrowsError(try GokuTrainer(
            config: staged, runDirectory: Self.folder.appendingPathComponent("no-recipe-staged"), showProgress: false)
        ) { error in
            XCTAssertTrue("\(error)".contains("textEncoderFolder"), "\(error)")
        }
    }

    func testTrainResumeExportGenerate() throws {
        let straightRun = Self.folder.appendingPathComponent("straight")
        let straight = try GokuTrainer(config: tinyConfig(steps: 4), runDirectory: straightRun, recipe: shapes, showProgress: false)
        try straight.run(showProgress: false, output: devNull)

        let resumedRun = Self.folder.appendingPathComponent("resumed")
        try GokuTrainer(config: tinyConfig(steps: 2), runDirectory: resumedRun, recipe: shapes, showProgress: false)
            .run(showProgress: false, output: devNull)
        let resumed = try GokuTrainer(config: tinyConfig(steps: 4), runDirectory: resumedRun, recipe: shapes, showProgress: false)
        XCTAssertEqual(resumed.step, 2)
        try resumed.run(showProgress: false, output: devNull)
        for (key, value) in straight.transformer.parameterDictionary() {
            XCTAssertEqual(resumed.transformer.parameterDictionary()[key]!.scalars, value.scalars, key)
        }
        for (key, value) in straight.text.encoder.model.parameterDictionary() {
            XCTAssertEqual(resumed.text.encoder.model.parameterDictionary()[key]!.scalars, value.scalars, "text " + key)
        }

        let bundle = try GokuModelBundle.load(from: resumedRun.appendingPathComponent("model"))
        XCTAssertEqual(bundle.index.frames, 5)
        var options = GenerationOptions(prompt: "a large red circle moving right")
        options.seed = 7
        let a = try bundle.generate(options)
        let b = try bundle.generate(options)
        XCTAssertEqual(a.video.shape, [3, 5, 16, 16])
        XCTAssertEqual(a.video.scalars, b.video.scalars, "same seed, same output")
        options.seed = 8
        XCTAssertNotEqual(try bundle.generate(options).video.scalars, a.video.scalars)
        options.frames = 1
        XCTAssertEqual(try bundle.generate(options).video.shape, [3, 1, 16, 16])

        // Image-to-video: the first frame conditions the clip.
        options.frames = 5
        options.firstFrame = Tensor.rand([3, 1, 16, 16], low: -1, high: 1, generator: RandomGenerator(seed: 3))
        XCTAssertEqual(try bundle.generate(options).video.shape, [3, 5, 16, 16])
    }

    /// Opening a run only to export it (`goku train --export-only`, possibly while another process trains it)
    /// leaves its metrics log as it is; training from the checkpoint then drops the records past it.
    func testExportLeavesTheMetricsLogAlone() throws {
        let run = Self.folder.appendingPathComponent("export-log")
        try GokuTrainer(config: tinyConfig(steps: 2), runDirectory: run, recipe: shapes, showProgress: false)
            .run(showProgress: false, output: devNull)
        let url = run.appendingPathComponent("metrics.jsonl")
        let handle = try FileHandle(forWritingTo: url)
        handle.seekToEndOfFile()
        handle.write(Data("{\"step\":3,\"loss\":0.5}\n".utf8))  // as a live run past the checkpoint would
        try handle.close()
        let before = try Data(contentsOf: url)
        let exporter = try GokuTrainer(config: tinyConfig(steps: 2), runDirectory: run, recipe: shapes, showProgress: false)
        try exporter.export(to: run.appendingPathComponent("exported"))
        XCTAssertEqual(try Data(contentsOf: url), before, "export rewrote the metrics log")
        let resumed = try GokuTrainer(config: tinyConfig(steps: 3), runDirectory: run, recipe: shapes, showProgress: false)
        try resumed.run(showProgress: false, output: devNull)
        let steps = try String(contentsOf: url, encoding: .utf8).split(separator: "\n").filter { $0.contains("\"step\":3") }
        XCTAssertEqual(steps.count, 1, "the record past the checkpoint was dropped and step 3 logged once")
    }

    /// The caption-role loss turned on when resuming a run without it: its phase runs once, the head starts fresh, the
    /// loss is logged, and from then on resuming is exact for the head too.
    func testRoleLossTurnedOnWhenResuming() throws {
        func roleConfig(steps: Int) -> GokuTrainingConfig {
            var config = tinyConfig(steps: steps)
            config.maxTextLength = 16  // pair captions fit, so they are labelled too
            config.decay = .constant  // the learning rate then does not depend on the step count each phase targets
            return config
        }
        func roleRecipe(weight: Double) -> ShapesTrainingRecipe {
            var options = Self.tinyOptions()
            options.textRoleLossWeight = weight
            options.textRolePretrainSteps = 3
            options.textRoleReinitialize = true
            return ShapesTrainingRecipe(options: options)
        }
        let straightRun = Self.folder.appendingPathComponent("roles-straight")
        try GokuTrainer(config: roleConfig(steps: 2), runDirectory: straightRun, recipe: roleRecipe(weight: 0), showProgress: false)
            .run(showProgress: false, output: devNull)
        let straight = try GokuTrainer(config: roleConfig(steps: 6), runDirectory: straightRun, recipe: roleRecipe(weight: 0.1), showProgress: false)
        XCTAssertEqual(straight.step, 2)
        XCTAssertTrue(straight.textPretrainingPending)
        let before = straight.text.encoder.model.parameterDictionary()["shared.weight"]!.scalars
        try straight.run(showProgress: false, output: devNull)
        XCTAssertFalse(straight.textPretrainingPending)
        XCTAssertNotEqual(straight.text.encoder.model.parameterDictionary()["shared.weight"]!.scalars, before)
        let log = try String(contentsOf: straightRun.appendingPathComponent("metrics.jsonl"), encoding: .utf8)
        let lines = log.split(separator: "\n")
        XCTAssertFalse(lines[1].contains("text_role_loss"), "step 2 trained without it")
        XCTAssertTrue(lines[2].contains("text_role_loss"), String(lines[2]))

        let resumedRun = Self.folder.appendingPathComponent("roles-resumed")
        try GokuTrainer(config: roleConfig(steps: 2), runDirectory: resumedRun, recipe: roleRecipe(weight: 0), showProgress: false)
            .run(showProgress: false, output: devNull)
        try GokuTrainer(config: roleConfig(steps: 4), runDirectory: resumedRun, recipe: roleRecipe(weight: 0.1), showProgress: false)
            .run(showProgress: false, output: devNull)
        let resumed = try GokuTrainer(config: roleConfig(steps: 6), runDirectory: resumedRun, recipe: roleRecipe(weight: 0.1), showProgress: false)
        XCTAssertFalse(resumed.textPretrainingPending, "the checkpoint has the head: the phase ran before it")
        try resumed.run(showProgress: false, output: devNull)
        for (key, value) in (straight.auxiliaryTextObjective as! CaptionRoleTextObjective).objective.head.parameterDictionary() {
            XCTAssertEqual((resumed.auxiliaryTextObjective as! CaptionRoleTextObjective).objective.head.parameterDictionary()[key]!.scalars, value.scalars, "head " + key)
        }
        for (key, value) in straight.text.encoder.model.parameterDictionary() {
            XCTAssertEqual(resumed.text.encoder.model.parameterDictionary()[key]!.scalars, value.scalars, "text " + key)
        }
        XCTAssertThrowsError(try GokuTrainer(
            config: { var c = roleConfig(steps: 6); c.textEncoderFolder = "/nowhere"; return c }(),
            runDirectory: Self.folder.appendingPathComponent("roles-frozen"), recipe: roleRecipe(weight: 0.1), showProgress: false)
        ) { error in
            XCTAssertTrue("\(error)".contains("textRoleLossWeight"), "\(error)")
        }
    }

    /// A resumed run may draw flow times differently (a later stage training other noise levels more): it resumes
    /// from the checkpoint, trains with the new distribution (its weights part from those of a run resumed with the
    /// old one), and `run.json` records it, as it does new sampling defaults. Another change, such as the learning rate, is still refused.
    func testTimeDistributionMayChangeOnResume() throws {
        let runs = try trainedRun("times-first", copies: ["times-second"])
        let (first, second) = (runs[0], runs[1])

        let same = try GokuTrainer(config: tinyConfig(steps: 3), runDirectory: first, recipe: shapes, showProgress: false)
        try same.run(showProgress: false, output: devNull)
        var changed = tinyConfig(steps: 3)
        changed.timesteps = .uniform
        changed.shiftTimesteps = false
        changed.sampling.guidanceInterval = GuidanceInterval(lower: 0, upper: 0.7)  // read only by the exported index
        let moved = try GokuTrainer(config: changed, runDirectory: second, recipe: shapes, showProgress: false)
        XCTAssertEqual(moved.step, 2)
        try moved.run(showProgress: false, output: devNull)
        let a = same.transformer.parameterDictionary(), b = moved.transformer.parameterDictionary()
        XCTAssertTrue(a.contains { key, value in b[key]!.scalars != value.scalars }, "the new distribution changed nothing")
        let stored = try JSONDecoder().decode(
            GokuTrainingConfig.self, from: Data(contentsOf: second.appendingPathComponent("run.json")))
        XCTAssertEqual(stored.timesteps, .uniform)
        XCTAssertFalse(stored.shiftTimesteps)
        XCTAssertEqual(stored.sampling.guidanceInterval, GuidanceInterval(lower: 0, upper: 0.7))

        var other = tinyConfig(steps: 4)
        other.learningRate *= 2
        XCTAssertThrowsError(try GokuTrainer(config: other, runDirectory: second, recipe: shapes, showProgress: false)) { error in
            XCTAssertTrue("\(error)".contains("another config"), "\(error)")
        }
    }

    /// A stage that weights objects more (`foregroundLossWeight`) resumes a run trained without: it continues from the
    /// checkpoint, its loss differs from the plain one on the same batch (so some positions, not all, are foreground),
    /// its weights part from those of the plain run's, and `run.json` records the weighting. Weighting the model's
    /// estimate's objects too is another loss again; an unknown choice is named.
    func testForegroundWeightingMayChangeOnResume() throws {
        let runs = try trainedRun("foreground-plain", copies: ["foreground-data", "foreground-estimate"])
        let (plainRun, dataRun, estimateRun) = (runs[0], runs[1], runs[2])

        let plain = try GokuTrainer(config: tinyConfig(steps: 3), runDirectory: plainRun, recipe: shapes, showProgress: false)
        let config = tinyConfig(steps: 3)
        var options = Self.tinyOptions()
        options.foregroundLossWeight = 4
        options.foregroundThreshold = 0.05
        options.foregroundOf = .data
        let data = try GokuTrainer(
            config: config, runDirectory: dataRun, recipe: ShapesTrainingRecipe(options: options), showProgress: false)
        XCTAssertEqual(data.step, 2)
        let plainLoss = try plain.trainStep().loss, dataLoss = try data.trainStep().loss
        XCTAssertNotEqual(plainLoss, dataLoss, accuracy: 1e-6 * plainLoss, "the weighting changed nothing")
        let a = plain.transformer.parameterDictionary(), b = data.transformer.parameterDictionary()
        XCTAssertTrue(a.contains { key, value in b[key]!.scalars != value.scalars })
        let stored = try JSONDecoder().decode(
            ShapesRecipeOptions.self, from: Data(contentsOf: dataRun.appendingPathComponent("run.json")))
        XCTAssertEqual(stored.foregroundLossWeight, 4)
        XCTAssertEqual(stored.foregroundThreshold, 0.05)
        XCTAssertEqual(stored.foregroundOf, .data)

        options.foregroundOf = .dataOrEstimate
        let estimate = try GokuTrainer(
            config: config, runDirectory: estimateRun, recipe: ShapesTrainingRecipe(options: options), showProgress: false)
        XCTAssertNotEqual(try estimate.trainStep().loss, dataLoss, accuracy: 1e-6 * dataLoss)
        let file = Self.folder.appendingPathComponent("foreground-both.json")
        try Data(#"{"vaeFolder": "v", "foregroundOf": "both"}"#.utf8).write(to: file)
        XCTAssertThrowsError(try ShapesTrainingRecipe.read(from: file)) { error in
            XCTAssertTrue("\(error)".contains("foregroundOf"), "\(error)")
        }
    }

    /// Guidance limited to an interval of flow times: an interval holding every step's time is full guidance, one
    /// holding none is no guidance (guidance 1), one in between differs from both; bad bounds are named, and the
    /// model's default interval round-trips through `model_index.json`.
    func testGuidanceInterval() throws {
        let run = Self.folder.appendingPathComponent("interval")
        try GokuTrainer(config: tinyConfig(steps: 2), runDirectory: run, recipe: shapes, showProgress: false)
            .run(showProgress: false, output: devNull)
        let bundle = try GokuModelBundle.load(from: run.appendingPathComponent("model"))
        var options = GenerationOptions(prompt: "a small blue square")
        options.seed = 3
        options.steps = 4
        options.shift = 1  // steps evaluated at t = 0, 0.25, 0.5, 0.75
        options.guidance = 3
        let full = try bundle.generate(options).video.scalars
        options.guidanceInterval = GuidanceInterval(lower: 0, upper: 1)
        XCTAssertEqual(try bundle.generate(options).video.scalars, full)
        options.guidanceInterval = GuidanceInterval(lower: 0.9, upper: 1)
        let none = try bundle.generate(options).video.scalars
        var unguided = options
        unguided.guidanceInterval = nil
        unguided.guidance = 1
        XCTAssertEqual(none, try bundle.generate(unguided).video.scalars)
        XCTAssertNotEqual(none, full, "guidance changed nothing, so the test shows nothing")
        options.guidanceInterval = GuidanceInterval(lower: 0, upper: 0.3)
        let part = try bundle.generate(options).video.scalars
        XCTAssertNotEqual(part, full)
        XCTAssertNotEqual(part, none)

        for bad in [GuidanceInterval(lower: 0.5, upper: 0.2), GuidanceInterval(lower: -0.1, upper: 1), GuidanceInterval(lower: 0, upper: .nan)] {
            options.guidanceInterval = bad
            XCTAssertThrowsError(try bundle.generate(options)) { error in
                guard case GokuPipelineError.invalidOption(let name, _) = error else { return XCTFail("\(error)") }
                XCTAssertEqual(name, "cfg-interval")
            }
        }
        XCTAssertEqual(GuidanceInterval(parsing: " 0, 0.7"), GuidanceInterval(lower: 0, upper: 0.7))
        XCTAssertNil(GuidanceInterval(parsing: "0.7"))
        XCTAssertNil(GuidanceInterval(parsing: "a,b"))

        let defaults = SamplingDefaults(guidanceInterval: GuidanceInterval(lower: 0, upper: 0.7))
        let json = try JSONEncoder().encode(defaults)
        XCTAssertTrue(String(decoding: json, as: UTF8.self).contains("\"guidance_interval\":[0,0.7]"))
        XCTAssertEqual(try JSONDecoder().decode(SamplingDefaults.self, from: json), defaults)
        XCTAssertNil(try JSONDecoder().decode(SamplingDefaults.self, from: Data(#"{"steps":3,"guidance":2,"sampler":"euler"}"#.utf8)).guidanceInterval)
        XCTAssertThrowsError(try JSONDecoder().decode(SamplingDefaults.self, from: Data(#"{"steps":3,"guidance":2,"sampler":"euler","guidance_interval":[0]}"#.utf8)))
    }

    /// Bad requests are named, not crashes.
    func testGenerationErrors() throws {
        let run = Self.folder.appendingPathComponent("errors")
        let trainer = try GokuTrainer(config: tinyConfig(steps: 1), runDirectory: run, recipe: shapes, showProgress: false)
        try trainer.export(to: run.appendingPathComponent("model"))
        let bundle = try GokuModelBundle.load(from: run.appendingPathComponent("model"))
        func expect(_ option: String, _ change: (inout GenerationOptions) -> Void) {
            var options = GenerationOptions(prompt: "a red circle")
            change(&options)
            XCTAssertThrowsError(try bundle.generate(options)) { error in
                guard case GokuPipelineError.invalidOption(let name, _) = error else { return XCTFail("\(error)") }
                XCTAssertEqual(name, option)
            }
        }
        expect("prompt") { $0.prompt = "  " }
        expect("frames") { $0.frames = 6 }
        expect("size") { $0.width = 24 }
        XCTAssertThrowsError(
            try JSONDecoder().decode(SamplingDefaults.self, from: Data(#"{"steps":3,"guidance":2,"sampler":"rk4"}"#.utf8))
        ) { error in XCTAssertTrue("\(error)".contains("unknown sampler 'rk4' (valid: euler, heun)"), "\(error)") }
        expect("shift") { $0.shift = 0 }
        XCTAssertThrowsError(try GokuModelBundle.load(from: Self.folder.appendingPathComponent("nowhere"))) { error in
            XCTAssertTrue("\(error)".contains("model_index.json"), "\(error)")
        }
    }

    /// A decoder trained further replaces the model's (same latent space); a VAE whose latent scaling or channels
    /// differ, or whose encoder is another, is refused, naming the setting or weight.
    func testReplacingTheDecoder() throws {
        let run = Self.folder.appendingPathComponent("decoder")
        let trainer = try GokuTrainer(config: tinyConfig(steps: 1), runDirectory: run, recipe: shapes, showProgress: false)
        try trainer.export(to: run.appendingPathComponent("model"))
        let bundle = try GokuModelBundle.load(from: run.appendingPathComponent("model"))
        let decoder = try VideoAutoencoder(config: bundle.vae.config)
        try decoder.load(bundle.vae.parameterDictionary())
        let replaced = try bundle.replacingDecoder(with: decoder)
        XCTAssertTrue(replaced.vae === decoder)
        XCTAssertTrue(replaced.transformer === bundle.transformer)

        var rescaled = bundle.vae.config
        rescaled.scalingFactor *= 1.5
        XCTAssertThrowsError(try bundle.replacingDecoder(with: VideoAutoencoder(config: rescaled))) { error in
            XCTAssertTrue("\(error)".contains("scaling_factor"), "\(error)")
        }
        let otherEncoder = try VideoAutoencoder(config: bundle.vae.config)
        try otherEncoder.load(bundle.vae.parameterDictionary())
        let (key, weight) = otherEncoder.namedParameters().first { $0.key.hasPrefix("encoder.") }!
        weight.assign(weight + 0.05)
        XCTAssertThrowsError(try bundle.replacingDecoder(with: otherEncoder)) { error in
            XCTAssertTrue("\(error)".contains(key), "\(error)")
        }
        var wider = bundle.vae.config
        wider.latentChannels *= 2
        XCTAssertThrowsError(try bundle.replacingDecoder(with: VideoAutoencoder(config: wider))) { error in
            XCTAssertTrue("\(error)".contains("latent_channels"), "\(error)")
        }
    }

    /// Evaluation prompt files: plain captions (motion makes a video) and the JSON lines of `goku data prompts`
    /// (which say whether each is a video) read to the same scenes; a caption outside the grammar is named with its
    /// line in either form.
    func testEvaluationPromptFiles() throws {
        try FileManager.default.createDirectory(at: Self.folder, withIntermediateDirectories: true)
        let drawn = ShapesPromptSet.sample(count: 6, seed: 3, videoFraction: 0.5, split: .evaluation)
        let jsonl = Self.folder.appendingPathComponent("prompts.jsonl")
        try ShapesPromptFile.write(drawn.map { ShapesPrompt(attributes: $0.attributes, video: $0.isVideo) }, to: jsonl)
        let fromJSON = try GokuModelBundle.readPrompts(jsonl)
        XCTAssertEqual(fromJSON.map(\.attributes), drawn.map(\.attributes))
        XCTAssertEqual(fromJSON.map(\.isVideo), drawn.map(\.isVideo))

        let captions = Self.folder.appendingPathComponent("prompts.txt")
        try ("# held out\n" + drawn.map(\.attributes.caption).joined(separator: "\n") + "\n").write(
            to: captions, atomically: true, encoding: .utf8)
        let fromText = try GokuModelBundle.readPrompts(captions)
        XCTAssertEqual(fromText.map(\.attributes), drawn.map(\.attributes))
        XCTAssertEqual(fromText.map(\.isVideo), drawn.map { $0.attributes.motion != .static })

        for (name, text) in [("bad.txt", "a red circle\na red hexagon\n"), ("bad.jsonl", "{\"caption\": \"a red hexagon\"}\n")] {
            let url = Self.folder.appendingPathComponent(name)
            try text.write(to: url, atomically: true, encoding: .utf8)
            XCTAssertThrowsError(try GokuModelBundle.readPrompts(url)) { error in
                XCTAssertTrue("\(error)".contains("prompts") && "\(error)".contains("\(name)"), "\(error)")
            }
        }
    }

    /// The Shapes vocabulary written as tokenizer.json reads back to the same ids, and captions use whole words.
    func testShapesTokenizerRoundTrip() throws {
        let tokenizer = try ShapesText.tokenizer()
        let url = Self.folder.appendingPathComponent("tokenizer.json")
        try FileManager.default.createDirectory(at: Self.folder, withIntermediateDirectories: true)
        try ShapesText.tokenizerJSON(tokenizer.pieces).write(to: url)
        let reread = try T5Tokenizer(tokenizerJSON: url)
        for text in ["a large red circle moving right", "two blue squares", "A Purple thing, 42!", ""] {
            XCTAssertEqual(reread.encode(text).ids, tokenizer.encode(text).ids, text)
        }
        XCTAssertEqual(tokenizer.encode("a large red circle").ids.count, 5)  // four words and </s>
        XCTAssertLessThanOrEqual(tokenizer.vocabularySize, ShapesText.encoderConfig.vocabSize)
    }

    /// A text encoder loaded from a folder is saved with that folder's tokenizer files, byte for byte (a pretrained
    /// T5's normalizer and special-token files survive); one built in memory gets the Unigram `tokenizer.json`.
    func testTextEncoderSaveKeepsALoadedTokenizer() throws {
        let fm = FileManager.default
        let model = T5EncoderModel(
            config: T5Config(
                dModel: 16, dKV: 8, dFF: 32, numLayers: 1, numHeads: 2, relativeAttentionNumBuckets: 8,
                relativeAttentionMaxDistance: 16, vocabSize: 128),
            generator: RandomGenerator(seed: 4))
        let built = TextConditioning(T5TextEncoder(tokenizer: try ShapesText.tokenizer(), model: model, maxLength: 12))
        let source = Self.folder.appendingPathComponent("t5-source")
        try built.save(to: source)
        XCTAssertEqual(
            try Data(contentsOf: source.appendingPathComponent("tokenizer.json")),
            try TextConditioning.unigramTokenizerJSON(built.encoder.tokenizer.pieces))
        // The "pretrained" folder: its tokenizer.json laid out differently, and the files transformers reads beside it.
        let original = try JSONSerialization.jsonObject(with: Data(contentsOf: source.appendingPathComponent("tokenizer.json")))
        try JSONSerialization.data(withJSONObject: original, options: [.withoutEscapingSlashes])
            .write(to: source.appendingPathComponent("tokenizer.json"))
        try Data(#"{"model_max_length": 512, "tokenizer_class": "T5Tokenizer"}"#.utf8)
            .write(to: source.appendingPathComponent("tokenizer_config.json"))
        try Data(#"{"eos_token": "</s>", "pad_token": "<pad>", "unk_token": "<unk>"}"#.utf8)
            .write(to: source.appendingPathComponent("special_tokens_map.json"))

        let loaded = TextConditioning(try T5TextEncoder.load(from: source, maxLength: 12), tokenizerFolder: source)
        let copy = Self.folder.appendingPathComponent("t5-copy")
        try loaded.save(to: copy)
        for name in ["tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"] {
            XCTAssertEqual(
                try Data(contentsOf: copy.appendingPathComponent(name)), try Data(contentsOf: source.appendingPathComponent(name)),
                name)
        }
        XCTAssertFalse(fm.fileExists(atPath: copy.appendingPathComponent("spiece.model").path))
        // Saved over its own folder, the files stay.
        let before = try Data(contentsOf: source.appendingPathComponent("tokenizer.json"))
        try loaded.save(to: source)
        XCTAssertEqual(try Data(contentsOf: source.appendingPathComponent("tokenizer.json")), before)
        let reloaded = try T5TextEncoder.load(from: copy, maxLength: 12)
        XCTAssertEqual(reloaded.tokenizer.encode("a large red circle").ids, built.encoder.tokenizer.encode("a large red circle").ids)
    }
}
