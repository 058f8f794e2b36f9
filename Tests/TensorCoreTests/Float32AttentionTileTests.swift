import CKernels
import Foundation
import TensorCore
import TestSupport
import XCTest

/// The AVX-512 Float32 tile products of the fused attention (`goku_f32_product`) against Float64 products, and
/// attention forward and backward with them against the Swift panels they replace.
final class Float32AttentionTileTests: XCTestCase {
    /// Whether this CPU has AVX-512 F and BW; without them the product refuses and the Swift panels run.
    private let available = goku_avx512_available()

    /// Every transposition, sizes around the 12 × 32 micro-kernel's edges, alpha, and accumulation into C.
    func testProductMatchesFloat64() {
        checkTileProduct(
            goku_f32_product, available: available,
            shapes: [(13, 37, 9), (12, 32, 1), (1, 1, 1), (25, 65, 72), (128, 256, 64), (128, 64, 256)], seed: 5,
            rtol: 1e-5, atol: 1e-5)
    }

    /// Self attention with key padding, packed segments and cross attention: the C tiles and the Swift panels agree
    /// to Float32 rounding in the output and all three gradients.
    func testAttentionMatchesSwiftPanels() {
        let g = RandomGenerator(seed: 9)
        let cases: [(String, [Int], [Int], AttentionMask)] = [
            ("self", [2, 150, 3, 72], [2, 150, 3, 72], .none),
            ("cross with key padding", [2, 40, 2, 64], [2, 300, 2, 64],
             AttentionMask(keyPadding: [Array(repeating: true, count: 300), (0..<300).map { $0 < 170 }])),
            ("packed", [1, 290, 2, 64], [1, 290, 2, 64], AttentionMask(segments: [0, 130, 290])),
        ]
        for (name, q, k, mask) in cases {
            let (q0, k0, v0) = (Tensor.randn(q, generator: g), Tensor.randn(k, generator: g), Tensor.randn(k, generator: g))
            let upstream = Tensor.randn(q, generator: g)
            func run(_ vectorTiles: Bool) -> [Tensor] {
                let saved = AttentionTile.usesFloat32Kernel
                AttentionTile.usesFloat32Kernel = vectorTiles
                defer { AttentionTile.usesFloat32Kernel = saved }
                let (qv, kv, vv) = (q0.detached(), k0.detached(), v0.detached())
                for t in [qv, kv, vv] { t.requiresGrad = true }
                let out = Tensor.attention(qv, kv, vv, mask: mask)
                out.backward(upstream)
                return [out, qv.grad!, kv.grad!, vv.grad!]
            }
            let c = run(true), swift = run(false)
            for (i, part) in ["output", "grad q", "grad k", "grad v"].enumerated() {
                let scale = Double(swift[i].abs().max().item())
                expectClose(c[i], swift[i], rtol: 0, atol: 1e-5 * scale, "\(name) \(part)")
            }
            if available {
                // The two paths round differently (exp, summation order): identical results would mean the toggle
                // did not reach the kernels.
                XCTAssertTrue(zip(c, swift).contains { $0.scalars != $1.scalars }, "\(name): the AVX-512 path did not run")
            }
        }
    }
}
