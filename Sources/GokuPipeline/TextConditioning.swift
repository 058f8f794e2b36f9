import Checkpoint
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
    /// The folder the encoder was loaded from, whose tokenizer files `save` copies; nil for one built in memory.
    public let tokenizerFolder: URL?

    /// Wraps a text encoder.
    /// - Parameter tokenizerFolder: the Hugging Face folder `encoder` was loaded from (`T5TextEncoder.load`), so that
    ///   `save` copies its tokenizer files instead of re-serialising the vocabulary; nil for an encoder built in
    ///   memory (a recipe's tokenizer).
    public init(_ encoder: T5TextEncoder, tokenizerFolder: URL? = nil) {
        self.encoder = encoder
        self.tokenizerFolder = tokenizerFolder
    }

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

extension TextConditioning {
    /// A Hugging Face `tokenizer.json` for `pieces` (Unigram model, Metaspace pre-tokenizer, `</s>` appended), which
    /// `T5Tokenizer(tokenizerJSON:)` and transformers' `T5TokenizerFast` read.
    public static func unigramTokenizerJSON(_ pieces: [VocabularyPiece]) throws -> Data {
        let special = pieces.enumerated().filter { $0.element.kind == .control || $0.element.kind == .unknown }
        let root: [String: Any] = [
            "version": "1.0",
            "truncation": NSNull(),
            "padding": NSNull(),
            "added_tokens": special.map { id, piece in
                [
                    "id": id, "content": piece.piece, "single_word": false, "lstrip": false, "rstrip": false,
                    "normalized": false, "special": true,
                ] as [String: Any]
            },
            "normalizer": NSNull(),
            "pre_tokenizer": [
                "type": "Sequence",
                "pretokenizers": [
                    ["type": "WhitespaceSplit"],
                    ["type": "Metaspace", "replacement": "▁", "prepend_scheme": "always", "split": true],
                ],
            ] as [String: Any],
            "post_processor": [
                "type": "TemplateProcessing",
                "single": [["Sequence": ["id": "A", "type_id": 0]], ["SpecialToken": ["id": "</s>", "type_id": 0]]],
                "pair": [
                    ["Sequence": ["id": "A", "type_id": 0]], ["SpecialToken": ["id": "</s>", "type_id": 0]],
                    ["Sequence": ["id": "B", "type_id": 0]], ["SpecialToken": ["id": "</s>", "type_id": 0]],
                ],
                "special_tokens": ["</s>": ["id": "</s>", "ids": [1], "tokens": ["</s>"]]],
            ] as [String: Any],
            "decoder": ["type": "Metaspace", "replacement": "▁", "prepend_scheme": "always", "split": true],
            "model": [
                "type": "Unigram", "unk_id": 2, "byte_fallback": false,
                "vocab": pieces.map { [$0.piece, Double($0.score)] as [Any] },
            ] as [String: Any],
        ]
        return try JSONSerialization.data(withJSONObject: root, options: [.prettyPrinted, .sortedKeys])
    }

    /// The tokenizer files of a Hugging Face T5 folder that `save` copies from `tokenizerFolder`: those this package
    /// reads (`tokenizer.json`, `spiece.model`) and those transformers reads beside them.
    public static let tokenizerFileNames = ["tokenizer.json", "spiece.model", "tokenizer_config.json", "special_tokens_map.json"]

    /// Writes a Hugging Face T5 folder: `config.json`, `model.safetensors` and the tokenizer.
    ///
    /// Decision: an encoder loaded from a folder (`tokenizerFolder`, a pretrained T5 or a saved model's text encoder)
    /// gets that folder's tokenizer files copied byte for byte, so its normalizer, pre-tokenizer and special tokens
    /// survive (`unigramTokenizerJSON` knows only the pieces, and would drop a pretrained T5's normalizer). An encoder
    /// built in memory (a recipe's closed vocabulary) gets `tokenizer.json` from `unigramTokenizerJSON`.
    public func save(to folder: URL) throws {
        let fm = FileManager.default
        try fm.createDirectory(at: folder, withIntermediateDirectories: true)
        try ConfigFile.write(encoder.model.config, to: folder)
        try encoder.model.saveWeights(to: folder.appendingPathComponent("model.safetensors"))
        let sources = (tokenizerFolder.map { source in
            Self.tokenizerFileNames.map { source.appendingPathComponent($0) }.filter { fm.fileExists(atPath: $0.path) }
        }) ?? []
        if sources.isEmpty {
            let json = try Self.unigramTokenizerJSON(encoder.tokenizer.pieces)
            try AtomicFile.write(json, to: folder.appendingPathComponent("tokenizer.json"))
            return
        }
        for source in sources {
            let target = folder.appendingPathComponent(source.lastPathComponent)
            if source.standardizedFileURL.resolvingSymlinksInPath() == target.standardizedFileURL.resolvingSymlinksInPath() {
                continue  // saved over the folder it came from: the file is already there
            }
            try AtomicFile.write(try Data(contentsOf: source), to: target)
        }
    }
}
