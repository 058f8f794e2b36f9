import Foundation

/// How `T5Tokenizer.encode` pads.
public enum TokenizerPadding: Sendable {
    /// No padding: the ids are as long as the text needs.
    case none
    /// Pad with the pad id (0) up to `maxLength`.
    case maxLength
}

/// T5's tokenizer: SentencePiece normalisation, Unigram segmentation, `</s>` appended, truncation and padding.
///
/// Reads either a SentencePiece `spiece.model` or a Hugging Face `tokenizer.json`; both give identical ids
/// (checked against transformers and the sentencepiece library on a committed corpus). As transformers' T5 tokenizer,
/// a vocabulary read from `spiece.model` is followed by 100 `<extra_id_N>` sentinels (`<extra_id_0>` last), so both
/// sources have the same size (32100 for T5; the model's embedding has 32128 rows, a multiple of 128).
///
/// Text is tokenised as plain text: special-token strings such as `</s>` inside a caption are not parsed as special
/// tokens (transformers would); captions never contain them, and treating them as text cannot inject control ids.
public struct T5Tokenizer: Sendable {
    /// The vocabulary, in id order.
    public var pieces: [VocabularyPiece] { encoder.pieces }
    /// The number of ids.
    public var vocabularySize: Int { encoder.pieces.count }
    /// The pad id (0 in T5).
    public let padID: Int
    /// The end-of-sequence id (1 in T5), appended to every encoding.
    public let endOfSequenceID: Int
    /// The unknown id (2 in T5).
    public var unknownID: Int { encoder.unknownID }
    /// The normaliser.
    public let normalizer: TextNormalizer
    private let encoder: UnigramEncoder

    /// Builds from a vocabulary and normaliser; `</s>` and `<pad>` are looked up by surface.
    /// - Throws: `TokenizerError` naming `file` when `</s>` or `<pad>` is missing.
    public init(pieces: [VocabularyPiece], unknownID: Int, normalizer spec: NormalizerSpec, file: String) throws {
        guard let eos = pieces.firstIndex(where: { $0.piece == "</s>" }) else {
            throw TokenizerError(file: file, field: "vocab", reason: "no '</s>' piece")
        }
        guard let pad = pieces.firstIndex(where: { $0.piece == "<pad>" }) else {
            throw TokenizerError(file: file, field: "vocab", reason: "no '<pad>' piece")
        }
        endOfSequenceID = eos
        padID = pad
        normalizer = try TextNormalizer(spec: spec, file: file)
        encoder = UnigramEncoder(pieces: pieces, unknownID: unknownID)
    }

    /// Reads a SentencePiece model and appends `extraIDs` sentinels (`<extra_id_{extraIDs-1}>` first), as transformers.
    public init(sentencePieceModel url: URL, extraIDs: Int = 100) throws {
        let model = try SentencePieceModel(contentsOf: url)
        var pieces = model.pieces
        for i in stride(from: extraIDs - 1, through: 0, by: -1) {
            pieces.append(VocabularyPiece(piece: "<extra_id_\(i)>", score: 0, kind: .control))
        }
        try self.init(pieces: pieces, unknownID: model.unknownID, normalizer: model.normalizer, file: url.path)
    }

    /// Reads a Hugging Face `tokenizer.json`.
    public init(tokenizerJSON url: URL) throws {
        let json = try TokenizerJSON(contentsOf: url)
        try self.init(pieces: json.pieces, unknownID: json.unknownID, normalizer: json.normalizer, file: url.path)
    }

    /// Reads a model folder: `tokenizer.json` when present (as transformers prefers it), else `spiece.model`.
    /// - Throws: `TokenizerError` naming the folder when it holds neither.
    public init(folder: URL) throws {
        let json = folder.appendingPathComponent("tokenizer.json")
        let spiece = folder.appendingPathComponent("spiece.model")
        if FileManager.default.fileExists(atPath: json.path) {
            try self.init(tokenizerJSON: json)
        } else if FileManager.default.fileExists(atPath: spiece.path) {
            try self.init(sentencePieceModel: spiece)
        } else {
            throw TokenizerError(
                file: folder.path, field: "", reason: "no vocabulary: neither tokenizer.json nor spiece.model")
        }
    }

    /// The ids of `text` without `</s>`, truncation or padding.
    public func pieceIDs(_ text: String) -> [Int] {
        encoder.encode(normalizer.normalize(text))
    }

    /// Tokenises `text`, appends `</s>`, truncates and pads.
    /// - Parameters:
    ///   - maxLength: the longest result; nil for no limit. Must be ≥ 1 when set.
    ///   - padding: `.maxLength` pads with the pad id up to `maxLength`.
    ///   - truncation: when the ids are longer than `maxLength`, keep the first `maxLength − 1` and `</s>` (as
    ///     transformers does); without truncation they are returned whole.
    /// - Returns: ids and the attention mask (1 for text and `</s>`, 0 for padding), of equal length.
    public func encode(
        _ text: String, maxLength: Int? = nil, padding: TokenizerPadding = .none, truncation: Bool = true
    ) -> (ids: [Int], attentionMask: [Int]) {
        var ids = pieceIDs(text)
        if let maxLength, truncation, ids.count + 1 > maxLength {
            ids = Array(ids.prefix(max(maxLength - 1, 0)))
        }
        ids.append(endOfSequenceID)
        if let maxLength, truncation, ids.count > maxLength { ids = Array(ids.prefix(maxLength)) }
        var mask = [Int](repeating: 1, count: ids.count)
        if let maxLength, padding == .maxLength, ids.count < maxLength {
            ids += [Int](repeating: padID, count: maxLength - ids.count)
            mask += [Int](repeating: 0, count: maxLength - mask.count)
        }
        return (ids, mask)
    }

    /// Tokenises a batch to a common length: `maxLength` when padding to it, else the longest in the batch.
    /// - Returns: ids and mask, each `texts.count` rows of equal length.
    public func encodeBatch(_ texts: [String], maxLength: Int? = nil, padding: TokenizerPadding = .maxLength)
        -> (ids: [[Int]], attentionMask: [[Int]])
    {
        var rows = texts.map { encode($0, maxLength: maxLength, padding: padding) }
        let length = rows.map(\.ids.count).max() ?? 0
        for i in rows.indices where rows[i].ids.count < length {
            rows[i].attentionMask += [Int](repeating: 0, count: length - rows[i].ids.count)
            rows[i].ids += [Int](repeating: padID, count: length - rows[i].ids.count)
        }
        return (rows.map(\.ids), rows.map(\.attentionMask))
    }

    /// The text of `ids`: pieces joined, `▁` read as a space, the leading space dropped. Control pieces (`<pad>`,
    /// `</s>`, sentinels) are skipped, as transformers' `decode(…, skip_special_tokens=True)`; `<unk>` is written as
    /// `<unk>`; ids outside the vocabulary are skipped.
    public func decode(_ ids: [Int]) -> String {
        var text = ""
        for id in ids where encoder.pieces.indices.contains(id) {
            let piece = encoder.pieces[id]
            if piece.kind == .control { continue }
            text += piece.piece
        }
        text = text.replacingOccurrences(of: TextNormalizer.spaceSymbol, with: " ")
        if text.hasPrefix(" ") { text.removeFirst() }
        return text
    }
}
