import Foundation
import GokuPipeline
import ShapesRecipe
import TensorCore
import TextEncoder
import VideoVAE

/// The tiny random models the pipeline tests train against (untrained weights are enough to test the plumbing).
enum TestModels {
    /// A one-layer T5 of width 24 over the Shapes tokenizer's 128 pieces.
    static let tinyT5 = T5Config(
        dModel: 24, dKV: 8, dFF: 48, numLayers: 1, numHeads: 3, relativeAttentionNumBuckets: 8,
        relativeAttentionMaxDistance: 16, vocabSize: 128)

    /// Writes a frozen-text-encoder folder: `tinyT5` with seeded weights, the Shapes tokenizer, 12 tokens.
    static func saveTinyT5(to folder: URL) throws {
        let model = T5EncoderModel(config: tinyT5, generator: RandomGenerator(seed: 4))
        try TextConditioning(T5TextEncoder(tokenizer: try ShapesText.tokenizer(), model: model, maxLength: 12))
            .save(to: folder)
    }

    /// Writes the tiny VAE (`VideoVAEConfig.tiny`, seeded weights) as a diffusers folder.
    static func saveTinyVAE(to folder: URL) throws {
        try VideoAutoencoder(config: .tiny, generator: RandomGenerator(seed: 2)).save(to: folder)
    }
}
