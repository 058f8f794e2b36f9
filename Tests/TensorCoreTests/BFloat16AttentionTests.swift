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
        checkTileProduct(
            goku_bf16_product, available: available, shapes: [(13, 37, 9), (8, 32, 2), (1, 1, 1), (40, 70, 72), (128, 256, 64)],
            seed: 11, rtol: 1e-5, atol: 1e-4, operand: rounded)
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
