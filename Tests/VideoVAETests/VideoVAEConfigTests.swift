import Checkpoint
import Foundation
import TensorCore
import TestSupport
import VideoVAE
import XCTest

final class VideoVAEConfigTests: XCTestCase {
    var directory: URL!

    override func setUpWithError() throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("goku-vae-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: directory) }

    func testPresets() throws {
        for preset in [VideoVAEConfig.cogVideoX, .tiny, .small] { try preset.validate() }
        let c = VideoVAEConfig.cogVideoX
        XCTAssertEqual(c.blockOutChannels, [128, 256, 256, 512])
        XCTAssertEqual(c.latentChannels, 16)
        XCTAssertEqual(c.layersPerBlock, 3)
        XCTAssertEqual(c.scalingFactor, 1.15258426)
        XCTAssertNil(c.shiftFactor)
        XCTAssertEqual(c.latentFrames(forFrames: 49), 13)
        XCTAssertEqual(c.latentFrames(forFrames: 1), 1)
    }

    /// The CogVideoX-2b VAE has 215,583,907 parameters in diffusers (counted with `AutoencoderKLCogVideoX()`).
    func testCogVideoXParameterKeysAndCount() throws {
        let vae = try VideoAutoencoder(config: .cogVideoX)
        XCTAssertEqual(vae.parameterCount, 215_583_907)
        let keys = Set(vae.namedParameters().map(\.key))
        for key in [
            "encoder.conv_in.conv.weight", "encoder.down_blocks.0.resnets.2.norm1.weight",
            "encoder.down_blocks.0.downsamplers.0.conv.weight", "encoder.down_blocks.1.resnets.0.conv_shortcut.weight",
            "decoder.mid_block.resnets.1.norm2.conv_b.conv.bias",
            "decoder.up_blocks.2.resnets.3.norm1.norm_layer.weight",
            "decoder.up_blocks.0.upsamplers.0.conv.weight", "decoder.norm_out.conv_y.conv.weight",
        ] {
            XCTAssertTrue(keys.contains(key), key)
        }
        XCTAssertFalse(keys.contains("encoder.down_blocks.3.downsamplers.0.conv.weight"))
    }

    func testQuantConvolutionKeys() throws {
        var config = VideoVAEConfig.tiny
        (config.useQuantConv, config.usePostQuantConv) = (true, true)
        let shapes = try VideoAutoencoder(config: config).parameterDictionary().mapValues(\.shape)
        XCTAssertEqual(shapes["quant_conv.weight"], [8, 8, 1, 1, 1])
        XCTAssertEqual(shapes["post_quant_conv.bias"], [4])
        XCTAssertNil(tinyVAE.parameterDictionary()["quant_conv.weight"])
    }

    func testRoundTripThroughJSON() throws {
        try ConfigFile.write(VideoVAEConfig.tiny, to: directory)
        XCTAssertEqual(try ConfigFile.read(VideoVAEConfig.self, from: directory), .tiny)
        let text = try String(contentsOf: directory.appendingPathComponent("config.json"), encoding: .utf8)
        XCTAssertTrue(text.contains("\"shift_factor\" : null"), text)
    }

    func testMissingKeysTakeDiffusersDefaults() throws {
        let c = try ConfigFile.decode(VideoVAEConfig.self, from: Data("{\"latent_channels\": 8}".utf8), file: "c.json")
        XCTAssertEqual(c.latentChannels, 8)
        XCTAssertEqual(c.blockOutChannels, [128, 256, 256, 512])
    }

    func expectInvalid(_ json: String, field: String, line: UInt = #line) throws {
        try Data(json.utf8).write(to: directory.appendingPathComponent("config.json"))
        do {
            _ = try VideoAutoencoder.load(from: directory)
            XCTFail("loaded a bad config: \(json)", line: line)
        } catch let error as VideoVAEError {
            guard case .invalidConfig(let file, let f, _) = error else { return XCTFail("\(error)", line: line) }
            XCTAssertEqual(f, field, line: line)
            XCTAssertEqual(file, directory.appendingPathComponent("config.json").path, line: line)
            XCTAssertTrue(error.description.contains("config.json"), line: line)
        }
    }

    func testUnsupportedValuesAreNamed() throws {
        try expectInvalid("{\"act_fn\": \"gelu\"}", field: "act_fn")
        try expectInvalid(
            "{\"down_block_types\": [\"DownEncoderBlock2D\"], \"block_out_channels\": [8]}", field: "down_block_types")
        try expectInvalid(
            "{\"block_out_channels\": [8, 12], \"down_block_types\": [\"CogVideoXDownBlock3D\", \"CogVideoXDownBlock3D\"], \"up_block_types\": [\"CogVideoXUpBlock3D\", \"CogVideoXUpBlock3D\"], \"norm_num_groups\": 8, \"temporal_compression_ratio\": 1}",
            field: "norm_num_groups")
        try expectInvalid("{\"temporal_compression_ratio\": 3}", field: "temporal_compression_ratio")
        try expectInvalid("{\"temporal_compression_ratio\": 16}", field: "temporal_compression_ratio")
        try expectInvalid("{\"latents_mean\": [0.0, 1.0]}", field: "latents_mean")
        try expectInvalid("{\"scaling_factor\": 0}", field: "scaling_factor")
    }

    func testWrongTypeNamesFileAndField() throws {
        try Data("{\"latent_channels\": \"sixteen\"}".utf8).write(to: directory.appendingPathComponent("config.json"))
        XCTAssertThrowsError(try VideoAutoencoder.load(from: directory)) { error in
            guard case CheckpointError.invalidConfig(_, let field, _) = error else { return XCTFail("\(error)") }
            XCTAssertEqual(field, "latent_channels")
        }
    }

    /// Strict loading: a weights file without one key and with a stray one names both and the file.
    func testMissingAndUnexpectedKeysNamed() throws {
        var tensors = try StateDict.loadTensors(from: fixtureURL("tiny/diffusion_pytorch_model.safetensors"))
        tensors["encoder.conv_in.conv.bias"] = nil
        tensors["encoder.extra.weight"] = Tensor.zeros([2])
        try FileManager.default.copyItem(
            at: fixtureURL("tiny/config.json"), to: directory.appendingPathComponent("config.json"))
        let weights = directory.appendingPathComponent("diffusion_pytorch_model.safetensors")
        try SafeTensors.write(tensors, to: weights)
        XCTAssertThrowsError(try VideoAutoencoder.load(from: directory)) { error in
            let text = "\(error)"
            XCTAssertTrue(text.contains("encoder.conv_in.conv.bias"), text)
            XCTAssertTrue(text.contains("encoder.extra.weight"), text)
            XCTAssertTrue(text.contains(weights.path), text)
        }
        try FileManager.default.removeItem(at: weights)
        XCTAssertThrowsError(try VideoAutoencoder.load(from: directory)) { error in
            XCTAssertTrue("\(error)".contains("diffusion_pytorch_model.safetensors"), "\(error)")
        }
    }

    func testSaveThenLoadIsTheSameModel() throws {
        try tinyVAE.save(to: directory)
        let copy = try VideoAutoencoder.load(from: directory)
        XCTAssertEqual(copy.config, tinyVAE.config)
        for ((k, a), (_, b)) in zip(tinyVAE.namedParameters(), copy.namedParameters()) {
            XCTAssertEqual(a.scalars, b.scalars, k)
        }
    }

    func testBadInputShapesAreErrors() throws {
        let vae = tinyVAE
        for shape in [[1, 3, 2, 16, 16], [1, 3, 5, 12, 16], [1, 4, 1, 16, 16], [3, 1, 16, 16]] {
            XCTAssertThrowsError(try vae.encode(Tensor.zeros(shape)), "\(shape)") { error in
                guard case VideoVAEError.invalidInput(let what, _) = error else { return XCTFail("\(error)") }
                XCTAssertEqual(what, "video")
            }
        }
        XCTAssertThrowsError(try vae.decode(Tensor.zeros([1, 3, 1, 2, 2])))
        XCTAssertThrowsError(try vae.encode(Tensor.zeros([1, 3, 1, 64, 64]), options: .tiled(tile: 36)))
    }
}
