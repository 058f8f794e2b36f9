/// SentencePiece's text normaliser: the precompiled character map (NFKC-like rules of `nmt_nfkc`) applied by longest
/// prefix match, then whitespace handling (drop leading/trailing spaces, collapse runs, `▁` for spaces, a leading `▁`).
///
/// This follows `sentencepiece::normalizer::Normalizer::Normalize`: at each position the longest rule in the charsmap
/// trie that matches a prefix of the remaining bytes is applied; without a match one UTF-8 character is copied. The
/// Hugging Face `Precompiled` normaliser applies the same charsmap per grapheme cluster instead; the two agree on the
/// committed test corpus (recorded by `make_text_fixtures.py`), and SentencePiece's is the original, so it is the one
/// implemented here for both file formats.
public struct TextNormalizer: Sendable {
    /// The whitespace and prefix flags.
    public let spec: NormalizerSpec
    private let trie: [UInt32]
    private let replacements: [UInt8]

    /// The `▁` (U+2581) that stands for a space.
    public static let spaceSymbol = "\u{2581}"
    static let spaceSymbolBytes: [UInt8] = Array("\u{2581}".utf8)

    /// A normaliser for `spec`.
    /// - Throws: `TokenizerError` (naming `file` and `precompiled_charsmap`) when the charsmap is malformed.
    public init(spec: NormalizerSpec, file: String) throws {
        self.spec = spec
        let blob = spec.precompiledCharsmap
        guard !blob.isEmpty else {
            trie = []
            replacements = []
            return
        }
        // Layout: trie size in bytes (u32 LE), the double-array units (u32 LE each), then NUL-terminated replacements.
        guard blob.count >= 4 else {
            throw TokenizerError(file: file, field: "precompiled_charsmap", reason: "shorter than its 4-byte header")
        }
        let trieSize = Int(UInt32(blob[0]) | UInt32(blob[1]) << 8 | UInt32(blob[2]) << 16 | UInt32(blob[3]) << 24)
        guard trieSize % 4 == 0, trieSize >= 4, 4 + trieSize <= blob.count else {
            throw TokenizerError(
                file: file, field: "precompiled_charsmap",
                reason: "trie size \(trieSize) does not fit the \(blob.count)-byte blob")
        }
        var units = [UInt32](repeating: 0, count: trieSize / 4)
        for i in units.indices {
            let o = 4 + 4 * i
            units[i] = UInt32(blob[o]) | UInt32(blob[o + 1]) << 8 | UInt32(blob[o + 2]) << 16 | UInt32(blob[o + 3]) << 24
        }
        trie = units
        replacements = Array(blob[(4 + trieSize)...])
    }

    /// The normalised form of `text` as UTF-8 bytes, spaces escaped as `▁` when the spec says so.
    public func normalize(_ text: String) -> [UInt8] {
        let input = Array(text.utf8)
        var position = 0
        var output: [UInt8] = []
        output.reserveCapacity(input.count + 8)
        let space = UInt8(ascii: " ")
        // Leading spaces (after normalisation) are dropped.
        if spec.removeExtraWhitespaces {
            while position < input.count {
                let (piece, consumed) = normalizePrefix(input, position)
                guard piece.count == 1, piece.first == space else { break }
                position += consumed
            }
        }
        if position >= input.count { return [] }
        if spec.addDummyPrefix { appendSpace(&output) }
        var previousIsSpace = spec.removeExtraWhitespaces
        while position < input.count {
            let (piece, consumed) = normalizePrefix(input, position)
            // `piece` is a slice: index from its own start.
            var start = piece.startIndex
            while previousIsSpace && start < piece.endIndex && piece[start] == space { start += 1 }
            if start < piece.endIndex {
                for byte in piece[start...] {
                    if byte == space { appendSpace(&output) } else { output.append(byte) }
                }
                previousIsSpace = piece.last == space
            }
            position += consumed
            if !spec.removeExtraWhitespaces { previousIsSpace = false }
        }
        if spec.removeExtraWhitespaces {
            let trailing = spec.escapeWhitespaces ? Self.spaceSymbolBytes : [space]
            while output.count >= trailing.count && Array(output.suffix(trailing.count)) == trailing {
                output.removeLast(trailing.count)
            }
        }
        return output
    }

    private func appendSpace(_ output: inout [UInt8]) {
        if spec.escapeWhitespaces { output += Self.spaceSymbolBytes } else { output.append(UInt8(ascii: " ")) }
    }

    /// The replacement of the longest rule matching at `start` and the bytes it consumes; without a rule, one UTF-8
    /// character unchanged.
    func normalizePrefix(_ input: [UInt8], _ start: Int) -> (ArraySlice<UInt8>, Int) {
        if !trie.isEmpty, let (length, value) = longestMatch(input, start) {
            var end = value
            while end < replacements.count && replacements[end] != 0 { end += 1 }
            return (replacements[value..<end], length)
        }
        let length = min(Self.utf8Length(input[start]), input.count - start)
        return (input[start..<(start + length)], length)
    }

    /// Darts-clone common-prefix search from `start`, keeping the longest hit: (match length, replacement offset).
    private func longestMatch(_ input: [UInt8], _ start: Int) -> (Int, Int)? {
        @inline(__always) func offset(_ unit: UInt32) -> Int { Int((unit >> 10) << ((unit & (1 << 9)) >> 6)) }
        var node = offset(trie[0])
        var best: (Int, Int)?
        var i = start
        while i < input.count {
            let byte = input[i]
            if byte == 0 { break }
            node ^= Int(byte)
            guard node < trie.count else { break }
            let unit = trie[node]
            guard unit & ((1 << 31) | 0xff) == UInt32(byte) else { break }
            node ^= offset(unit)
            guard node < trie.count else { break }
            if (unit >> 8) & 1 == 1 {
                let value = Int(trie[node] & ((1 << 31) - 1))
                if value < replacements.count { best = (i - start + 1, value) }
            }
            i += 1
        }
        return best
    }

    /// The length of the UTF-8 sequence that starts with `lead`.
    static func utf8Length(_ lead: UInt8) -> Int {
        switch lead {
        case 0..<0x80: return 1
        case 0xc0..<0xe0: return 2
        case 0xe0..<0xf0: return 3
        case 0xf0..<0xf8: return 4
        default: return 1
        }
    }
}
