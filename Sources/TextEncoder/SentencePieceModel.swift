import Foundation

/// The kind of a vocabulary entry, as SentencePiece's `ModelProto.SentencePiece.Type`.
public enum PieceKind: Int, Sendable {
    /// An ordinary piece found by the Viterbi search.
    case normal = 1
    /// The unknown piece (`<unk>`).
    case unknown = 2
    /// A control symbol (`<pad>`, `</s>`): never produced from text.
    case control = 3
    /// A user-defined symbol: always matched as a whole.
    case userDefined = 4
    /// An unused slot.
    case unused = 5
    /// A byte-fallback piece (`<0x41>`).
    case byte = 6
}

/// One vocabulary entry: the piece's text (with `▁` for spaces), its log-probability score and its kind.
public struct VocabularyPiece: Sendable, Equatable {
    /// The piece's surface, `▁` standing for a space.
    public var piece: String
    /// The unigram log-probability (0 for special pieces).
    public var score: Float
    /// What the piece is.
    public var kind: PieceKind

    /// A vocabulary entry.
    public init(piece: String, score: Float, kind: PieceKind) {
        self.piece = piece
        self.score = score
        self.kind = kind
    }
}

/// Why a tokenizer file could not be used; every case names the file and the field.
public struct TokenizerError: Error, CustomStringConvertible, Equatable {
    /// The file (path as given).
    public let file: String
    /// The field at fault (`normalizer.type`, `pieces[12].type`, …), "" for the whole file.
    public let field: String
    /// What is wrong.
    public let reason: String

    /// An error about `field` of `file`.
    public init(file: String, field: String, reason: String) {
        self.file = file
        self.field = field
        self.reason = reason
    }

    /// `file: field 'x': reason`.
    public var description: String {
        field.isEmpty ? "\(file): \(reason)" : "\(file): field '\(field)': \(reason)"
    }
}

/// A SentencePiece model file (`spiece.model`), decoded from its protobuf `ModelProto` by our own wire-format reader.
///
/// Read fields: `pieces` (piece, score, type), `trainer_spec` (model_type, unk/eos/pad ids, byte_fallback,
/// treat_whitespace_as_suffix) and `normalizer_spec` (name, precompiled_charsmap, add_dummy_prefix,
/// remove_extra_whitespaces, escape_whitespaces). Proto2 defaults apply to absent fields. Only Unigram models without
/// byte fallback or whitespace-as-suffix are accepted (what T5 uses); others throw naming the field.
public struct SentencePieceModel: Sendable {
    /// The vocabulary, in id order.
    public var pieces: [VocabularyPiece]
    /// The id of `<unk>`.
    public var unknownID: Int
    /// The id of `</s>` (-1 when the model has none).
    public var endOfSequenceID: Int
    /// The id of `<pad>` (-1 when the model has none).
    public var paddingID: Int
    /// The normaliser settings.
    public var normalizer: NormalizerSpec

    /// Reads and decodes `url`.
    /// - Throws: `TokenizerError` naming the file and the field.
    public init(contentsOf url: URL) throws {
        let data: Data
        do { data = try Data(contentsOf: url) } catch {
            throw TokenizerError(file: url.path, field: "", reason: "cannot read: \(error.localizedDescription)")
        }
        try self.init(bytes: Array(data), file: url.path)
    }

    /// Decodes a serialized `ModelProto`; `file` names the source in errors.
    public init(bytes: [UInt8], file: String) throws {
        var pieces: [VocabularyPiece] = []
        var trainer = (modelType: UInt64(1), unk: 0, eos: 2, pad: -1, byteFallback: false, suffix: false)
        var normalizer = NormalizerSpec()
        var reader = ProtobufReader(bytes)
        do {
            while let (field, value) = try reader.next() {
                switch (field, value) {
                case (1, .lengthDelimited(let range)):
                    pieces.append(try Self.piece(bytes, range, index: pieces.count, file: file))
                case (2, .lengthDelimited(let range)):
                    var spec = ProtobufReader(bytes, range: range)
                    while let (f, v) = try spec.next() {
                        guard case .varint(let n) = v else { continue }
                        switch f {
                        case 3: trainer.modelType = n
                        case 24: trainer.suffix = n != 0
                        case 35: trainer.byteFallback = n != 0
                        case 40: trainer.unk = Int(Int32(truncatingIfNeeded: n))
                        case 42: trainer.eos = Int(Int32(truncatingIfNeeded: n))
                        case 43: trainer.pad = Int(Int32(truncatingIfNeeded: n))
                        default: break
                        }
                    }
                case (3, .lengthDelimited(let range)):
                    var spec = ProtobufReader(bytes, range: range)
                    while let (f, v) = try spec.next() {
                        switch (f, v) {
                        case (1, .lengthDelimited(let r)): normalizer.name = try spec.string(r)
                        case (2, .lengthDelimited(let r)): normalizer.precompiledCharsmap = Array(bytes[r])
                        case (3, .varint(let n)): normalizer.addDummyPrefix = n != 0
                        case (4, .varint(let n)): normalizer.removeExtraWhitespaces = n != 0
                        case (5, .varint(let n)): normalizer.escapeWhitespaces = n != 0
                        default: break
                        }
                    }
                default: break  // self_test_data, denormalizer_spec, unknown fields
                }
            }
        } catch let error as ProtobufReader.Malformed {
            throw TokenizerError(file: file, field: "", reason: "not a SentencePiece model: \(error.reason)")
        }
        guard !pieces.isEmpty else { throw TokenizerError(file: file, field: "pieces", reason: "no pieces") }
        guard trainer.modelType == 1 else {
            throw TokenizerError(
                file: file, field: "trainer_spec.model_type",
                reason: "model type \(trainer.modelType) is not supported (only 1, Unigram, as T5 uses)")
        }
        guard !trainer.byteFallback else {
            throw TokenizerError(file: file, field: "trainer_spec.byte_fallback", reason: "byte fallback is not supported")
        }
        guard !trainer.suffix else {
            throw TokenizerError(
                file: file, field: "trainer_spec.treat_whitespace_as_suffix", reason: "whitespace as suffix is not supported")
        }
        guard pieces.indices.contains(trainer.unk), pieces[trainer.unk].kind == .unknown else {
            throw TokenizerError(
                file: file, field: "trainer_spec.unk_id", reason: "\(trainer.unk) is not the id of an UNKNOWN piece")
        }
        self.pieces = pieces
        unknownID = trainer.unk
        endOfSequenceID = pieces.indices.contains(trainer.eos) ? trainer.eos : -1
        paddingID = pieces.indices.contains(trainer.pad) ? trainer.pad : -1
        self.normalizer = normalizer
    }

    private static func piece(_ bytes: [UInt8], _ range: Range<Int>, index: Int, file: String) throws -> VocabularyPiece {
        var reader = ProtobufReader(bytes, range: range)
        var piece = VocabularyPiece(piece: "", score: 0, kind: .normal)
        while let (field, value) = try reader.next() {
            switch (field, value) {
            case (1, .lengthDelimited(let r)): piece.piece = try reader.string(r)
            case (2, .fixed32(let bits)): piece.score = Float(bitPattern: bits)
            case (3, .varint(let n)):
                guard let kind = PieceKind(rawValue: Int(n)) else {
                    throw TokenizerError(file: file, field: "pieces[\(index)].type", reason: "unknown piece type \(n)")
                }
                piece.kind = kind
            default: break
            }
        }
        return piece
    }
}

/// How text is normalised before the Viterbi search (SentencePiece's `NormalizerSpec`).
public struct NormalizerSpec: Sendable, Equatable {
    /// The rule set's name (`nmt_nfkc` for T5; informative only, the charsmap holds the rules).
    public var name: String = ""
    /// The compiled rules: a double-array trie over UTF-8 prefixes and their replacements (empty: identity).
    public var precompiledCharsmap: [UInt8] = []
    /// Prepend `▁` to non-empty text.
    public var addDummyPrefix = true
    /// Drop leading and trailing spaces and collapse runs of spaces.
    public var removeExtraWhitespaces = true
    /// Write spaces as `▁`.
    public var escapeWhitespaces = true

    /// The defaults of SentencePiece's proto (no rules, every flag on).
    public init() {}
}
