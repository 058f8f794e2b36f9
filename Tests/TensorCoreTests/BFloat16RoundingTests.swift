import CKernels
import TensorCore
import XCTest

/// The vectorised rounding of oneDNN's operands (`goku_round_bf16`, `goku_round_bf16_transposed`) gives exactly the
/// bits of the scalar definition, `BFloat16.bits`, for every kind of value and at every tail length.
final class BFloat16RoundingTests: XCTestCase {
    /// Special values (ties to even both ways, signed zeros, denormals, infinities, quiet and signalling NaNs, the
    /// largest finite value that rounds to infinity) and random ones of every magnitude.
    private func values(_ count: Int, seed: UInt64) -> [Float] {
        let special: [UInt32] = [
            0x3f80_8000, 0x3f81_8000, 0x3f80_7fff, 0x3f80_8001, 0x0000_0000, 0x8000_0000, 0x0000_0001, 0x807f_ffff,
            0x7f80_0000, 0xff80_0000, 0x7fc0_0000, 0x7f80_0001, 0xffa0_0000, 0x7f7f_ffff, 0x7f7f_7fff, 0x4049_0fdb,
        ]
        var state = seed
        return (0..<count).map { i in
            if i < special.count { return Float(bitPattern: special[i]) }
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return Float(bitPattern: UInt32(truncatingIfNeeded: state >> 32))
        }
    }

    func testRoundingMatchesTheScalarDefinitionAtEveryLength() {
        for count in [0, 1, 15, 16, 17, 31, 33, 100, 1000] {
            let x = values(count, seed: UInt64(count))
            var y = [UInt16](repeating: 0xdead, count: count + 1)
            goku_round_bf16(x, &y, count)
            for i in 0..<count {
                XCTAssertEqual(y[i], BFloat16.bits(from: x[i]), "count \(count), element \(i) (bits \(x[i].bitPattern))")
            }
            XCTAssertEqual(y[count], 0xdead, "wrote past the end at count \(count)")
        }
    }

    func testTransposedRoundingMatchesTheScalarDefinition() {
        for (rows, cols, ld) in [(1, 1, 1), (16, 16, 16), (37, 70, 70), (70, 37, 40), (5, 33, 41), (33, 5, 5)] {
            let x = values(rows * ld, seed: UInt64(rows * 1000 + cols))
            var y = [UInt16](repeating: 0xdead, count: rows * cols + 1)
            goku_round_bf16_transposed(x, Int32(rows), Int32(cols), Int32(ld), &y)
            for r in 0..<rows {
                for c in 0..<cols {
                    XCTAssertEqual(y[c * rows + r], BFloat16.bits(from: x[r * ld + c]), "\(rows)×\(cols) ld \(ld) at (\(r), \(c))")
                }
            }
            XCTAssertEqual(y[rows * cols], 0xdead, "wrote past the end for \(rows)×\(cols)")
        }
    }
}
