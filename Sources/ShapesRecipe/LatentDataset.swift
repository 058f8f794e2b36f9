import Checkpoint
import Foundation
import GokuPipeline
import ShapesDataset
import TensorCore
import TextEncoder
import Training
import VideoVAE

/// The training set of the transformer: Shapes samples encoded once by the VAE (posterior mean, scaled), with their
/// captions, cached in the run folder.
///
/// The cache file is named by a SHA-256 of the VAE (config and weights), the data options and the sample count, so
/// a changed VAE or dataset is never mixed with an old cache; it is written atomically and read back with full
/// validation (a damaged file is reported and rebuilt).
public final class LatentDataset {
    /// One training sample.
    public struct Item {
        /// Scaled latent, (C, T, h, w); T = 1 for an image.
        public var latent: Tensor
        /// Its caption.
        public var caption: String
        /// Whether it is an image.
        public var isImage: Bool { latent.shape[1] == 1 }
    }

    /// The samples, in generation order.
    public let items: [Item]

    init(items: [Item]) { self.items = items }

    /// Loads the cache for (`vae`, `data`, `count`) from `folder`, or builds it (encoding every sample) and saves it.
    /// - Parameters: vaeIdentity: a digest of the VAE (see `identity(ofVAEFolder:)`); progress: draws the build.
    public static func loadOrBuild(
        vae: VideoAutoencoder, vaeIdentity: String, data: ShapesTrainingData, count: Int, folder: URL,
        showProgress: Bool = true
    ) throws -> LatentDataset {
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        let key = try SHA256.hex(SHA256.hash(Array(vaeIdentity.utf8) + Array(encoder.encode(data)) + Array("\(count)".utf8)))
        let url = folder.appendingPathComponent("latents-\(key.prefix(16)).safetensors")
        if FileManager.default.fileExists(atPath: url.path), let cached = try? read(url, count: count) {
            return cached
        }
        let generator = try ShapesGenerator(
            seed: data.seed, width: data.width, height: data.height, frames: data.frames,
            imageFraction: data.imageFraction)
        let bar = ProgressBar(total: count, label: "encode latents", interactive: showProgress ? nil : false)
        bar.unit = "clips"
        var items: [Item] = []
        items.reserveCapacity(count)
        try Autograd.inference {
            for i in 0..<count {
                let sample = generator.sample(at: i)
                let z = vae.scaleLatent(try vae.encode(sample.video.unsqueeze(0)).mode).squeeze(0)
                items.append(Item(latent: z, caption: sample.caption))
                bar.update(completed: i + 1)
            }
        }
        bar.finish()
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        var tensors: [String: Tensor] = [:]
        for (i, item) in items.enumerated() { tensors["latent.\(i)"] = item.latent }
        let captions = String(decoding: try JSONEncoder().encode(items.map(\.caption)), as: UTF8.self)
        try SafeTensors.write(tensors, metadata: ["captions": captions, "count": "\(count)"], to: url)
        return LatentDataset(items: items)
    }

    /// Reads a cache file; throws when it is damaged or does not hold `count` samples.
    static func read(_ url: URL, count: Int) throws -> LatentDataset {
        let file = try SafeTensorsFile(url: url)
        guard let text = file.metadata?["captions"],
            let captions = try? JSONDecoder().decode([String].self, from: Data(text.utf8)), captions.count == count
        else { throw CheckpointError.io(file: url.path, reason: "latent cache without \(count) captions") }
        let items = try (0..<count).map { i in Item(latent: try file.tensor("latent.\(i)"), caption: captions[i]) }
        return LatentDataset(items: items)
    }

    /// A digest of a VAE folder's config and weights, naming the latent space.
    public static func identity(ofVAEFolder folder: URL) throws -> String {
        try DatasetPreparer.vaeIdentity(ofFolder: folder)
    }
}
