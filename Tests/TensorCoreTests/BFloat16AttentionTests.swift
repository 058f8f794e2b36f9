import CKernels
import Foundation
import TensorCore
import TestSupport
import XCTest

/// The bfloat16 tile products of the fused attention (AVX-512 BF16) against Float64 products of the rounded operands,
/// and bfloat16 attention (self, key padding, packed segments, cross) against Float32 attention.
final class BFloat16AttentionTests: XCTestCase {
    /// Whether this CPU has AVX-512 BF16. Without it the products refuse (return false) and attention in a bfloat16
    /// scope runs the Float32 kernel: the tests then check exactly that fallback.
    private let available = goku_bf16_dot_available()

    private func rounded(_ t: Tensor) -> Tensor { t.to(.bfloat16).to(.float64) }

    /// Every transposition, sizes that are not multiples of the kernel's blocks (odd k included), alpha, and
    /// accumulation into existing values.
    func testProductMatchesFloat64OfRoundedOperands() {
        let g = RandomGenerator(seed: 11)
        for (m, n, k) in [(13, 37, 9), (8, 32, 2), (1, 1, 1), (40, 70, 72), (128, 256, 64)] {
            for (ta, tb) in [(false, false), (true, false), (false, true), (true, true)] {
                let a = Tensor.randn(ta ? [k, m] : [m, k], generator: g)
                let b = Tensor.randn(tb ? [n, k] : [k, n], generator: g)
                let c0 = Tensor.randn([m, n], generator: g)
                for accumulate in [false, true] {
                    var c = c0.scalars
                    let ok = a.scalars.withUnsafeBufferPointer { pa in
                        b.scalars.withUnsafeBufferPointer { pb in
                            c.withUnsafeMutableBufferPointer { pc in
                                goku_bf16_product(
                                    ta, tb, Int32(m), Int32(n), Int32(k), 0.75, pa.baseAddress, Int32(ta ? m : k),
                                    pb.baseAddress, Int32(tb ? k : n), accumulate, pc.baseAddress, Int32(n))
                            }
                        }
                    }
                    guard available else {
                        XCTAssertFalse(ok, "no AVX-512 BF16: the product must refuse")
                        XCTAssertEqual(c, c0.scalars, "and leave C untouched")
                        continue
                    }
                    XCTAssertTrue(ok)
                    var reference = Tensor.matmul(rounded(a), rounded(b), transposeA: ta, transposeB: tb) * 0.75
                    if accumulate { reference = reference + c0.to(.float64) }
                    expectClose(
                        Tensor(shape: [m, n], scalars: c).to(.float64), reference, rtol: 1e-5, atol: 1e-4,
                        "m \(m) n \(n) k \(k) transA \(ta) transB \(tb) accumulate \(accumulate)")
                }
            }
        }
    }

    /// Forward and backward of bfloat16 attention within bfloat16 tolerance of Float32, and not equal to it.
    private func check(_ name: String, q: [Int], k: [Int], mask: AttentionMask = .none, seed: UInt64) {
        let g = RandomGenerator(seed: seed)
        let (q0, k0, v0) = (Tensor.randn(q, generator: g), Tensor.randn(k, generator: g), Tensor.randn(k, generator: g))
        let upstream = Tensor.randn(q, generator: g)
        func run(_ bf16: Bool) -> [Tensor] {
            let (qv, kv, vv) = (q0.detached(), k0.detached(), v0.detached())
            for t in [qv, kv, vv] { t.requiresGrad = true }
            let out = MixedPrecision.with(bf16 ? .bfloat16 : .float32) { Tensor.attention(qv, kv, vv, mask: mask) }
            out.backward(upstream)
            return [out, qv.grad!, kv.grad!, vv.grad!]
        }
        let mixed = run(true), exact = run(false)
        for (i, part) in ["output", "grad q", "grad k", "grad v"].enumerated() {
            guard available else {
                XCTAssertEqual(mixed[i].scalars, exact[i].scalars, "\(name) \(part): Float32 fallback")
                continue
            }
            let scale = Double(exact[i].abs().max().item())
            // Products of ~Dh or ~Lk terms with operands rounded to 8 significant bits: errors of a few 2⁻⁹ relative.
            expectClose(mixed[i], exact[i], rtol: 0, atol: 0.03 * scale, "\(name) \(part): bf16 vs fp32")
            XCTAssertGreaterThan(
                Double((mixed[i] - exact[i]).abs().max().item()), 1e-6 * scale, "\(name) \(part) is not bf16")
        }
    }

    func testSelfAttention() { check("self", q: [2, 150, 3, 72], k: [2, 150, 3, 72], seed: 1) }

    func testKeyPadding() {
        check(
            "key padding", q: [2, 40, 2, 64], k: [2, 300, 2, 64], mask: AttentionMask(keyLengths: [300, 77], keyCount: 300),
            seed: 2)
    }

    func testPackedSegments() {
        check("packed", q: [1, 200, 2, 32], k: [1, 200, 2, 32], mask: AttentionMask(segments: [0, 80, 96, 200]), seed: 3)
    }

    func testCrossAttention() { check("cross", q: [2, 130, 4, 16], k: [2, 77, 4, 16], seed: 4) }
}
