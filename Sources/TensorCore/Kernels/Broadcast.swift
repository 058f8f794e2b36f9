/// Elementwise kernels over broadcast operands. Operands are read through strides (0 on broadcast axes) after
/// `Shape.collapse`, so the inner loop is a plain run over the last merged axis.
@usableFromInline
enum BroadcastKernel {
    /// out[i] = f(a[i'], b[i'']) with NumPy broadcasting; `out` is contiguous of `shape`.
    @inline(__always) @usableFromInline
    static func binary<T: TensorScalar>(
        _ a: UnsafePointer<T>, _ aStrides: [Int], _ b: UnsafePointer<T>, _ bStrides: [Int],
        _ out: UnsafeMutablePointer<T>, _ shape: [Int], _ f: (T, T) -> T
    ) {
        let count = shape.reduce(1, *)
        if count == 0 { return }
        let (dims, sets) = Shape.collapse(shape, [aStrides, bStrides, Shape.strides(shape)])
        let inner = dims.last!
        let sa = sets[0].last!, sb = sets[1].last!
        let outer = Array(dims.dropLast())
        let oa = Array(sets[0].dropLast()), ob = Array(sets[1].dropLast())
        let rows = outer.reduce(1, *)
        Parallel.forEach(rows, grain: max(1, 32768 / inner)) { range in
            for row in range {
                var rem = row, offA = 0, offB = 0
                for d in stride(from: outer.count - 1, through: 0, by: -1) {
                    let i = rem % outer[d]
                    rem /= outer[d]
                    offA += i * oa[d]
                    offB += i * ob[d]
                }
                let pa = a + offA, pb = b + offB, po = out + row * inner
                if sa == 1 && sb == 1 {
                    for j in 0..<inner { po[j] = f(pa[j], pb[j]) }
                } else if sa == 1 && sb == 0 {
                    let vb = pb[0]
                    for j in 0..<inner { po[j] = f(pa[j], vb) }
                } else if sa == 0 && sb == 1 {
                    let va = pa[0]
                    for j in 0..<inner { po[j] = f(va, pb[j]) }
                } else {
                    for j in 0..<inner { po[j] = f(pa[j * sa], pb[j * sb]) }
                }
            }
        }
    }

    /// out[i] = f(x[i]) over contiguous memory.
    @inline(__always) @usableFromInline
    static func unary<T: TensorScalar>(
        _ x: UnsafePointer<T>, _ out: UnsafeMutablePointer<T>, _ count: Int, _ f: (T) -> T
    ) {
        Parallel.forEach(count, grain: 32768) { range in
            for i in range { out[i] = f(x[i]) }
        }
    }
}
