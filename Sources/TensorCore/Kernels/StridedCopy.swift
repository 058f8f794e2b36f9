/// Copies elements read with arbitrary strides into a contiguous destination: the kernel behind permute, slice,
/// expand and repeat. Works on any dtype by moving elements as 2-, 4- or 8-byte words.
enum StridedCopy {
    /// - Parameters:
    ///   - src: first source byte; `offset` and `strides` are in elements.
    ///   - shape: the destination's shape (contiguous).
    static func run(
        src: UnsafeRawPointer, offset: Int, strides: [Int], shape: [Int], dst: UnsafeMutableRawPointer, elementSize: Int
    ) {
        let count = shape.reduce(1, *)
        if count == 0 { return }
        let (dims, sets) = Shape.collapse(shape, [strides])
        switch elementSize {
        case 2: copy(UInt16.self, src, offset, sets[0], dims, dst)
        case 4: copy(UInt32.self, src, offset, sets[0], dims, dst)
        case 8: copy(UInt64.self, src, offset, sets[0], dims, dst)
        default: preconditionFailure("StridedCopy: element size \(elementSize)")
        }
    }

    @inline(__always)
    private static func copy<W>(
        _: W.Type, _ rawSrc: UnsafeRawPointer, _ offset: Int, _ strides: [Int], _ dims: [Int],
        _ rawDst: UnsafeMutableRawPointer
    ) {
        let src = rawSrc.assumingMemoryBound(to: W.self) + offset
        let dst = rawDst.assumingMemoryBound(to: W.self)
        let inner = dims.last!
        let innerStride = strides.last!
        let rows = dims.dropLast().reduce(1, *)
        let outer = Array(dims.dropLast())
        let outerStrides = Array(strides.dropLast())
        Parallel.forEach(rows, grain: max(1, 16384 / max(inner, 1))) { range in
            var index = [Int](repeating: 0, count: outer.count)
            var rem = range.lowerBound
            var base = 0
            for d in stride(from: outer.count - 1, through: 0, by: -1) {
                index[d] = rem % outer[d]
                rem /= outer[d]
                base += index[d] * outerStrides[d]
            }
            for row in range {
                let s = src + base
                let o = dst + row * inner
                if innerStride == 1 {
                    o.update(from: s, count: inner)
                } else {
                    for j in 0..<inner { o[j] = s[j * innerStride] }
                }
                // Advance the multi-index (odometer).
                var d = outer.count - 1
                while d >= 0 {
                    index[d] += 1
                    base += outerStrides[d]
                    if index[d] < outer[d] { break }
                    base -= index[d] * outerStrides[d]
                    index[d] = 0
                    d -= 1
                }
            }
        }
    }
}
