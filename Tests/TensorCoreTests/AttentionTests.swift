import Foundation
import TensorCore
import TestSupport
import XCTest

final class AttentionTests: XCTestCase {
    // MARK: PyTorch fixtures (stored (B, Nh, L, Dh); the op takes (B, L, Nh, Dh))

    private func checkFixture(_ prefix: String, mask: (([String: Tensor]) -> AttentionMask)? = nil) throws {
        let f = try Fixture.load("attention", target: "TensorCoreTests")
        func ours(_ key: String) -> Tensor { f.tensor(prefix + key).permute([0, 2, 1, 3]) }
        let q = ours("q"), k = ours("k"), v = ours("v")
        for t in [q, k, v] { t.requiresGrad = true }
        let out = Tensor.attention(q, k, v, mask: mask?(f) ?? .none)
        expectClose(out, ours("output"), rtol: 1e-5, atol: 1e-5, "\(prefix)output")
        (out * ours("grad_output")).sum().backward()
        expectClose(q.grad!, ours("grad_q"), rtol: 1e-5, atol: 1e-5, "\(prefix)grad_q")
        expectClose(k.grad!, ours("grad_k"), rtol: 1e-5, atol: 1e-5, "\(prefix)grad_k")
        expectClose(v.grad!, ours("grad_v"), rtol: 1e-5, atol: 1e-5, "\(prefix)grad_v")
    }

    private static func keyPadding(_ t: Tensor) -> AttentionMask {
        let lk = t.shape[1], values = t.scalars
        return AttentionMask(keyPadding: (0..<t.shape[0]).map { b in (0..<lk).map { values[b * lk + $0] != 0 } })
    }

    func testSelfAttentionMatchesPyTorch() throws { try checkFixture("self_") }

    func testKeyPaddingMatchesPyTorch() throws {
        try checkFixture("mask_") { Self.keyPadding($0.tensor("mask_key_padding")) }
    }

    func testPackedSegmentsMatchPyTorch() throws {
        try checkFixture("packed_") { AttentionMask(segments: $0.tensor("packed_offsets").scalars.map { Int($0) }) }
    }

    func testCrossAttentionMatchesPyTorch() throws {
        try checkFixture("cross_") { Self.keyPadding($0.tensor("cross_mask_key_padding")) }
    }

    // MARK: Float64 finite differences

    func testSelfAttentionGradient() {
        let x = GradientCheck.inputs([[2, 5, 2, 3], [2, 5, 2, 3], [2, 5, 2, 3]])
        GradientCheck.check(x, "attention self") { Tensor.attention($0[0], $0[1], $0[2]) }
    }

    func testKeyPaddingGradient() {
        let x = GradientCheck.inputs([[2, 4, 2, 3], [2, 5, 2, 3], [2, 5, 2, 3]], seed: 2)
        let mask = AttentionMask(keyLengths: [5, 2], keyCount: 5)
        GradientCheck.check(x, "attention key padding") { Tensor.attention($0[0], $0[1], $0[2], scale: 0.7, mask: mask) }
    }

    func testPackedGradient() {
        let x = GradientCheck.inputs([[1, 7, 2, 4], [1, 7, 2, 4], [1, 7, 2, 4]], seed: 3)
        GradientCheck.check(x, "attention packed") {
            Tensor.attention($0[0], $0[1], $0[2], mask: AttentionMask(segments: [0, 3, 4, 7]))
        }
    }

    func testCrossAttentionGradient() {
        // Packed cross-attention: each sample's 3 or 2 queries see its own 2 or 4 keys, with one key padded.
        let x = GradientCheck.inputs([[2, 5, 2, 3], [2, 6, 2, 3], [2, 6, 2, 3]], seed: 4)
        var padding = [[Bool]](repeating: [Bool](repeating: true, count: 6), count: 2)
        padding[1][4] = false
        let mask = AttentionMask(keyPadding: padding, querySegments: [0, 3, 5], keySegments: [0, 2, 6])
        GradientCheck.check(x, "attention cross") { Tensor.attention($0[0], $0[1], $0[2], mask: mask) }
    }

    // MARK: Against an explicit reference over several tiles

    /// Packed self-attention with key padding, L = 330 and Dh = 72 (segments that start and end inside tiles; the
    /// last one spans 3 query blocks and 2 key tiles), output and all gradients against `NaiveAttention`, in Float64
    /// and Float32.
    func testFusedMatchesNaiveReferenceAcrossTiles() {
        let (b, l, nh, dh) = (2, 330, 2, 72)
        let segments = [0, 7, 40, 41, 330]
        var padding = [[Bool]](repeating: [Bool](repeating: true, count: l), count: b)
        for j in 100..<140 { padding[1][j] = false }
        padding[1][3] = false
        let mask = AttentionMask(keyPadding: padding, querySegments: segments, keySegments: segments)
        let reference = NaiveAttention(batch: b, queryCount: l, keyCount: l, heads: nh, headDim: dh, scale: 0.11) {
            batch, i, j in
            padding[batch][j] && segments.lastIndex { $0 <= i }! == segments.lastIndex { $0 <= j }!
        }
        compare(reference, mask: mask)
    }

    /// Cross-attention Lq = 140, Lk = 300, Dh = 64, with key padding that empties a whole key tile of one batch element.
    func testCrossAttentionMatchesNaiveReference() {
        let mask = AttentionMask(keyLengths: [300, 20], keyCount: 300)
        let reference = NaiveAttention(batch: 2, queryCount: 140, keyCount: 300, heads: 3, headDim: 64, scale: 0.125) {
            batch, _, j in batch == 0 || j < 20
        }
        compare(reference, mask: mask)
    }

    private func compare(_ reference: NaiveAttention, mask: AttentionMask, file: StaticString = #filePath, line: UInt = #line) {
        let g = RandomGenerator(seed: 7)
        let qShape = [reference.batch, reference.queryCount, reference.heads, reference.headDim]
        let kShape = [reference.batch, reference.keyCount, reference.heads, reference.headDim]
        let inputs = [qShape, kShape, kShape, qShape].map { Tensor.randn($0, generator: g).to(.float64) }
        let expected = reference.run(
            q: inputs[0].doubleScalars, k: inputs[1].doubleScalars, v: inputs[2].doubleScalars,
            gradOut: inputs[3].doubleScalars)
        for (dtype, tolerance) in [(DType.float64, 1e-10), (.float32, 2e-5)] {
            let x = inputs.map { $0.to(dtype).detached() }
            for t in x[0..<3] { t.requiresGrad = true }
            let out = Tensor.attention(x[0], x[1], x[2], scale: reference.scale, mask: mask)
            (out * x[3]).sum().backward()
            let results = [out, x[0].grad!, x[1].grad!, x[2].grad!]
            for (name, (actual, wanted)) in zip(["output", "grad q", "grad k", "grad v"], zip(results, expected)) {
                expectClose(
                    actual.doubleScalars, wanted, rtol: tolerance, atol: tolerance, "\(dtype) \(name)", file: file,
                    line: line)
            }
        }
    }

    // MARK: Rows without visible keys

    func testQueryRowWithoutKeysGivesZeros() {
        let g = RandomGenerator(seed: 11)
        let q = Tensor.randn([2, 5, 2, 4], generator: g), k = Tensor.randn([2, 6, 2, 4], generator: g)
        let v = Tensor.randn([2, 6, 2, 4], generator: g)
        for t in [q, k, v] { t.requiresGrad = true }
        // Batch 1 has every key padded; in both batches, query segment 1 (queries 3, 4) has an empty key segment.
        var padding = [[Bool]](repeating: [Bool](repeating: true, count: 6), count: 2)
        padding[1] = [Bool](repeating: false, count: 6)
        let mask = AttentionMask(keyPadding: padding, querySegments: [0, 3, 5], keySegments: [0, 6, 6])
        let out = Tensor.attention(q, k, v, mask: mask)
        out.sum().backward()
        let o = out.scalars, gq = q.grad!.scalars, gk = k.grad!.scalars, gv = v.grad!.scalars
        let rowSize = 2 * 4
        for b in 0..<2 {
            for i in 0..<5 {
                let row = (b * 5 + i) * rowSize..<(b * 5 + i + 1) * rowSize
                let blind = b == 1 || i >= 3
                XCTAssertEqual(o[row].allSatisfy { $0 == 0 }, blind, "output row b\(b) i\(i)")
                XCTAssertEqual(gq[row].allSatisfy { $0 == 0 }, blind, "grad q row b\(b) i\(i)")
            }
        }
        XCTAssertTrue(o.allSatisfy { $0.isFinite } && gq.allSatisfy { $0.isFinite })
        XCTAssertTrue(gk[(6 * rowSize)...].allSatisfy { $0 == 0 } && gv[(6 * rowSize)...].allSatisfy { $0 == 0 })
        XCTAssertFalse(gv[..<(6 * rowSize)].allSatisfy { $0 == 0 })
    }
}

/// softmax(scale·Q·Kᵀ with disallowed pairs at −∞)·V and its gradients, written out with explicit loops over the full
/// score matrix in Float64, (B, L, Nh, Dh) layout. Rows with no allowed key give zeros.
struct NaiveAttention {
    let batch: Int, queryCount: Int, keyCount: Int, heads: Int, headDim: Int
    let scale: Double
    let allowed: (_ batch: Int, _ query: Int, _ key: Int) -> Bool

    /// Output, grad q, grad k, grad v, flattened.
    func run(q: [Double], k: [Double], v: [Double], gradOut: [Double]) -> [[Double]] {
        var out = [Double](repeating: 0, count: q.count), gq = out
        var gk = [Double](repeating: 0, count: k.count), gv = gk
        let dh = headDim
        for b in 0..<batch {
            for h in 0..<heads {
                func qi(_ i: Int) -> Int { ((b * queryCount + i) * heads + h) * dh }
                func kj(_ j: Int) -> Int { ((b * keyCount + j) * heads + h) * dh }
                for i in 0..<queryCount {
                    var scores = [Double](repeating: -.infinity, count: keyCount)
                    for j in 0..<keyCount where allowed(b, i, j) {
                        scores[j] = scale * (0..<dh).reduce(0) { $0 + q[qi(i) + $1] * k[kj(j) + $1] }
                    }
                    let m = scores.max()!
                    if m == -.infinity { continue }
                    let e = scores.map { Foundation.exp($0 - m) }
                    let total = e.reduce(0, +)
                    let p = e.map { $0 / total }
                    let dp = (0..<keyCount).map { j in (0..<dh).reduce(0) { $0 + gradOut[qi(i) + $1] * v[kj(j) + $1] } }
                    let rowDot = zip(p, dp).reduce(0) { $0 + $1.0 * $1.1 }
                    for j in 0..<keyCount where p[j] != 0 {
                        let ds = p[j] * (dp[j] - rowDot)
                        for d in 0..<dh {
                            out[qi(i) + d] += p[j] * v[kj(j) + d]
                            gv[kj(j) + d] += p[j] * gradOut[qi(i) + d]
                            gq[qi(i) + d] += scale * ds * k[kj(j) + d]
                            gk[kj(j) + d] += scale * ds * q[qi(i) + d]
                        }
                    }
                }
            }
        }
        return [out, gq, gk, gv]
    }
}
