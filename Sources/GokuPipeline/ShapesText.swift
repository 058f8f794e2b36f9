import Checkpoint
import Foundation
import ShapesDataset
import TensorCore
import TextEncoder

/// The text side of the shipped Shapes model: a closed-vocabulary Unigram tokenizer and a tiny T5 encoder.
///
/// Decision: the Shapes captions come from a fixed grammar of a few dozen words, so instead of training a
/// SentencePiece model on them the vocabulary is built from the grammar itself: every caption word as a piece
/// `▁word` (score −2), then `▁` and single characters (score −10) so any other text still tokenises (letters,
/// digits, punctuation; anything else is `<unk>`). Viterbi then always prefers whole grammar words. Ids 0, 1, 2 are
/// `<pad>`, `</s>`, `<unk>` as in T5. The encoder is a standard T5 encoder (gated GELU, relative position bias) of
/// `encoderConfig`'s size, trained from scratch jointly with the transformer (with the caption-role objective,
/// `CaptionRoleObjective`, so that its states carry word order); the same code path loads Flan-T5.
public enum ShapesText {
    /// Every word of the caption grammar, sorted.
    public static var words: [String] {
        var set = Set<String>()
        for video in [false, true] {
            for attributes in ShapesPromptSet.all(video: video, split: .all) {
                for word in attributes.caption.split(separator: " ") { set.insert(String(word)) }
            }
        }
        return set.sorted()
    }

    /// The vocabulary pieces in id order.
    public static var pieces: [VocabularyPiece] {
        var pieces = [
            VocabularyPiece(piece: "<pad>", score: 0, kind: .control),
            VocabularyPiece(piece: "</s>", score: 0, kind: .control),
            VocabularyPiece(piece: "<unk>", score: 0, kind: .unknown),
        ]
        pieces += words.map { VocabularyPiece(piece: "▁" + $0, score: -2, kind: .normal) }
        pieces.append(VocabularyPiece(piece: "▁", score: -5, kind: .normal))
        let characters = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.,;:!?'\"-()&/"
        pieces += characters.map { VocabularyPiece(piece: String($0), score: -10, kind: .normal) }
        return pieces
    }

    /// The tokenizer built from `pieces`.
    public static func tokenizer() throws -> T5Tokenizer {
        try T5Tokenizer(pieces: pieces, unknownID: 2, normalizer: NormalizerSpec(), file: "<shapes vocabulary>")
    }

    /// The text encoder of the shipped model: 256 wide (the `small` transformer's text width), 2 layers, 4 heads of
    /// 64, d_ff 512, gated GELU; the vocabulary rounded up to a multiple of 64.
    public static var encoderConfig: T5Config {
        let vocabulary = (pieces.count + 63) / 64 * 64
        return T5Config(
            dModel: 256, dKV: 64, dFF: 512, numLayers: 2, numHeads: 4, relativeAttentionNumBuckets: 32,
            relativeAttentionMaxDistance: 128, vocabSize: vocabulary)
    }

    /// A Hugging Face `tokenizer.json` for `pieces` (Unigram model, Metaspace pre-tokenizer, `</s>` appended), which
    /// `T5Tokenizer(tokenizerJSON:)` and transformers' `T5TokenizerFast` read.
    public static func tokenizerJSON(_ pieces: [VocabularyPiece]) throws -> Data {
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
}

extension TextConditioning {
    /// Writes a Hugging Face T5 folder: `config.json`, `model.safetensors` and `tokenizer.json`.
    public func save(to folder: URL) throws {
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        try ConfigFile.write(encoder.model.config, to: folder)
        try encoder.model.saveWeights(to: folder.appendingPathComponent("model.safetensors"))
        let json = try ShapesText.tokenizerJSON(encoder.tokenizer.pieces)
        try AtomicFile.write(json, to: folder.appendingPathComponent("tokenizer.json"))
    }
}
