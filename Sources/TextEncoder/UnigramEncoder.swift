/// SentencePiece's Unigram segmentation: the highest-scoring split of normalised text into vocabulary pieces
/// (Viterbi over a lattice whose edges are the pieces found by a byte trie).
///
/// As `sentencepiece::unigram::Model::EncodeOptimized` (and Hugging Face's `Unigram` with `fuse_unk`):
/// - only normal and user-defined pieces are matched (control, unknown and unused pieces never come from text);
///   a user-defined piece scores `length · maxScore − 0.1` so that it always wins;
/// - where no piece of one character starts at a position, an `<unk>` edge of one character is added with score
///   `minScore − 10`, so every text has a segmentation;
/// - ties keep the first candidate seen (earlier start, then shorter piece), as both implementations do;
/// - consecutive `<unk>` pieces are merged into one.
public struct UnigramEncoder: Sendable {
    /// The vocabulary, in id order.
    public let pieces: [VocabularyPiece]
    /// The id emitted for text no piece covers.
    public let unknownID: Int
    private let unknownScore: Float
    /// Trie edges keyed by `node << 8 | byte`; node 0 is the root.
    private let edges: [Int: Int32]
    /// The piece id ending at each trie node (-1 for none).
    private let terminal: [Int32]
    /// The score of each trie node's piece.
    private let terminalScore: [Float]

    /// Builds the trie over the matchable pieces.
    public init(pieces: [VocabularyPiece], unknownID: Int) {
        self.pieces = pieces
        self.unknownID = unknownID
        let normal = pieces.filter { $0.kind == .normal }.map(\.score)
        let minScore = normal.min() ?? 0
        let maxScore = normal.max() ?? 0
        unknownScore = minScore - 10
        var edges: [Int: Int32] = [:]
        var terminal: [Int32] = [-1]
        var terminalScore: [Float] = [0]
        for (id, piece) in pieces.enumerated() where piece.kind == .normal || piece.kind == .userDefined {
            var node = 0
            let bytes = Array(piece.piece.utf8)
            guard !bytes.isEmpty else { continue }
            for byte in bytes {
                let key = node << 8 | Int(byte)
                if let next = edges[key] {
                    node = Int(next)
                } else {
                    terminal.append(-1)
                    terminalScore.append(0)
                    edges[key] = Int32(terminal.count - 1)
                    node = terminal.count - 1
                }
            }
            // The first piece with a given surface wins (duplicates do not occur in valid models).
            if terminal[node] < 0 {
                terminal[node] = Int32(id)
                terminalScore[node] =
                    piece.kind == .userDefined ? Float(bytes.count) * maxScore - 0.1 : piece.score
            }
        }
        self.edges = edges
        self.terminal = terminal
        self.terminalScore = terminalScore
    }

    /// The piece ids of normalised UTF-8 text (`▁` for spaces), best segmentation first to last.
    public func encode(_ text: [UInt8]) -> [Int] {
        let n = text.count
        guard n > 0 else { return [] }
        // bestScore[e], bestStart[e], bestID[e]: the best path ending at byte e.
        var bestScore = [Float](repeating: 0, count: n + 1)
        var bestStart = [Int](repeating: -1, count: n + 1)
        var bestID = [Int](repeating: -1, count: n + 1)
        var start = 0
        while start < n {
            let charLength = min(TextNormalizer.utf8Length(text[start]), n - start)
            let base = bestScore[start]
            var hasSingleCharacter = false
            var node = 0
            var i = start
            while i < n, let next = edges[node << 8 | Int(text[i])] {
                node = Int(next)
                i += 1
                let id = terminal[node]
                guard id >= 0 else { continue }
                let candidate = base + terminalScore[node]
                if bestStart[i] < 0 || candidate > bestScore[i] {
                    bestScore[i] = candidate
                    bestStart[i] = start
                    bestID[i] = Int(id)
                }
                if i - start == charLength { hasSingleCharacter = true }
            }
            if !hasSingleCharacter {
                let end = start + charLength
                let candidate = base + unknownScore
                if bestStart[end] < 0 || candidate > bestScore[end] {
                    bestScore[end] = candidate
                    bestStart[end] = start
                    bestID[end] = unknownID
                }
            }
            start += charLength
        }
        var ids: [Int] = []
        var end = n
        while end > 0 {
            let id = bestID[end]
            // Consecutive unknowns become one `<unk>` (walking backwards, skip an unk that follows an unk).
            if !(id == unknownID && ids.last == unknownID) { ids.append(id) }
            end = bestStart[end]
        }
        return ids.reversed()
    }
}
