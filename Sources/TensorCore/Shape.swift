/// Shape arithmetic shared by the ops.
public enum Shape {
    /// Row-major strides (in elements) of a contiguous tensor of `shape`.
    @inlinable
    public static func strides(_ shape: [Int]) -> [Int] {
        var s = [Int](repeating: 1, count: shape.count)
        var acc = 1
        for i in stride(from: shape.count - 1, through: 0, by: -1) {
            s[i] = acc
            acc *= shape[i]
        }
        return s
    }

    /// The NumPy broadcast of two shapes (aligned on the right); stops with a message naming `op` when they clash.
    public static func broadcast(_ a: [Int], _ b: [Int], op: String) -> [Int] {
        let r = max(a.count, b.count)
        var out = [Int](repeating: 1, count: r)
        for i in 0..<r {
            let da = i < r - a.count ? 1 : a[i - (r - a.count)]
            let db = i < r - b.count ? 1 : b[i - (r - b.count)]
            precondition(da == db || da == 1 || db == 1, "\(op): shapes \(a) and \(b) do not broadcast")
            out[i] = da == 1 ? db : da
        }
        return out
    }

    /// Strides for reading a tensor of `shape` as if broadcast to `target` (0 on broadcast axes).
    public static func broadcastStrides(_ shape: [Int], to target: [Int]) -> [Int] {
        let own = strides(shape)
        let pad = target.count - shape.count
        precondition(pad >= 0, "broadcast: shape \(shape) has more axes than \(target)")
        var s = [Int](repeating: 0, count: target.count)
        for i in 0..<shape.count where shape[i] != 1 {
            precondition(shape[i] == target[i + pad], "broadcast: shape \(shape) cannot expand to \(target)")
            s[i + pad] = own[i]
        }
        return s
    }

    /// Merges adjacent axes that every operand walks contiguously, so kernels see as few axes as possible.
    /// - Returns: the merged extents and, per operand, the merged strides.
    public static func collapse(_ shape: [Int], _ strideSets: [[Int]]) -> ([Int], [[Int]]) {
        var dims: [Int] = []
        var sets = [[Int]](repeating: [], count: strideSets.count)
        for i in 0..<shape.count where shape[i] != 1 {
            if let last = dims.last {
                let mergeable = strideSets.indices.allSatisfy { k in
                    sets[k].last! == strideSets[k][i] * shape[i]
                }
                if mergeable {
                    dims[dims.count - 1] = last * shape[i]
                    for k in sets.indices { sets[k][sets[k].count - 1] = strideSets[k][i] }
                    continue
                }
            }
            dims.append(shape[i])
            for k in sets.indices { sets[k].append(strideSets[k][i]) }
        }
        if dims.isEmpty { return ([1], strideSets.map { _ in [1] }) }
        return (dims, sets)
    }
}
