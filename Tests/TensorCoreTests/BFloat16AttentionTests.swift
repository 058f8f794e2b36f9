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

    /// The path that packs Q, K, V and dO once per (batch, head, segment) and writes P and dS as bfloat16 pairs gives
    /// exactly the numbers of the path that packs inside every tile product: same roundings, same products in the same
    /// order, same row sums. Shapes cover several query blocks and key tiles, odd segment
    /// lengths (a last token pair with no partner), odd head sizes, padded keys, rows that see no key, one head (the
    /// forward cut into chunks of query blocks) and gradients wanted for only some inputs.
    func testPackedOperandsMatchPerTilePath() throws {
        try XCTSkipUnless(available, "no AVX-512 BF16 on this CPU: neither bf16 path runs")
        struct Case {
            let name: String, q: [Int], k: [Int], mask: AttentionMask, need: [Bool]
        }
        let cases = [
            Case(name: "self", q: [1, 700, 2, 72], k: [1, 700, 2, 72], mask: .none, need: [true, true, true]),
            Case(
                name: "packed odd", q: [1, 531, 1, 9], k: [1, 531, 1, 9],
                mask: AttentionMask(segments: [0, 129, 130, 387, 531]), need: [true, true, true]),
            Case(
                name: "padded cross", q: [2, 300, 3, 5], k: [2, 301, 3, 5],
                mask: AttentionMask(keyLengths: [301, 0], keyCount: 301), need: [true, true, true]),
            Case(
                name: "empty key segment", q: [1, 300, 2, 24], k: [1, 90, 2, 24],
                mask: AttentionMask(querySegments: [0, 140, 170, 300], keySegments: [0, 40, 40, 90]),
                need: [true, true, true]),
            Case(name: "values only", q: [1, 257, 2, 16], k: [1, 513, 2, 16], mask: .none, need: [false, false, true]),
            Case(name: "queries only", q: [1, 257, 2, 16], k: [1, 513, 2, 16], mask: .none, need: [true, false, false]),
            Case(name: "keys only", q: [1, 257, 2, 16], k: [1, 513, 2, 16], mask: .none, need: [false, true, false]),
        ]
        let saved = AttentionTile.packsBFloat16Operands
        defer { AttentionTile.packsBFloat16Operands = saved }
        for (n, c) in cases.enumerated() {
            let g = RandomGenerator(seed: 40 + UInt64(n))
            let inputs = [Tensor.randn(c.q, generator: g), Tensor.randn(c.k, generator: g), Tensor.randn(c.k, generator: g)]
            let upstream = Tensor.randn(c.q, generator: g)
            func run(packed: Bool) -> [Tensor?] {
                AttentionTile.packsBFloat16Operands = packed
                let leaves = inputs.map { $0.detached() }
                for (leaf, need) in zip(leaves, c.need) { leaf.requiresGrad = need }
                let out = MixedPrecision.with(.bfloat16) {
                    Tensor.attention(leaves[0], leaves[1], leaves[2], mask: c.mask)
                }
                out.backward(upstream)
                return [out] + leaves.map(\.grad)
            }
            let packed = run(packed: true), perTile = run(packed: false)
            for (i, part) in ["output", "grad q", "grad k", "grad v"].enumerated() {
                XCTAssertEqual(packed[i] == nil, perTile[i] == nil, "\(c.name) \(part)")
                guard let a = packed[i], let b = perTile[i] else { continue }
                XCTAssertGreaterThan(b.abs().max().item(), 0, "\(c.name) \(part) is all zeros")
                XCTAssertEqual(a.scalars, b.scalars, "\(c.name) \(part): packed vs per-tile")
            }
            if c.name == "padded cross" {
                // The second sample sees no key: zeros out, zeros back, on both paths.
                XCTAssertEqual(packed[0]!.slice(axis: 0, 1, 2).abs().max().item(), 0)
            }
            if c.name == "empty key segment" {
                // Queries 140..<170 have no keys: their rows are zeros (not left unwritten).
                XCTAssertEqual(packed[0]!.slice(axis: 1, 140, 170).abs().max().item(), 0)
            }
        }
    }
}
