import Checkpoint
import Foundation
import GokuModel
import NN
import TensorCore
import TestSupport
import XCTest

/// Random non-zero weights for every parameter, so zero initialisation hides nothing.
func randomize(_ model: Module, seed: UInt64) {
    let g = RandomGenerator(seed: seed)
    for (key, p) in model.namedParameters() {
        let noise = Tensor.randn(p.shape, generator: g)
        if key.hasSuffix("norm.weight") || key.hasSuffix("norm2.weight") || key.hasSuffix("norm3.weight") {
            p.assign(noise * 0.1 + 1)
        } else {
            p.assign(noise * (key.hasSuffix("bias") ? 0.05 : 0.15))
        }
    }
}

/// `expectClose` with the absolute tolerance scaled to the expected tensor's largest magnitude: float32 sums of
/// many terms carry an absolute error of about `tolerance`·scale, which small elements cannot meet relatively.
func expectCloseToScale(
    _ actual: Tensor, _ expected: Tensor, _ tolerance: Double, _ message: String, file: StaticString = #filePath,
    line: UInt = #line
) {
    let scale = Double(expected.abs().max().item())
    expectClose(actual, expected, rtol: tolerance, atol: tolerance * scale, message, file: file, line: line)
}

final class GokuConfigTests: XCTestCase {
    /// The paper's sizes (spec §3.2): 0.88B, 2.00B and 8.05B, counted from the config alone.
    func testPresetParameterCountsMatchThePaper() throws {
        for (config, expected) in [(GokuConfig.goku1B, 0.88e9), (.goku2B, 2.00e9), (.goku8B, 8.05e9)] {
            try config.validate()
            let count = Double(config.parameterCount)
            XCTAssertEqual(count, expected, accuracy: expected * 0.01, "\(config.hiddenSize)-wide preset")
        }
    }

    /// The analytic count equals the allocated model's, for the presets small enough to build.
    func testAnalyticCountEqualsModel() throws {
        var i2v = GokuConfig.tiny
        i2v.imageConditioning = true
        i2v.learnSigma = true
        for config in [GokuConfig.tiny, .small, i2v] {
            try config.validate()
            XCTAssertEqual(GokuTransformer(config).parameterCount, config.parameterCount)
        }
        XCTAssertEqual(GokuConfig.small.parameterCount, 11_865_408)  // 8 × 1,446,144 + embedders and final layer
    }

    func testValidateNamesTheBadField() {
        var config = GokuConfig.tiny
        config.ropeAxisDims = [4, 6, 8]
        XCTAssertThrowsError(try config.validate()) { error in
            guard case GokuConfigError.invalidField(let field, _) = error else { return XCTFail("\(error)") }
            XCTAssertEqual(field, "ropeAxisDims")
        }
        config = .tiny
        config.headCount = 3
        XCTAssertThrowsError(try config.validate()) { error in
            XCTAssertEqual((error as? GokuConfigError).map { "\($0)" }?.hasPrefix("GokuConfig.headCount"), true)
        }
    }

    func testConfigFileRoundTripAndBadFile() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("goku-config-\(getpid())")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        try GokuConfig.goku2B.save(to: folder)
        XCTAssertEqual(try GokuConfig.load(from: folder), .goku2B)
        var bad = GokuConfig.goku2B
        bad.depth = 0
        try ConfigFile.write(bad, to: folder)
        XCTAssertThrowsError(try GokuConfig.load(from: folder)) { error in
            guard case CheckpointError.invalidConfig(let file, let field, _) = error else { return XCTFail("\(error)") }
            XCTAssertTrue(file.hasSuffix("config.json"))
            XCTAssertEqual(field, "depth")
        }
    }
}

final class GokuModelTests: XCTestCase {
    let config = GokuConfig.tiny

    func testPatchifyRoundTripAndOrder() {
        let latent = Tensor.randn([3, 2, 4, 6], generator: RandomGenerator(seed: 1))
        let tokens = Patchify.patchify(latent, patchSize: [1, 2, 2])
        XCTAssertEqual(tokens.shape, [2 * 2 * 3, 12])
        // Token (t=1, h=1, w=2), feature (c=2, ph=1, pw=0) is latent[2, 1, 3, 4].
        let token = (1 * 2 + 1) * 3 + 2, feature = 2 * 4 + 1 * 2 + 0
        XCTAssertEqual(tokens.scalars[token * 12 + feature], latent.scalars[((2 * 2 + 1) * 4 + 3) * 6 + 4])
        let back = Patchify.unpatchify(tokens, grid: [2, 2, 3], channels: 3, patchSize: [1, 2, 2])
        XCTAssertEqual(back.scalars, latent.scalars)
        XCTAssertEqual(Patchify.ropePositions(grid: [2, 1, 2]), [[0, 0, 0], [0, 0, 1], [1, 0, 0], [1, 0, 1]])
    }

    func samples(_ g: RandomGenerator) -> [GokuSample] {
        [
            GokuSample(
                latent: Tensor.randn([4, 1, 4, 6], generator: g), timestep: 0.2,
                text: Tensor.randn([5, 24], generator: g), textMask: [true, true, true, false, false]),
            GokuSample(
                latent: Tensor.randn([4, 3, 4, 4], generator: g), timestep: 0.7,
                text: Tensor.randn([3, 24], generator: g)),
            GokuSample(
                latent: Tensor.randn([4, 1, 2, 2], generator: g), timestep: 0.95,
                text: Tensor.randn([4, 24], generator: g), textMask: [true, false, true, true]),
        ]
    }

    /// adaLN-Zero: a fresh block is exactly the identity and a fresh model predicts zero velocity.
    func testZeroInitialisedBlocksAreTheIdentity() throws {
        let model = GokuTransformer(config, generator: RandomGenerator(seed: 3))
        let batch = try PackedBatch(samples: samples(RandomGenerator(seed: 4)), config: config)
        let x = Tensor.randn([1, batch.layout.tokenCount, config.hiddenSize], generator: RandomGenerator(seed: 5))
        let c = Tensor.randn([3, config.hiddenSize], generator: RandomGenerator(seed: 6))
        for block in model.blocks {
            XCTAssertEqual(block(x, conditioning: c, batch: batch).scalars, x.scalars)
        }
        XCTAssertEqual(model(batch).abs().max().item(), 0)
        // The zeroed layers still receive gradients, so training moves them.
        model(batch).square().sum().backward()
        let target = Tensor.randn([1, batch.layout.tokenCount, 16], generator: RandomGenerator(seed: 7))
        model.zeroGrad()
        (model(batch) - target).square().sum().backward()
        XCTAssertGreaterThan(model.finalLayer.linear.weight.grad!.abs().max().item(), 0)
    }

    /// The Swift model on the packed pair equals the PyTorch reference run per sample: velocities, loss, gradients.
    func testMatchesPyTorchReference() throws {
        let f = try Fixture.load("goku_tiny", target: "GokuModelTests")
        let model = GokuTransformer(config)
        let params = Dictionary(
            uniqueKeysWithValues: f.filter { $0.key.hasPrefix("param.") }.map {
                (String($0.key.dropFirst(6)), $0.value)
            })
        try model.load(params)
        let ts = f.tensor("timesteps").doubleScalars
        var samples: [GokuSample] = [], targets: [Tensor] = []
        for i in 0..<2 {
            let data = f.tensor("data\(i)"), noise = f.tensor("noise\(i)")
            let xt = data * ts[i] + noise * (1 - ts[i])
            samples.append(
                GokuSample(
                    latent: xt, timestep: ts[i], text: f.tensor("text\(i)"),
                    textMask: f.tensor("text_mask\(i)").scalars.map { $0 > 0.5 }))
            targets.append(data - noise)
        }
        let velocities = try model.velocity(samples)
        var squared: Tensor?, count = 0
        for i in 0..<2 {
            expectCloseToScale(velocities[i], f.tensor("velocity\(i)"), 1e-4, "velocity of sample \(i)")
            let term = (velocities[i] - targets[i]).square().sum()
            squared = squared.map { $0 + term } ?? term
            count += targets[i].count
        }
        let loss = squared! / Double(count)
        expectClose(loss.reshape([1]), f.tensor("loss"), rtol: 1e-4, atol: 1e-6, "loss")
        loss.backward()
        for (key, p) in model.namedParameters() {
            expectCloseToScale(p.grad!, f.tensor("grad." + key), 1e-4, "gradient of \(key)")
        }
    }

    /// Patch n' Pack: one packed forward and backward equals the per-sample ones.
    func testPackedEqualsPerSample() throws {
        let model = GokuTransformer(config)
        randomize(model, seed: 11)
        let all = samples(RandomGenerator(seed: 12))
        let g = RandomGenerator(seed: 13)
        let weights = all.map { Tensor.randn($0.latent.shape, generator: g) }
        // Packed.
        let packed = try model.velocity(all)
        zip(packed, weights).map { ($0 * $1).sum() }.reduce(Tensor.zeros([]), +).backward()
        let packedGrads = model.namedParameters().map { $0.tensor.grad! }
        // One by one, gradients accumulated.
        model.zeroGrad()
        var single: [Tensor] = []
        for (s, w) in zip(all, weights) {
            let v = try model.velocity([s])[0]
            (v * w).sum().backward()
            single.append(v)
        }
        for i in all.indices { expectCloseToScale(packed[i], single[i], 1e-5, "output of sample \(i)") }
        for ((key, p), packedGrad) in zip(model.namedParameters(), packedGrads) {
            expectCloseToScale(packedGrad, p.grad!, 1e-5, "gradient of \(key)")
        }
    }

    /// Activation checkpointing changes memory, not results: same output and parameter gradients.
    func testActivationCheckpointingGivesTheSameGradients() throws {
        let model = GokuTransformer(config)
        randomize(model, seed: 41)
        let batch = try PackedBatch(samples: samples(RandomGenerator(seed: 42)), config: config)
        let w = Tensor.randn([1, batch.layout.tokenCount, 16], generator: RandomGenerator(seed: 43))
        var results: [[Tensor]] = []
        for checkpointing in [false, true] {
            model.activationCheckpointing = checkpointing
            model.zeroGrad()
            let out = model(batch)
            (out * w).sum().backward()
            results.append([out] + model.namedParameters().map { $0.tensor.grad! })
        }
        for (plain, checkpointed) in zip(results[0], results[1]) {
            expectCloseToScale(checkpointed, plain, 1e-6, "checkpointed vs plain")
        }
    }

    /// Guidance packs both branches into one pass and equals v_u + w·(v_c − v_u) computed separately.
    func testGuidedVelocityMatchesSeparatePasses() throws {
        let model = GokuTransformer(config)
        randomize(model, seed: 51)
        let g = RandomGenerator(seed: 52)
        let x = Tensor.randn([4, 3, 4, 4], generator: g)
        let text = Tensor.randn([5, 24], generator: g), negative = Tensor.randn([2, 24], generator: g)
        let mask = [true, true, true, true, false]
        let field = model.guidedVelocity(text: text, textMask: mask, unconditionalText: negative, scale: 4.5)
        let vc = try model.velocity([GokuSample(latent: x, timestep: 0.4, text: text, textMask: mask)])[0]
        let vu = try model.velocity([GokuSample(latent: x, timestep: 0.4, text: negative)])[0]
        expectCloseToScale(field(x, 0.4), vu + (vc - vu) * 4.5, 1e-5, "guided velocity")
        let plain = model.guidedVelocity(text: text, textMask: mask, unconditionalText: negative, scale: 1)
        expectCloseToScale(plain(x, 0.4), vc, 1e-6, "scale 1 is the conditional velocity")
    }

    /// Image-to-video loads T2V weights as the identity on the condition, and then does read the first frame.
    func testImageConditioningStartsAsTextToVideo() throws {
        let t2v = GokuTransformer(config)
        randomize(t2v, seed: 21)
        var i2vConfig = config
        i2vConfig.imageConditioning = true
        let i2v = GokuTransformer(i2vConfig)
        try i2v.loadTextToVideoWeights(t2v.parameterDictionary())
        let g = RandomGenerator(seed: 22)
        let video = Tensor.randn([4, 3, 4, 4], generator: g), text = Tensor.randn([3, 24], generator: g)
        let frame = Tensor.randn([4, 1, 4, 4], generator: g)
        let plain = try t2v.velocity([GokuSample(latent: video, timestep: 0.5, text: text)])[0]
        let conditioned = try i2v.velocity([GokuSample(latent: video, timestep: 0.5, text: text, firstFrame: frame)])[0]
        expectCloseToScale(conditioned, plain, 1e-6, "I2V from T2V weights")
        // Once the condition's columns move, the first frame changes the prediction.
        let w = i2v.patchEmbed.proj.weight
        w.assign(w + Tensor.randn(w.shape, generator: g) * 0.1)
        let moved = try i2v.velocity([GokuSample(latent: video, timestep: 0.5, text: text, firstFrame: frame)])[0]
        let other = try i2v.velocity([GokuSample(latent: video, timestep: 0.5, text: text, firstFrame: frame * 2)])[0]
        XCTAssertGreaterThan((moved - other).abs().max().item(), 1e-3)
        XCTAssertThrowsError(
            try t2v.velocity([GokuSample(latent: video, timestep: 0.5, text: text, firstFrame: frame)]))
    }

    func testBadSamplesThrowNamingTheField() {
        let g = RandomGenerator(seed: 31)
        let good = GokuSample(
            latent: Tensor.randn([4, 1, 4, 4], generator: g), timestep: 0.5, text: Tensor.randn([2, 24], generator: g))
        var badChannels = good
        badChannels.latent = Tensor.randn([3, 1, 4, 4], generator: g)
        var oddSize = good
        oddSize.latent = Tensor.randn([4, 1, 3, 4], generator: g)
        var badMask = good
        badMask.textMask = [true]
        var badTime = good
        badTime.timestep = 1.5
        for (sample, field) in [
            (badChannels, "latent"), (oddSize, "latent"), (badMask, "textMask"), (badTime, "timestep"),
        ] {
            XCTAssertThrowsError(try PackedBatch(samples: [good, sample], config: config)) { error in
                guard case PackedBatchError.invalidSample(let index, let f, _) = error else {
                    return XCTFail("\(error)")
                }
                XCTAssertEqual(index, 1)
                XCTAssertEqual(f, field)
            }
        }
        XCTAssertThrowsError(try PackedBatch(samples: [], config: config))
    }
}
