import Foundation
import TensorCore
import TestSupport
import XCTest

/// A Float64 leaf of `shape` with N(0, 1) values (seeded) mapped through `transform`.
func gradientLeaf(_ shape: [Int], seed: UInt64, _ transform: (Double) -> Double = { $0 }) -> Tensor {
    let base = Tensor.randn(shape, generator: RandomGenerator(seed: seed)).doubleScalars
    return Tensor(shape: shape, scalars: base.map(transform), requiresGrad: true)
}

/// Moves a value at least `margin` away from zero, keeping its sign (for ops with a kink or pole at 0).
func awayFromZero(_ margin: Double) -> (Double) -> Double {
    { $0 >= 0 ? $0 + margin : $0 - margin }
}

final class ElementwiseTests: XCTestCase {
    /// Pairs of shapes that broadcast in different ways (trailing, inner, both sides, rank 0).
    let broadcastCases: [([Int], [Int])] = [
        ([2, 3, 4], [2, 3, 4]), ([2, 3, 4], [3, 1]), ([2, 3, 4], [4]), ([3, 1], [2, 3, 4]), ([2, 1, 4], [3, 1]),
        ([2, 3, 4], []),
    ]

    // MARK: Binary ops

    func testBinaryGradients() {
        let ops: [(BinaryOp, (Double) -> Double, (Double) -> Double)] = [
            (.add, { $0 }, { $0 }), (.sub, { $0 }, { $0 }), (.mul, { $0 }, { $0 }),
            (.div, { $0 }, awayFromZero(0.5)), (.maximum, { $0 }, { $0 }), (.minimum, { $0 }, { $0 }),
            (.pow, { Swift.abs($0) + 0.5 }, { 0.7 * $0 }),
        ]
        for (op, ta, tb) in ops {
            for (k, (sa, sb)) in broadcastCases.enumerated() {
                let a = gradientLeaf(sa, seed: UInt64(10 + k), ta), b = gradientLeaf(sb, seed: UInt64(50 + k), tb)
                GradientCheck.check([a, b], "\(op.rawValue) \(sa)·\(sb)") { Tensor.binary(op, $0[0], $0[1]) }
            }
        }
    }

    func testBinaryForwardMatchesScalarLoops() {
        let references: [(BinaryOp, (Double, Double) -> Double)] = [
            (.add, +), (.sub, -), (.mul, *), (.div, /), (.maximum, { Swift.max($0, $1) }),
            (.minimum, { Swift.min($0, $1) }), (.pow, { Foundation.pow($0, $1) }),
        ]
        for (sa, sb) in broadcastCases {
            let a = Tensor.rand(sa, low: 0.5, high: 2, generator: RandomGenerator(seed: 3))
            let b = Tensor.rand(sb, low: -2, high: 2, generator: RandomGenerator(seed: 4))
            let shape = Shape.broadcast(sa, sb, op: "test")
            for (op, f) in references {
                let expected = Tensor(
                    shape: shape,
                    scalars: broadcastIndices(shape, sa, sb).map { f(a.doubleScalars[$0.0], b.doubleScalars[$0.1]) })
                expectClose(Tensor.binary(op, a, b), expected, rtol: 1e-6, atol: 1e-6, "\(op.rawValue) \(sa)·\(sb)")
            }
        }
    }

    /// For each element of `shape` in order, the flat indices it reads in operands of shapes `sa` and `sb`.
    private func broadcastIndices(_ shape: [Int], _ sa: [Int], _ sb: [Int]) -> [(Int, Int)] {
        func flat(_ index: [Int], _ s: [Int]) -> Int {
            let aligned = Array(index.suffix(s.count))
            var offset = 0
            for (i, d) in s.enumerated() { offset = offset * d + (d == 1 ? 0 : aligned[i]) }
            return offset
        }
        let st = Shape.strides(shape)
        return (0..<shape.reduce(1, *)).map { e in
            let index = st.enumerated().map { (i, s) in (e / s) % shape[i] }
            return (flat(index, sa), flat(index, sb))
        }
    }

    func testMaximumTiesSendGradientToFirstOperand() {
        let a = Tensor(shape: [3], scalars: [1, 2, 5] as [Double], requiresGrad: true)
        let b = Tensor(shape: [3], scalars: [1, 3, 4] as [Double], requiresGrad: true)
        a.maximum(b).sum().backward()
        XCTAssertEqual(a.grad!.doubleScalars, [1, 0, 1])
        XCTAssertEqual(b.grad!.doubleScalars, [0, 1, 0])
        a.grad = nil
        b.grad = nil
        a.minimum(b).sum().backward()
        XCTAssertEqual(a.grad!.doubleScalars, [1, 1, 0])
        XCTAssertEqual(b.grad!.doubleScalars, [0, 0, 1])
    }

    func testTensorUsedTwiceAccumulatesGradients() {
        GradientCheck.check(GradientCheck.inputs([[3, 4]]), "x·x + x") { $0[0] * $0[0] + $0[0] }
        GradientCheck.check(GradientCheck.inputs([[3, 4]], seed: 2), "shared intermediate") { xs in
            let h = xs[0].tanh()
            return h * h.sigmoid() + h.sum(axis: 1, keepDims: true)
        }
        // Two backward passes add up in the leaf's grad.
        let x = Tensor(shape: [2], scalars: [1, 2] as [Double], requiresGrad: true)
        (x * x).sum().backward()
        (x * 3.0).sum().backward()
        XCTAssertEqual(x.grad!.doubleScalars, [5, 7])
    }

    func testScalarOperators() {
        let x = Tensor(shape: [2], scalars: [2, 4] as [Float])
        XCTAssertEqual((x + 1).scalars, [3, 5])
        XCTAssertEqual((1 - x).scalars, [-1, -3])
        XCTAssertEqual((x * 3).scalars, [6, 12])
        XCTAssertEqual((8 / x).scalars, [4, 2])
        XCTAssertEqual((x / 2).scalars, [1, 2])
        XCTAssertEqual(x.pow(3).scalars, [8, 64])
        XCTAssertEqual((-x).scalars, [-2, -4])
    }

    // MARK: Unary ops

    /// Each unary op, a Float64 reference, and a map of N(0, 1) inputs into its smooth domain.
    let unaryCases: [(UnaryOp, (Double) -> Double, (Double) -> Double)] = [
        (.neg, { -$0 }, { $0 }),
        (.exp, { Foundation.exp($0) }, { $0 }),
        (.log, { Foundation.log($0) }, { Swift.abs($0) + 0.3 }),
        (.sqrt, { $0.squareRoot() }, { Swift.abs($0) + 0.3 }),
        (.rsqrt, { 1 / $0.squareRoot() }, { Swift.abs($0) + 0.3 }),
        (.tanh, { Foundation.tanh($0) }, { $0 }),
        (.sigmoid, { 1 / (1 + Foundation.exp(-$0)) }, { $0 }),
        (.silu, { $0 / (1 + Foundation.exp(-$0)) }, { $0 }),
        (.geluExact, { 0.5 * $0 * (1 + Foundation.erf($0 / 2.0.squareRoot())) }, { $0 }),
        (.geluTanh, { 0.5 * $0 * (1 + Foundation.tanh((2 / Double.pi).squareRoot() * ($0 + 0.044715 * $0 * $0 * $0))) }, { $0 }),
        (.relu, { Swift.max($0, 0) }, awayFromZero(0.1)),
        (.abs, { Swift.abs($0) }, awayFromZero(0.1)),
        (.square, { $0 * $0 }, { $0 }),
        (.sin, { Foundation.sin($0) }, { 2 * $0 }),
        (.cos, { Foundation.cos($0) }, { 2 * $0 }),
    ]

    func testUnaryGradients() {
        for (k, (op, _, domain)) in unaryCases.enumerated() {
            GradientCheck.check([gradientLeaf([3, 5], seed: UInt64(100 + k), domain)], op.rawValue) { $0[0].unary(op) }
        }
    }

    func testUnaryForwardMatchesFoundation() {
        for (k, (op, reference, domain)) in unaryCases.enumerated() {
            // 37 elements: the vector body and a tail; both Float32 and Float64.
            let x64 = gradientLeaf([37], seed: UInt64(200 + k), domain).detached()
            let expected = x64.doubleScalars.map(reference)
            expectClose(x64.unary(op).doubleScalars, expected, rtol: 1e-14, atol: 1e-15, "\(op.rawValue) float64")
            expectClose(x64.to(.float32).unary(op).doubleScalars, expected, rtol: 2e-6, atol: 1e-6, "\(op.rawValue) float32")
        }
    }

    func testActivationsMatchPyTorch() throws {
        let f = try Fixture.load("elementwise", target: "TensorCoreTests")
        let ops: [(String, UnaryOp)] = [
            ("gelu_exact", .geluExact), ("gelu_tanh", .geluTanh), ("silu", .silu), ("sigmoid", .sigmoid), ("tanh", .tanh),
        ]
        for (name, op) in ops {
            let x = f.tensor("x").detached()
            x.requiresGrad = true
            let y = x.unary(op)
            expectClose(y, f.tensor(name), rtol: 1e-5, atol: 1e-5, name)
            y.backward()  // grad_output = ones
            expectClose(x.grad!, f.tensor("d_\(name)"), rtol: 1e-5, atol: 1e-5, "d_\(name)")
        }
        XCTAssertEqual(
            f.tensor("x").gelu(approximateTanh: true).scalars, f.tensor("x").unary(.geluTanh).scalars, "gelu(approximateTanh:)")
    }

    // MARK: Clamp and conversion

    func testClamp() {
        let x = Tensor(shape: [5], scalars: [-2, -0.5, 0, 0.7, 3] as [Float])
        XCTAssertEqual(x.clamp(min: -1, max: 1).scalars, [-1, -0.5, 0, 0.7, 1])
        XCTAssertEqual(x.clamp(min: 0).scalars, [0, 0, 0, 0.7, 3])
        XCTAssertEqual(x.clamp(max: 0).scalars, [-2, -0.5, 0, 0, 0])
        // Values clear of the bounds, so the finite differences do not straddle a kink.
        let leaf = gradientLeaf([4, 6], seed: 300) { Swift.abs(Swift.abs($0) - 0.6) < 0.05 ? $0 + 0.1 : $0 }
        GradientCheck.check([leaf], "clamp") { $0[0].clamp(min: -0.6, max: 0.6) }
        let clipped = leaf.doubleScalars.map { Swift.abs($0) > 0.6 ? 0.0 : 1.0 }
        leaf.grad = nil
        leaf.clamp(min: -0.6, max: 0.6).sum().backward()
        XCTAssertEqual(leaf.grad!.doubleScalars, clipped)
    }

    func testConversionRoundTrip() {
        let x = Tensor.randn([3, 4], generator: RandomGenerator(seed: 301))
        XCTAssertEqual(x.to(.float64).to(.float32).scalars, x.scalars)
        XCTAssertEqual(x.to(.bfloat16).scalars, x.scalars.map { BFloat16.float(fromBits: BFloat16.bits(from: $0)) })
        XCTAssertEqual(x.to(.float16).scalars, x.scalars.map { Float16Bits.float(fromBits: Float16Bits.bits(from: $0)) })
        XCTAssertEqual(x.to(.bfloat16).to(.float64).dtype, .float64)
        // Central differences are exact for a quadratic, so a large step hides the float32 rounding.
        GradientCheck.check([gradientLeaf([2, 3], seed: 302)], rtol: 1e-5, atol: 1e-5, eps: 1e-2, "to(.float32)") {
            $0[0].to(.float32).square().to(.float64)
        }
    }
}

final class BitConversionTests: XCTestCase {
    private func bf16(_ pattern: UInt32) -> UInt16 { BFloat16.bits(from: Float(bitPattern: pattern)) }

    func testBFloat16RoundsToNearestEven() {
        XCTAssertEqual(BFloat16.bits(from: 1), 0x3f80)
        XCTAssertEqual(BFloat16.bits(from: -2), 0xc000)
        XCTAssertEqual(bf16(0x3f80_7fff), 0x3f80, "below halfway rounds down")
        XCTAssertEqual(bf16(0x3f80_8001), 0x3f81, "above halfway rounds up")
        XCTAssertEqual(bf16(0x3f80_8000), 0x3f80, "tie to even (down)")
        XCTAssertEqual(bf16(0x3f81_8000), 0x3f82, "tie to even (up)")
        XCTAssertEqual(bf16(0xbf80_8000), 0xbf80, "negative tie to even (down)")
        XCTAssertEqual(bf16(0xbf81_8000), 0xbf82, "negative tie to even (up)")
        XCTAssertEqual(bf16(0x3fff_8000), 0x4000, "rounding carries into the exponent")
        XCTAssertEqual(bf16(0x0000_8000), 0x0000, "subnormal tie to even")
    }

    func testBFloat16SpecialValues() {
        XCTAssertEqual(BFloat16.bits(from: .infinity), 0x7f80)
        XCTAssertEqual(BFloat16.bits(from: -.infinity), 0xff80)
        XCTAssertEqual(BFloat16.bits(from: -0.0), 0x8000)
        XCTAssertEqual(bf16(0x7f7f_ffff), 0x7f80, "largest float32 rounds to infinity")
        XCTAssertEqual(bf16(0x7f7f_7fff), 0x7f7f, "below the halfway point stays the largest finite bfloat16")
        for nan: UInt32 in [0x7fc0_0000, 0x7f80_0001, 0xff80_0001, 0x7fff_ffff, 0xffff_ffff] {
            XCTAssertTrue(BFloat16.float(fromBits: bf16(nan)).isNaN, String(nan, radix: 16))
        }
        XCTAssertEqual(BFloat16.float(fromBits: 0x3f81), Float(bitPattern: 0x3f81_0000))
    }

    func testFloat16RoundTripsEveryBitPattern() {
        for h in 0...UInt16.max {
            let f = Float16Bits.float(fromBits: h)
            if f.isNaN {
                XCTAssertTrue(Float16Bits.float(fromBits: Float16Bits.bits(from: f)).isNaN)
            } else if Float16Bits.bits(from: f) != h {
                XCTFail("binary16 \(String(h, radix: 16)) → \(f) → \(String(Float16Bits.bits(from: f), radix: 16))")
            }
        }
    }

    func testFloat16Values() {
        XCTAssertEqual(Float16Bits.float(fromBits: 0x0001), 0x1p-24, "smallest subnormal")
        XCTAssertEqual(Float16Bits.float(fromBits: 0x03ff), 1023 * 0x1p-24, "largest subnormal")
        XCTAssertEqual(Float16Bits.float(fromBits: 0x0400), 0x1p-14, "smallest normal")
        XCTAssertEqual(Float16Bits.float(fromBits: 0x7bff), 65504)
        XCTAssertEqual(Float16Bits.float(fromBits: 0xc000), -2)
        XCTAssertEqual(Float16Bits.bits(from: 65520), 0x7c00, "tie above the largest finite goes to infinity")
        XCTAssertEqual(Float16Bits.bits(from: 65519), 0x7bff)
        XCTAssertEqual(Float16Bits.bits(from: 1e6), 0x7c00)
        XCTAssertEqual(Float16Bits.bits(from: 0x1p-25), 0x0000, "tie between 0 and the smallest subnormal goes to 0")
        XCTAssertEqual(Float16Bits.bits(from: 0x1.8p-25), 0x0001)
        XCTAssertEqual(Float16Bits.bits(from: 3 * 0x1p-25), 0x0002, "subnormal tie to even")
        XCTAssertEqual(Float16Bits.bits(from: 0x1p-26), 0x0000)
        XCTAssertEqual(Float16Bits.bits(from: -0x1p-24), 0x8001)
        XCTAssertEqual(Float16Bits.bits(from: 1 + 0x1p-11), 0x3c00, "normal tie to even (down)")
        XCTAssertEqual(Float16Bits.bits(from: 1 + 3 * 0x1p-11), 0x3c02, "normal tie to even (up)")
        XCTAssertEqual(Float16Bits.bits(from: 2047 * 0x1p-25), 0x0400, "largest subnormal rounds up into the normals")
    }
}

final class RandomTests: XCTestCase {
    func testRandnIsIndependentOfThreadCount() {
        let saved = Parallel.threadCount
        defer { Parallel.threadCount = saved }
        Parallel.threadCount = 1
        let one = Tensor.randn([100_003], generator: RandomGenerator(seed: 42)).scalars
        Parallel.threadCount = 2
        let two = Tensor.randn([100_003], generator: RandomGenerator(seed: 42)).scalars
        XCTAssertEqual(one, two)
        let uniformTwo = Tensor.rand([50_001], generator: RandomGenerator(seed: 43)).scalars
        Parallel.threadCount = 1
        XCTAssertEqual(Tensor.rand([50_001], generator: RandomGenerator(seed: 43)).scalars, uniformTwo)
        XCTAssertNotEqual(Tensor.randn([16], generator: RandomGenerator(seed: 44)).scalars, Array(one.prefix(16)))
    }

    func testNormalMoments() {
        let x = Tensor.randn([100_000], generator: RandomGenerator(seed: 45)).doubleScalars
        let mean = x.reduce(0, +) / Double(x.count)
        let std = (x.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(x.count)).squareRoot()
        XCTAssertEqual(mean, 0, accuracy: 0.01)
        XCTAssertEqual(std, 1, accuracy: 0.01)
        XCTAssertTrue(x.allSatisfy { $0.isFinite })
    }

    func testUniformRange() {
        let x = Tensor.rand([100_000], generator: RandomGenerator(seed: 46)).scalars
        XCTAssertTrue(x.allSatisfy { $0 >= 0 && $0 < 1 })
        XCTAssertEqual(Double(x.reduce(0, +)) / Double(x.count), 0.5, accuracy: 0.01)
    }

    func testGeneratorAdvancesAndRestores() {
        let g = RandomGenerator(seed: 47)
        let first = Tensor.randn([10], generator: g).scalars
        let state = g.state
        let second = Tensor.randn([10], generator: g).scalars
        XCTAssertNotEqual(first, second)
        let resumed = RandomGenerator(seed: state.seed, offset: state.offset)
        XCTAssertEqual(Tensor.randn([10], generator: resumed).scalars, second)
    }
}
