import Checkpoint
import Foundation
import GokuPipeline
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

    /// A Hugging Face `tokenizer.json` for `pieces` (`TextConditioning.unigramTokenizerJSON`).
    public static func tokenizerJSON(_ pieces: [VocabularyPiece]) throws -> Data {
        try TextConditioning.unigramTokenizerJSON(pieces)
    }
}
