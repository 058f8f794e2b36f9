import TensorCore
import TestSupport
import XCTest

/// arange(0, n) reshaped to `shape`, as Float32.
private func iota(_ shape: [Int]) -> Tensor {
    Tensor.arange(0, Double(shape.reduce(1, *))).reshape(shape)
}

final class ReduceTests: XCTestCase {
    func testReductionForwardValues() {
        let x = iota([2, 3, 4])  // x[i,j,k] = 12i + 4j + k
        XCTAssertEqual(x.sum().scalars, [276])
        XCTAssertEqual(x.sum(axis: 0).scalars, (0..<12).map { Float(2 * $0 + 12) })
        XCTAssertEqual(x.sum(axis: 1).scalars, [12, 15, 18, 21, 48, 51, 54, 57])
        XCTAssertEqual(x.sum(axis: -1).scalars, [6, 22, 38, 54, 70, 86])
        XCTAssertEqual(x.sum(axes: [0, 2]).scalars, [60, 92, 124])
        XCTAssertEqual(x.sum(axes: [0, 2], keepDims: true).shape, [1, 3, 1])
        XCTAssertEqual(x.mean(axes: [1, 2]).scalars, [5.5, 17.5])
        XCTAssertEqual(x.max(axis: 1).scalars, [8, 9, 10, 11, 20, 21, 22, 23])
        XCTAssertEqual(x.max(axes: [0, 2]).scalars, [15, 19, 23])
        XCTAssertEqual(x.max(axis: 2, keepDims: true).shape, [2, 3, 1])
        let v = Tensor(shape: [2, 4], scalars: [1, 2, 3, 4, 2, 2, 2, 10] as [Double])
        expectClose(v.variance(axes: [1]).doubleScalars, [1.25, 12], rtol: 1e-15, atol: 0, "population variance")
        expectClose(v.variance(axes: [1], correction: 1).doubleScalars, [5.0 / 3, 16], rtol: 1e-15, atol: 0, "unbiased")
    }

    func testMaxTiesShareTheGradient() {
        let x = Tensor(shape: [2, 3], scalars: [1, 3, 3, 2, 0, -1] as [Double], requiresGrad: true)
        x.max(axis: 1).sum().backward()
        XCTAssertEqual(x.grad!.doubleScalars, [0, 0.5, 0.5, 1, 0, 0])
    }

    /// Single axes, contiguous and non-contiguous axis sets, all axes; keepDims both ways.
    let axisSets: [[Int]?] = [[0], [1], [2], [-1], [0, 1], [1, 2], [0, 2], [0, 1, 2], nil]

    func testSumAndMeanGradients() {
        for axes in axisSets {
            for keep in [false, true] {
                GradientCheck.check(GradientCheck.inputs([[2, 3, 4]]), "sum \(axes ?? []) keep \(keep)") {
                    $0[0].sum(axes: axes, keepDims: keep)
                }
                GradientCheck.check(GradientCheck.inputs([[2, 3, 4]], seed: 2), "mean \(axes ?? []) keep \(keep)") {
                    $0[0].mean(axes: axes, keepDims: keep)
                }
            }
        }
    }

    func testMaxAndVarianceGradients() {
        for axes in axisSets {
            for keep in [false, true] {
                GradientCheck.check(GradientCheck.inputs([[2, 3, 4]], seed: 3), "max \(axes ?? []) keep \(keep)") {
                    $0[0].max(axes: axes, keepDims: keep)
                }
                GradientCheck.check(GradientCheck.inputs([[2, 3, 4]], seed: 4), "variance \(axes ?? []) keep \(keep)") {
                    $0[0].variance(axes: axes, keepDims: keep, correction: keep ? 1 : 0)
                }
            }
        }
    }

    func testLargeReductionsMatchFloat64() {
        // Three threads cut the (outer, inner) outputs into uneven chunks that start mid-row.
        let saved = Parallel.threadCount
        defer { Parallel.threadCount = saved }
        Parallel.threadCount = 3
        for shape in [[7, 300, 33], [5, 40, 3001]] {
            let x = Tensor.randn(shape, generator: RandomGenerator(seed: 5))
            let x64 = x.to(.float64)
            for axes in [[0], [1], [2], [0, 2], [1, 2]] {
                expectClose(x.sum(axes: axes), x64.sum(axes: axes), rtol: 1e-4, atol: 1e-4, "sum \(shape) \(axes)")
                expectClose(x.max(axes: axes), x64.max(axes: axes), rtol: 0, atol: 0, "max \(shape) \(axes)")
            }
        }
    }
}

final class MovementTests: XCTestCase {
    // MARK: Forward values

    func testPermuteAndTranspose() {
        let x = iota([2, 3, 4])
        let p = x.permute([2, 0, 1])  // p[k,i,j] = x[i,j,k]
        XCTAssertEqual(p.shape, [4, 2, 3])
        var expected: [Float] = []
        for k in 0..<4 { for i in 0..<2 { for j in 0..<3 { expected.append(Float(12 * i + 4 * j + k)) } } }
        XCTAssertEqual(p.scalars, expected)
        XCTAssertEqual(iota([2, 3]).transposed().scalars, [0, 3, 1, 4, 2, 5])
        XCTAssertEqual(x.transposed(0, 2).shape, [4, 3, 2])
        XCTAssertEqual(x.transposed(0, 2).scalars, x.permute([2, 1, 0]).scalars)
    }

    func testSliceValues() {
        XCTAssertEqual(Tensor.arange(0, 10).slice(axis: 0, 1, 9, step: 3).scalars, [1, 4, 7])
        XCTAssertEqual(Tensor.arange(0, 10).slice(axis: 0, 2, 10, step: 4).scalars, [2, 6])
        let x = iota([3, 5])
        XCTAssertEqual(x.slice(axis: 1, 0, 5, step: 2).scalars, [0, 2, 4, 5, 7, 9, 10, 12, 14])
        XCTAssertEqual(x.slice(axis: 0, 1, 3).scalars, [5, 6, 7, 8, 9, 10, 11, 12, 13, 14])
        XCTAssertEqual(x.slice(axis: -1, 3, 4).shape, [3, 1])
        XCTAssertEqual(x.slice(axis: 0, 2, 2).shape, [0, 5])
    }

    func testExpandRepeatConcatValues() {
        let col = Tensor(shape: [3, 1], scalars: [1, 2, 3] as [Float])
        XCTAssertEqual(col.expand([2, 3, 2]).scalars, [1, 1, 2, 2, 3, 3, 1, 1, 2, 2, 3, 3])
        // torch.tensor([[1, 2], [3, 4]]).repeat(2, 3)
        let m = Tensor(shape: [2, 2], scalars: [1, 2, 3, 4] as [Float])
        let r = m.repeated([2, 3])
        XCTAssertEqual(r.shape, [4, 6])
        XCTAssertEqual(
            r.scalars, [1, 2, 1, 2, 1, 2, 3, 4, 3, 4, 3, 4, 1, 2, 1, 2, 1, 2, 3, 4, 3, 4, 3, 4])
        XCTAssertEqual(Tensor(shape: [2], scalars: [5, 6] as [Float]).repeated([3]).scalars, [5, 6, 5, 6, 5, 6])
        let c = Tensor.concat([m, Tensor(shape: [2, 1], scalars: [9, 8] as [Float]), m], axis: 1)
        XCTAssertEqual(c.shape, [2, 5])
        XCTAssertEqual(c.scalars, [1, 2, 9, 1, 2, 3, 4, 8, 3, 4])
        XCTAssertEqual(Tensor.concat([m, m], axis: 0).scalars, [1, 2, 3, 4, 1, 2, 3, 4])
    }

    func testSplitChunkPadIndexSelectValues() {
        let x = iota([2, 5])
        let parts = x.split([2, 3], axis: 1)
        XCTAssertEqual(parts.map(\.shape), [[2, 2], [2, 3]])
        XCTAssertEqual(parts[0].scalars, [0, 1, 5, 6])
        XCTAssertEqual(parts[1].scalars, [2, 3, 4, 7, 8, 9])
        let chunks = iota([4, 2]).chunked(2, axis: 0)
        XCTAssertEqual(chunks.map(\.scalars), [[0, 1, 2, 3], [4, 5, 6, 7]])
        let m = Tensor(shape: [2, 2], scalars: [1, 2, 3, 4] as [Float])
        let p = m.padded([(1, 0), (0, 2)], value: 9)
        XCTAssertEqual(p.shape, [3, 4])
        XCTAssertEqual(p.scalars, [9, 9, 9, 9, 1, 2, 9, 9, 3, 4, 9, 9])
        XCTAssertEqual(m.padded([(0, 1)]).scalars, [1, 2, 3, 4, 0, 0], "fewer pairs pad the leading axes")
        XCTAssertEqual(iota([3, 2, 2]).padded([(0, 0), (1, 1), (1, 0)]).shape, [3, 4, 3])
        let s = x.indexSelect(axis: 1, indices: [4, 0, 4])
        XCTAssertEqual(s.scalars, [4, 0, 4, 9, 5, 9])
        XCTAssertEqual(x.indexSelect(axis: 0, indices: [1, 1]).scalars, [5, 6, 7, 8, 9, 5, 6, 7, 8, 9])
    }

    func testReshapeSharesStorage() {
        let x = iota([2, 6])
        let y = x.reshape([3, -1])
        XCTAssertEqual(y.shape, [3, 4])
        XCTAssertTrue(x.storage === y.storage)
        XCTAssertEqual(x.flatten().shape, [12])
        XCTAssertEqual(x.unsqueeze(1).shape, [2, 1, 6])
        XCTAssertEqual(x.unsqueeze(-1).shape, [2, 6, 1])
        XCTAssertEqual(x.unsqueeze(1).squeeze(1).shape, [2, 6])
    }

    func testLargeCopiesSplitAcrossThreads() {
        // Large enough that the strided copy and the broadcast kernel cut their rows into several chunks; three
        // threads make the chunks uneven.
        let saved = Parallel.threadCount
        defer { Parallel.threadCount = saved }
        Parallel.threadCount = 3
        let x = iota([8, 100, 120])
        let p = x.permute([2, 0, 1]).scalars
        var expected = [Float](repeating: 0, count: x.count)
        for k in 0..<120 { for i in 0..<8 { for j in 0..<100 { expected[(k * 8 + i) * 100 + j] = Float(12000 * i + 120 * j + k) } } }
        XCTAssertEqual(p, expected, "permute")
        let s = x.slice(axis: 1, 3, 100, step: 4).scalars
        var expectedSlice: [Float] = []
        for i in 0..<8 { for j in stride(from: 3, to: 100, by: 4) { for k in 0..<120 { expectedSlice.append(Float(12000 * i + 120 * j + k)) } } }
        XCTAssertEqual(s, expectedSlice, "slice")
        let a = iota([40, 300, 17]), b = iota([300, 1])
        var expectedSum = [Float](repeating: 0, count: a.count)
        for i in 0..<40 { for j in 0..<300 { for k in 0..<17 { expectedSum[(i * 300 + j) * 17 + k] = Float((i * 300 + j) * 17 + k + j) } } }
        XCTAssertEqual((a + b).scalars, expectedSum, "broadcast add")
    }

    // MARK: Gradients

    func testMovementGradients() {
        let x = GradientCheck.inputs([[2, 3, 4]])
        GradientCheck.check(x, "reshape") { $0[0].reshape([4, -1]) }
        GradientCheck.check(x, "permute") { $0[0].permute([2, 0, 1]) }
        GradientCheck.check(x, "transposed") { $0[0].transposed() }
        GradientCheck.check(x, "slice") { $0[0].slice(axis: 1, 1, 3) }
        GradientCheck.check(x, "slice step 2") { $0[0].slice(axis: 2, 1, 4, step: 2) }
        GradientCheck.check(x, "slice step 3 leading axis") { $0[0].slice(axis: 0, 0, 2, step: 3) }
        GradientCheck.check(x, "repeated") { $0[0].repeated([2, 1, 3]) }
        GradientCheck.check(x, "split") { xs in
            let parts = xs[0].split([1, 3], axis: 2)
            return parts[0] * 2.0 + parts[1].sum(axis: 2, keepDims: true)
        }
        GradientCheck.check(x, "chunked") { xs in
            let parts = xs[0].chunked(3, axis: 1)
            return parts[0] * parts[2] - parts[1]
        }
        GradientCheck.check(x, "padded") { $0[0].padded([(1, 0), (0, 2), (2, 1)], value: 3) }
        GradientCheck.check(x, "indexSelect repeated indices") { $0[0].indexSelect(axis: 1, indices: [2, 0, 2, 2]) }
        GradientCheck.check(x, "indexSelect axis 2") { $0[0].indexSelect(axis: 2, indices: [3, 3, 1]) }
        GradientCheck.check(x, "flatten/unsqueeze/squeeze") { $0[0].flatten(from: 1).unsqueeze(0).squeeze(0) }
    }

    func testExpandAndConcatGradients() {
        GradientCheck.check(GradientCheck.inputs([[3, 1]]), "expand") { $0[0].expand([2, 3, 4]) }
        GradientCheck.check(GradientCheck.inputs([[1, 3, 1]], seed: 2), "expand leading") { $0[0].expand([2, 3, 2]) }
        GradientCheck.check(GradientCheck.inputs([[2, 1, 4], [2, 3, 4], [2, 2, 4]], seed: 3), "concat axis 1") {
            Tensor.concat($0, axis: 1)
        }
        GradientCheck.check(GradientCheck.inputs([[2, 3], [1, 3]], seed: 4), "concat axis 0") {
            Tensor.concat($0, axis: 0)
        }
        GradientCheck.check(GradientCheck.inputs([[2, 3], [2, 2]], seed: 5), "concat axis -1") {
            Tensor.concat($0, axis: -1)
        }
    }
}

final class MatMulTests: XCTestCase {
    func testHandComputedProduct() {
        let a = Tensor(shape: [2, 3], scalars: [1, 2, 3, 4, 5, 6] as [Float])
        let b = Tensor(shape: [3, 2], scalars: [7, 8, 9, 10, 11, 12] as [Float])
        XCTAssertEqual(Tensor.matmul(a, b).scalars, [58, 64, 139, 154])
        XCTAssertEqual(Tensor.matmul(a, a, transposeB: true).scalars, [14, 32, 32, 77])
        XCTAssertEqual(Tensor.matmul(a, a, transposeA: true).scalars, [17, 22, 27, 22, 29, 36, 27, 36, 45])
        XCTAssertEqual(Tensor.matmul(b, a, transposeA: true, transposeB: true).scalars, [58, 139, 64, 154])
        XCTAssertEqual(a.matmul(b).scalars, [58, 64, 139, 154])
    }

    /// Naive batched product of (…, M, K) and (…, K, N) with broadcast batch axes, in Float64.
    private func reference(_ a: Tensor, _ b: Tensor) -> Tensor {
        let m = a.shape[a.rank - 2], k = a.shape[a.rank - 1], n = b.shape[b.rank - 1]
        let batch = Shape.broadcast(Array(a.shape.dropLast(2)), Array(b.shape.dropLast(2)), op: "reference")
        let ea = a.expand(batch + [m, k]).doubleScalars, eb = b.expand(batch + [k, n]).doubleScalars
        var out: [Double] = []
        for t in 0..<batch.reduce(1, *) {
            for i in 0..<m {
                for j in 0..<n {
                    out.append((0..<k).reduce(0.0) { $0 + ea[t * m * k + i * k + $1] * eb[t * k * n + $1 * n + j] })
                }
            }
        }
        return Tensor(shape: batch + [m, n], scalars: out)
    }

    func testBatchBroadcastingMatchesNaiveProduct() {
        let cases: [([Int], [Int])] = [([2, 3, 4, 5], [5, 6]), ([3, 1, 4, 5], [2, 5, 6]), ([4, 5], [2, 5, 3]), ([2, 1, 3], [2, 3, 2])]
        for (sa, sb) in cases {
            let a = Tensor.randn(sa, generator: RandomGenerator(seed: 1)).to(.float64)
            let b = Tensor.randn(sb, generator: RandomGenerator(seed: 2)).to(.float64)
            expectClose(Tensor.matmul(a, b), reference(a, b), rtol: 1e-12, atol: 1e-12, "matmul \(sa)·\(sb)")
            // The transposed layouts give the same product.
            let at = a.transposed(), bt = b.transposed()
            expectClose(Tensor.matmul(at, bt, transposeA: true, transposeB: true), reference(a, b), rtol: 1e-12, atol: 1e-12,
                        "matmul ᵀ \(sa)·\(sb)")
        }
    }

    func testMatMulGradients() {
        let cases: [([Int], [Int], Bool, Bool)] = [
            ([3, 4], [4, 5], false, false), ([4, 3], [4, 5], true, false), ([3, 4], [5, 4], false, true),
            ([4, 3], [5, 4], true, true), ([2, 3, 4, 5], [5, 6], false, false), ([3, 1, 4, 5], [2, 5, 6], false, false),
            ([2, 5, 4], [3, 1, 6, 5], true, true), ([3, 4], [2, 4, 2], false, false),
        ]
        for (k, (sa, sb, ta, tb)) in cases.enumerated() {
            GradientCheck.check(GradientCheck.inputs([sa, sb], seed: UInt64(k + 1)), "matmul \(sa)·\(sb) ᵀ\(ta)\(tb)") {
                Tensor.matmul($0[0], $0[1], transposeA: ta, transposeB: tb)
            }
        }
    }

    func testLinear() {
        GradientCheck.check(GradientCheck.inputs([[2, 3, 4], [5, 4], [5]]), "linear") {
            Tensor.linear($0[0], weight: $0[1], bias: $0[2])
        }
        GradientCheck.check(GradientCheck.inputs([[3, 4], [2, 4]], seed: 2), "linear without bias") {
            Tensor.linear($0[0], weight: $0[1], bias: nil)
        }
        let x = Tensor(shape: [1, 2], scalars: [1, 2] as [Float])
        let w = Tensor(shape: [3, 2], scalars: [1, 0, 0, 1, 1, 1] as [Float])
        let y = Tensor.linear(x, weight: w, bias: Tensor(shape: [3], scalars: [10, 20, 30] as [Float]))
        XCTAssertEqual(y.scalars, [11, 22, 33])
    }
}
