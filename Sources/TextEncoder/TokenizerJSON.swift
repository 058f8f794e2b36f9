import Foundation

/// A Hugging Face `tokenizer.json` of a SentencePiece-Unigram tokenizer (what transformers writes for T5), read into
/// the same vocabulary and normaliser settings as `SentencePieceModel`.
///
/// Understood: `model` {type "Unigram", vocab [[piece, score]], unk_id}; `normalizer` null, `Precompiled`
/// {precompiled_charsmap (base64)}, or a `Sequence` of those with `Replace` " {2,}" → " " and `Strip` (both already
/// implied by SentencePiece's whitespace handling); `pre_tokenizer` `Metaspace` (replacement ▁, add_prefix_space or
/// prepend_scheme "always"/"first"), `WhitespaceSplit`, or a `Sequence` of them; `added_tokens` (ids and whether
/// special); `post_processor` (checked to append `</s>` when it is a `TemplateProcessing`). Anything else throws
/// naming the field, rather than silently tokenising differently.
public struct TokenizerJSON: Sendable {
    /// The vocabulary in id order; added tokens are marked `.control` (special) or `.userDefined`.
    public var pieces: [VocabularyPiece]
    /// The id of `<unk>`.
    public var unknownID: Int
    /// The normaliser settings (charsmap and whitespace flags).
    public var normalizer: NormalizerSpec

    /// Reads `url`.
    /// - Throws: `TokenizerError` naming the file and the field.
    public init(contentsOf url: URL) throws {
        let file = url.path
        let root: [String: Any]
        do {
            let data = try Data(contentsOf: url)
            guard let object = try JSONSerialization.jsonObject(with: data) as? [String: Any] else {
                throw TokenizerError(file: file, field: "", reason: "top level is not a JSON object")
            }
            root = object
        } catch let error as TokenizerError {
            throw error
        } catch {
            throw TokenizerError(file: file, field: "", reason: "cannot read JSON: \(error.localizedDescription)")
        }
        func fail(_ field: String, _ reason: String) -> TokenizerError {
            TokenizerError(file: file, field: field, reason: reason)
        }

        guard let model = root["model"] as? [String: Any] else { throw fail("model", "missing or not an object") }
        guard let type = model["type"] as? String else { throw fail("model.type", "missing") }
        guard type == "Unigram" else { throw fail("model.type", "'\(type)' is not supported (only Unigram)") }
        if let fallback = model["byte_fallback"] as? Bool, fallback {
            throw fail("model.byte_fallback", "byte fallback is not supported")
        }
        guard let vocab = model["vocab"] as? [Any] else { throw fail("model.vocab", "missing or not an array") }
        var pieces: [VocabularyPiece] = []
        pieces.reserveCapacity(vocab.count)
        for (i, entry) in vocab.enumerated() {
            guard let pair = entry as? [Any], pair.count == 2, let piece = pair[0] as? String,
                let score = (pair[1] as? NSNumber)?.floatValue
            else { throw fail("model.vocab[\(i)]", "expected [piece, score]") }
            pieces.append(VocabularyPiece(piece: piece, score: score, kind: .normal))
        }
        guard let unk = (model["unk_id"] as? NSNumber)?.intValue, pieces.indices.contains(unk) else {
            throw fail("model.unk_id", "missing or not an id of the vocabulary")
        }
        pieces[unk].kind = .unknown
        for (i, entry) in ((root["added_tokens"] as? [Any]) ?? []).enumerated() {
            guard let token = entry as? [String: Any], let id = (token["id"] as? NSNumber)?.intValue,
                let content = token["content"] as? String
            else { throw fail("added_tokens[\(i)]", "expected an object with id and content") }
            guard pieces.indices.contains(id) else {
                throw fail("added_tokens[\(i)].id", "\(id) is outside the vocabulary of \(pieces.count)")
            }
            guard pieces[id].piece == content else {
                throw fail("added_tokens[\(i)].content", "'\(content)' differs from vocabulary entry '\(pieces[id].piece)'")
            }
            if id != unk { pieces[id].kind = (token["special"] as? Bool ?? false) ? .control : .userDefined }
        }
        self.pieces = pieces
        unknownID = unk

        var spec = NormalizerSpec()
        spec.name = "tokenizer.json"
        var collapses = false
        spec.precompiledCharsmap = try Self.charsmap(
            root["normalizer"], field: "normalizer", collapses: &collapses, fail: fail)
        // SentencePiece's strip-and-collapse is what WhitespaceSplit (current conversions) or a Replace " {2,}" → " "
        // (older ones) stand for; with neither, spaces survive as pieces and it is off.
        var sawSplit = false
        var sawMetaspace = false
        try Self.preTokenizer(
            root["pre_tokenizer"], field: "pre_tokenizer", split: &sawSplit, metaspace: &sawMetaspace, spec: &spec,
            fail: fail)
        guard sawMetaspace else { throw fail("pre_tokenizer", "no Metaspace pre-tokenizer (needed for ▁)") }
        spec.removeExtraWhitespaces = sawSplit || collapses
        normalizer = spec
    }

    private static func charsmap(
        _ value: Any?, field: String, collapses: inout Bool, fail: (String, String) -> TokenizerError
    ) throws -> [UInt8] {
        guard let value, !(value is NSNull) else { return [] }
        guard let object = value as? [String: Any], let type = object["type"] as? String else {
            throw fail(field, "expected an object with a type")
        }
        switch type {
        case "Precompiled":
            guard let text = object["precompiled_charsmap"] as? String, let data = Data(base64Encoded: text) else {
                throw fail(field + ".precompiled_charsmap", "missing or not base64")
            }
            return Array(data)
        case "Sequence":
            var result: [UInt8] = []
            for (i, item) in ((object["normalizers"] as? [Any]) ?? []).enumerated() {
                let inner = try charsmap(item, field: "\(field).normalizers[\(i)]", collapses: &collapses, fail: fail)
                if !inner.isEmpty {
                    guard result.isEmpty else { throw fail(field, "more than one Precompiled normalizer") }
                    result = inner
                }
            }
            return result
        case "Replace":
            // transformers' older T5 conversions collapse runs of spaces; SentencePiece's whitespace handling does.
            let pattern = (object["pattern"] as? [String: Any])?["Regex"] as? String
                ?? (object["pattern"] as? [String: Any])?["String"] as? String
            guard pattern == " {2,}", object["content"] as? String == " " else {
                throw fail(field, "Replace other than ' {2,}' → ' ' is not supported")
            }
            collapses = true
            return []
        case "Strip":
            return []
        default:
            throw fail(field + ".type", "normalizer '\(type)' is not supported")
        }
    }

    private static func preTokenizer(
        _ value: Any?, field: String, split: inout Bool, metaspace: inout Bool, spec: inout NormalizerSpec,
        fail: (String, String) -> TokenizerError
    ) throws {
        guard let object = value as? [String: Any], let type = object["type"] as? String else {
            throw fail(field, "missing or not an object with a type")
        }
        switch type {
        case "Sequence":
            for (i, item) in ((object["pretokenizers"] as? [Any]) ?? []).enumerated() {
                try preTokenizer(
                    item, field: "\(field).pretokenizers[\(i)]", split: &split, metaspace: &metaspace, spec: &spec,
                    fail: fail)
            }
        case "WhitespaceSplit":
            split = true
        case "Metaspace":
            metaspace = true
            if let replacement = object["replacement"] as? String, replacement != TextNormalizer.spaceSymbol {
                throw fail(field + ".replacement", "'\(replacement)' is not supported (only ▁)")
            }
            if let scheme = object["prepend_scheme"] as? String {
                guard ["always", "first", "never"].contains(scheme) else {
                    throw fail(field + ".prepend_scheme", "'\(scheme)' is not supported")
                }
                spec.addDummyPrefix = scheme != "never"
            } else if let add = object["add_prefix_space"] as? Bool {
                spec.addDummyPrefix = add
            }
            // Metaspace's own `split` makes each ▁-word a unit; pieces never span ▁ inside, so it changes nothing.
        default:
            throw fail(field + ".type", "pre-tokenizer '\(type)' is not supported")
        }
    }
}
