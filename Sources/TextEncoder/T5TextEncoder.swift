import Foundation
import TensorCore

/// Tokenizer and encoder together: captions in, T5 hidden states out. What the trainer and `goku text encode` use.
public final class T5TextEncoder {
    /// The tokenizer.
    public let tokenizer: T5Tokenizer
    /// The encoder.
    public let model: T5EncoderModel
    /// Every caption is truncated and padded to this many tokens (`</s>` included).
    public let maxLength: Int

    /// Pairs a tokenizer and a model; `maxLength` must be positive.
    public init(tokenizer: T5Tokenizer, model: T5EncoderModel, maxLength: Int) {
        precondition(maxLength > 0, "T5TextEncoder: maxLength must be positive")
        self.tokenizer = tokenizer
        self.model = model
        self.maxLength = maxLength
    }

    /// Loads a Hugging Face folder: `config.json`, weights, and `tokenizer.json` or `spiece.model`.
    /// - Throws: `TokenizerError` / `CheckpointError` naming the file and field; a tokenizer whose vocabulary is
    ///   larger than the model's embedding is an error on `vocab_size`.
    public static func load(from folder: URL, maxLength: Int) throws -> T5TextEncoder {
        let tokenizer = try T5Tokenizer(folder: folder)
        let model = try T5EncoderModel.load(from: folder)
        guard tokenizer.vocabularySize <= model.config.vocabSize else {
            throw TokenizerError(
                file: folder.appendingPathComponent("config.json").path, field: "vocab_size",
                reason: "\(model.config.vocabSize) is smaller than the tokenizer's \(tokenizer.vocabularySize) ids")
        }
        return T5TextEncoder(tokenizer: tokenizer, model: model, maxLength: maxLength)
    }

    /// Encodes captions, each padded to `maxLength`.
    /// - Returns: hidden states (B, maxLength, D) and the attention mask (B rows of maxLength 0/1).
    public func encode(_ texts: [String]) -> (hiddenStates: Tensor, attentionMask: [[Int]]) {
        let batch = tokenizer.encodeBatch(texts, maxLength: maxLength, padding: .maxLength)
        let hidden = Autograd.inference { model.encode(ids: batch.ids, attentionMask: batch.attentionMask) }
        return (hidden, batch.attentionMask)
    }
}
