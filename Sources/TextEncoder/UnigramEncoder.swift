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
    private let edges: TrieEdgeTable
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
        self.edges = TrieEdgeTable(edges)
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
        // Raw buffers in the loop: no bounds checks, and no reference counting on the shared tables (atomic
        // retains on one buffer from several threads would serialise parallel tokenisation).
        edges.keys.withUnsafeBufferPointer { keys in
            edges.values.withUnsafeBufferPointer { values in
                terminal.withUnsafeBufferPointer { terminal in
                    terminalScore.withUnsafeBufferPointer { terminalScore in
                        var start = 0
                        while start < n {
                            let charLength = min(TextNormalizer.utf8Length(text[start]), n - start)
                            let base = bestScore[start]
                            var hasSingleCharacter = false
                            var node = 0
                            var i = start
                            while i < n {
                                let next = TrieEdgeTable.lookup(keys, values, mask: edges.mask, node << 8 | Int(text[i]))
                                if next < 0 { break }
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
                    }
                }
            }
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

/// The trie's edges as an open-addressing hash table (linear probing, load ≤ 1/2): key `node << 8 | byte`, value the
/// child node. Faster than `Dictionary` (a multiplicative hash instead of SipHash) and readable through raw buffers.
struct TrieEdgeTable: Sendable {
    /// Keys, -1 for an empty slot.
    let keys: [Int]
    /// Child node of each key.
    let values: [Int32]
    /// Table size − 1 (a power of two − 1).
    let mask: Int

    init(_ edges: [Int: Int32]) {
        var size = 16
        while size < 2 * edges.count { size *= 2 }
        var keys = [Int](repeating: -1, count: size)
        var values = [Int32](repeating: -1, count: size)
        for (key, value) in edges {
            var slot = Self.hash(key) & (size - 1)
            while keys[slot] >= 0 { slot = (slot + 1) & (size - 1) }
            keys[slot] = key
            values[slot] = value
        }
        self.keys = keys
        self.values = values
        mask = size - 1
    }

    @inline(__always) static func hash(_ key: Int) -> Int {
        Int(truncatingIfNeeded: (UInt64(truncatingIfNeeded: key) &* 0x9E37_79B9_7F4A_7C15) >> 32)
    }

    /// The child for `key`, or -1.
    @inline(__always) static func lookup(
        _ keys: UnsafeBufferPointer<Int>, _ values: UnsafeBufferPointer<Int32>, mask: Int, _ key: Int
    ) -> Int32 {
        var slot = hash(key) & mask
        while true {
            let k = keys[slot]
            if k == key { return values[slot] }
            if k < 0 { return -1 }
            slot = (slot + 1) & mask
        }
    }
}
