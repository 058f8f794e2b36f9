import TensorCore

/// How a tensor is cut among the ranks of a group: by rows (its first axis), rank k of n holding rows
/// ⌊k·R/n⌋ ..< ⌊(k+1)·R/n⌋ — per-parameter sharding on dim 0, as PyTorch's FSDP2 does.
///
/// Why per tensor and by rows rather than ZeRO's one flat buffer cut in n equal pieces: a row range of a row-major
/// tensor is one contiguous byte range and one box of the tensor (offsets along the first axis, full extent on the
/// others), so a checkpoint can name each shard by its box and another rank count can read exactly the rows it
/// needs. The cost is balance: a tensor with fewer rows than ranks leaves some ranks without a piece of it (biases,
/// norms), which is small next to the matrices.
public enum RowSharding {
    /// The rows of a tensor of shape `shape`: its first axis (1 for a scalar).
    public static func rowCount(_ shape: [Int]) -> Int { shape.first ?? 1 }

    /// Elements per row of a tensor of shape `shape`.
    public static func rowSize(_ shape: [Int]) -> Int { shape.dropFirst().reduce(1, *) }

    /// The rows rank `rank` of `ranks` holds out of `rows`.
    public static func rows(_ rows: Int, rank: Int, of ranks: Int) -> Range<Int> {
        precondition(ranks > 0 && rank >= 0 && rank < ranks, "RowSharding: rank \(rank) of \(ranks)")
        return (rank * rows / ranks)..<((rank + 1) * rows / ranks)
    }

    /// The shard shape of rank `rank` of `ranks` for a tensor of shape `shape`.
    public static func shardShape(_ shape: [Int], rank: Int, of ranks: Int) -> [Int] {
        Self.shape(of: rows(rowCount(shape), rank: rank, of: ranks), in: shape)
    }

    /// The shape of rows `rows` of a tensor of shape `shape` (a scalar stays a scalar when its one row is taken, and
    /// has shape [0] when not).
    public static func shape(of rows: Range<Int>, in shape: [Int]) -> [Int] {
        if shape.isEmpty { return rows.isEmpty ? [0] : [] }
        return [rows.count] + shape.dropFirst()
    }

    /// Element range (in the row-major order) of rank `rank`'s shard.
    public static func elements(_ shape: [Int], rank: Int, of ranks: Int) -> Range<Int> {
        let r = rows(rowCount(shape), rank: rank, of: ranks), size = rowSize(shape)
        return (r.lowerBound * size)..<(r.upperBound * size)
    }

    /// Copies rank `rank`'s rows of the float32 tensor `full` into `shard` (of `shardShape`).
    public static func copyRows(of full: Tensor, into shard: Tensor, rank: Int, of ranks: Int) {
        let range = elements(full.shape, rank: rank, of: ranks)
        precondition(shard.count == range.count, "copyRows: a shard of \(shard.count) elements for rows of \(range.count)")
        guard !range.isEmpty else { return }
        shard.storage.pointer(as: Float.self).update(from: full.storage.pointer(as: Float.self) + range.lowerBound, count: range.count)
        shard.storage.bumpVersion()
    }
}
