import Foundation
import TensorCore
import TestSupport
import XCTest

/// A C tile product with gemm's conventions (`goku_f32_product`, `goku_bf16_product`): returns false, writing
/// nothing, when the CPU lacks its instructions.
typealias TileProduct = (
    _ transA: Bool, _ transB: Bool, _ m: Int32, _ n: Int32, _ k: Int32, _ alpha: Float, _ a: UnsafePointer<Float>?,
    _ lda: Int32, _ b: UnsafePointer<Float>?, _ ldb: Int32, _ accumulate: Bool, _ c: UnsafeMutablePointer<Float>?,
    _ ldc: Int32
) -> Bool

/// Runs `product` over `shapes` × every transposition × accumulation, with alpha 0.75, against Float64 products of
/// `operand(a)` and `operand(b)`. Where the CPU lacks the instructions (`available` false) the product must refuse
/// and leave C untouched.
func checkTileProduct(
    _ product: TileProduct, available: Bool, shapes: [(Int, Int, Int)], seed: UInt64, rtol: Double, atol: Double,
    operand: (Tensor) -> Tensor = { $0.to(.float64) }
) {
    let g = RandomGenerator(seed: seed)
    for (m, n, k) in shapes {
        for (ta, tb) in [(false, false), (true, false), (false, true), (true, true)] {
            let a = Tensor.randn(ta ? [k, m] : [m, k], generator: g)
            let b = Tensor.randn(tb ? [n, k] : [k, n], generator: g)
            let c0 = Tensor.randn([m, n], generator: g)
            for accumulate in [false, true] {
                var c = c0.scalars
                let ok = a.scalars.withUnsafeBufferPointer { pa in
                    b.scalars.withUnsafeBufferPointer { pb in
                        c.withUnsafeMutableBufferPointer { pc in
                            product(
                                ta, tb, Int32(m), Int32(n), Int32(k), 0.75, pa.baseAddress, Int32(ta ? m : k),
                                pb.baseAddress, Int32(tb ? k : n), accumulate, pc.baseAddress, Int32(n))
                        }
                    }
                }
                guard available else {
                    XCTAssertFalse(ok, "without the instructions the product must refuse")
                    XCTAssertEqual(c, c0.scalars, "and leave C untouched")
                    continue
                }
                XCTAssertTrue(ok)
                var reference = Tensor.matmul(operand(a), operand(b), transposeA: ta, transposeB: tb) * 0.75
                if accumulate { reference = reference + c0.to(.float64) }
                expectClose(
                    Tensor(shape: [m, n], scalars: c).to(.float64), reference, rtol: rtol, atol: atol,
                    "m \(m) n \(n) k \(k) transA \(ta) transB \(tb) accumulate \(accumulate)")
            }
        }
    }
}
