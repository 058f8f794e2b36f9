import ArgumentParser
import Foundation
import GokuPipeline
import RectifiedFlow
import TensorCore
import VideoVAE

/// The options `goku generate` and `goku eval shapes` share: which model, how to sample, how many threads.
struct ModelSamplingOptions: ParsableArguments {
    @Option(help: "Model folder (model_index.json, transformer/, vae/, text_encoder/); default: the shipped model.")
    var model: String?

    @Option(help: "Decode with this VAE folder instead of the model's: one whose encoder and latent scaling are the model's (a decoder trained further).")
    var vae: String?

    @Option(help: "Sampling steps (default: the model's).")
    var steps: Int?

    @Option(help: "Classifier-free guidance scale, 1 for none (default: the model's).")
    var cfg: Double?

    @Option(help: "Sampler (default: the model's).")
    var sampler: SamplerKind?

    @Option(help: "Time shift of the sampling schedule: 1 spaces the steps evenly, larger puts more near the noise (default: the model's).")
    var shift: Double?

    @Option(help: "Flow times LO,HI (0 noise, 1 data) at which guidance applies; other steps take the conditional velocity alone (default: the model's, every step).")
    var cfgInterval: String?

    @Option(help: "Worker threads (default: all cores).")
    var threads: Int?

    /// Applies the thread count and loads the model (the given folder or the shipped one).
    func loadModel() throws -> GokuModelBundle {
        if let threads { Parallel.threadCount = threads }
        let bundle = try GokuModelBundle.load(from: DefaultModel.resolve(model))
        guard let vae else { return bundle }
        return try bundle.replacingDecoder(with: VideoAutoencoder.load(from: URL(fileURLWithPath: vae)))
    }

    /// Copies the sampling settings into a request.
    func apply(to request: inout GenerationOptions) throws {
        request.steps = steps
        request.guidance = cfg
        request.sampler = sampler
        request.shift = shift
        request.guidanceInterval = try cfgInterval.map { text in
            guard let interval = GuidanceInterval(parsing: text) else {
                throw ValidationError("--cfg-interval '\(text)' is not LO,HI (e.g. 0,0.7)")
            }
            return interval
        }
    }
}

/// `--sampler NAME`: any case, as model folders are read; an unknown name is refused with the valid ones listed.
extension SamplerKind: ExpressibleByArgument {
    public init?(argument: String) { try? self.init(parsing: argument) }
}
