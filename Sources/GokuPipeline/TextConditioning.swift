import Foundation
import TensorCore
import TextEncoder

/// Captions to the text states the transformer cross-attends to: tokenizer, T5 encoder and a fixed length.
///
/// The empty caption is the unconditional input (caption dropout in training, the negative side of classifier-free
/// guidance in sampling), so both use the same encoder output. With `differentiable`, `encode` records the graph
/// so a text encoder trained jointly with the transformer (the shipped model's) receives gradients.
public final class TextConditioning {
    /// Tokenizer and encoder.
    public let encoder: T5TextEncoder

    /// Wraps a loaded text encoder.
    public init(_ encoder: T5TextEncoder) { self.encoder = encoder }

    /// The padded length every caption is tokenised to.
    public var maxLength: Int { encoder.maxLength }

    /// Width of the states, the transformer's `textDimension`.
    public var dimension: Int { encoder.model.config.dModel }

    /// Encodes captions.
    /// - Parameters: texts: B captions; differentiable: record the graph (training the encoder).
    /// - Returns: per caption, states (Ltext, D) and the mask (true for tokens, false for padding).
    public func encode(_ texts: [String], differentiable: Bool = false) -> [(states: Tensor, mask: [Bool])] {
        perCaption(encodeBatch(texts, differentiable: differentiable))
    }

    /// A batch from `encodeBatch` split per caption: states (Ltext, D) and the mask.
    public func perCaption(_ batch: (states: Tensor, masks: [[Bool]])) -> [(states: Tensor, mask: [Bool])] {
        batch.masks.indices.map { i in (batch.states.slice(axis: 0, i, i + 1).squeeze(0), batch.masks[i]) }
    }

    /// Encodes captions into one batch: states (B, Ltext, D) and per caption the mask.
    public func encodeBatch(_ texts: [String], differentiable: Bool = false) -> (states: Tensor, masks: [[Bool]]) {
        let batch = encoder.tokenizer.encodeBatch(texts, maxLength: maxLength, padding: .maxLength)
        let run = { self.encoder.model.encode(ids: batch.ids, attentionMask: batch.attentionMask) }
        let hidden = differentiable ? run() : Autograd.inference(run)
        return (hidden, batch.attentionMask.map { $0.map { $0 != 0 } })
    }

    /// How many tokens `text` needs (with `</s>`), to warn about truncation.
    public func tokenCount(_ text: String) -> Int { encoder.tokenizer.pieceIDs(text).count + 1 }
}
