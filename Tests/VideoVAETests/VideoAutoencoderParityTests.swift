import Foundation
import TensorCore
import TestSupport
import VideoVAE
import XCTest

/// Encode and decode against diffusers' `AutoencoderKLCogVideoX` on the tiny random folder of
/// `scripts/reference/make_vae_fixtures.py` (references computed in float64).
final class VideoAutoencoderParityTests: XCTestCase {
    func testConfigOfTheDiffusersFolder() {
        let c = tinyVAE.config
        XCTAssertEqual(c.blockOutChannels, [8, 8, 8, 16])
        XCTAssertEqual(c.latentChannels, 4)
        XCTAssertEqual(c.scalingFactor, 0.7)
        XCTAssertEqual(c.shiftFactor, 0.1)
        XCTAssertEqual(c.spatialCompression, 8)
        XCTAssertEqual(c.temporalCompression, 4)
    }

    func check(_ name: String) throws {
        let f = try Fixture.load(name, target: "VideoVAETests")
        try Autograd.inference {
            let posterior = try tinyVAE.encode(f.tensor("video"))
            expectParity(posterior.mean, f.tensor("mean"), "\(name) mean")
            expectParity(posterior.logVariance, f.tensor("logvar"), "\(name) logvar")
            expectParity(try tinyVAE.decode(f.tensor("mean")), f.tensor("decoded"), "\(name) decoded")
        }
    }

    func testImageOneFrameToOneLatentFrame() throws {
        try check("image")
        let f = try Fixture.load("image", target: "VideoVAETests")
        XCTAssertEqual(f.tensor("mean").shape, [1, 4, 1, 2, 3])
    }

    func testNineFrameClipBatchOfTwo() throws { try check("clip9") }

    func testSeventeenFramesWhole() throws { try check("clip17") }

    /// diffusers' own chunked `_encode` / `_decode` (8 frames, 2 latent frames, causal cache) on 17 frames.
    func testSeventeenFramesChunkedAsDiffusers() throws {
        let f = try Fixture.load("clip17", target: "VideoVAETests")
        try Autograd.inference {
            let posterior = try tinyVAE.encode(f.tensor("video"), options: .chunked)
            expectParity(posterior.mean, f.tensor("chunked_mean"), "chunked mean")
            expectParity(posterior.logVariance, f.tensor("chunked_logvar"), "chunked logvar")
            let decoded = try tinyVAE.decode(f.tensor("mean"), options: .chunked)
            expectParity(decoded, f.tensor("chunked_decoded"), "chunked decoded")
        }
    }

    /// diffusers' `tiled_encode` / `tiled_decode` (32-pixel tiles, a quarter overlap): 2×2 tiles on a 48×48 image,
    /// 1×2 tiles on a 9-frame 16×40 clip (with temporal chunks inside each tile).
    func testTiledAsDiffusers() throws {
        let f = try Fixture.load("tiled", target: "VideoVAETests")
        let options = VideoVAEMemoryOptions.tiled(tile: 32)
        try Autograd.inference {
            for prefix in ["image_", "clip_"] {
                let posterior = try tinyVAE.encode(f.tensor(prefix + "video"), options: options)
                expectParity(posterior.mean, f.tensor(prefix + "mean"), "\(prefix)tiled mean")
                expectParity(posterior.logVariance, f.tensor(prefix + "logvar"), "\(prefix)tiled logvar")
                let decoded = try tinyVAE.decode(f.tensor(prefix + "whole_mean"), options: options)
                expectParity(decoded, f.tensor(prefix + "decoded"), "\(prefix)tiled decoded")
            }
        }
    }

    func testScalingHelpersInvertEachOther() {
        let z = Tensor.randn([1, 4, 2, 2, 3], generator: RandomGenerator(seed: 3))
        let scaled = tinyVAE.scaleLatent(z)
        expectClose(scaled, (z - 0.1) * 0.7, rtol: 1e-6, atol: 1e-6, "scale")
        expectClose(tinyVAE.unscaleLatent(scaled), z, rtol: 1e-5, atol: 1e-6, "round trip")
    }
}
