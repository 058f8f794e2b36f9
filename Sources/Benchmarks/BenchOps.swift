import ArgumentParser
import CBLAS
import Foundation
import TensorCore

/// `goku bench ops`: matmul against raw `cblas_sgemm`, attention against the unfused path, elementwise against memcpy.
public struct BenchOps: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "ops", abstract: "Matmul, attention and elementwise kernels beside their references.")

    @OptionGroup var options: BenchOptions

    @Option(help: "Which groups to run: matmul, attention, elementwise (comma separated).")
    var only: String = "matmul,attention,elementwise"

    public init() {}

    public func run() throws {
        options.apply()
        let groups = Set(only.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) })
        print("goku bench ops — \(Parallel.threadCount) threads; BLAS: \(Parallel.blasDescription)")
        if groups.contains("matmul") { benchMatmul() }
        if groups.contains("attention") { OpsAttentionBench(quick: options.quick).run() }
        if groups.contains("elementwise") { benchElementwise() }
    }

    /// Engine matmul vs raw cblas_sgemm on the same buffers.
    func benchMatmul() {
        let shapes: [(String, Int, Int, Int)] =
            options.quick
            ? [("512³", 512, 512, 512), ("up 1024×1152·1152×4608", 1024, 1152, 4608)]
            : [("1024³", 1024, 1024, 1024), ("4096³", 4096, 4096, 4096), ("up 4096×1152·1152×4608", 4096, 1152, 4608)]
        let g = RandomGenerator(seed: 1)
        for (name, m, k, n) in shapes {
            let a = Tensor.randn([m, k], generator: g), b = Tensor.randn([k, n], generator: g)
            let c = Tensor.zeros([m, n])
            let flops = 2.0 * Double(m) * Double(n) * Double(k)
            let engine = BenchHarness.median { _ = Tensor.matmul(a, b) }
            let raw = BenchHarness.median {
                cblas_sgemm(
                    CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(m), Int32(n), Int32(k), 1,
                    a.storage.pointer(as: Float.self), Int32(k), b.storage.pointer(as: Float.self), Int32(n), 0,
                    c.storage.pointer(as: Float.self), Int32(n))
            }
            if MixedPrecision.isAvailable { benchBFloat16(name: name, m: m, k: k, n: n, fp32Raw: raw, generator: g) }
            print(
                "matmul \(name): engine \(BenchHarness.format(engine * 1e3)) ms \(BenchHarness.format(flops / engine / 1e9)) GFLOP/s"
                    + " | raw cblas_sgemm \(BenchHarness.format(raw * 1e3)) ms \(BenchHarness.format(flops / raw / 1e9)) GFLOP/s"
                    + " | ratio \(BenchHarness.format(raw / engine, 3))")
        }
    }

    /// bf16 products through oneDNN on the linear-layer form x·Wᵀ (W a parameter, so its reorder is cached): the
    /// engine's `Tensor.linear` in a `MixedPrecision.bfloat16` scope (rounds x every call) vs raw oneDNN on pre-rounded
    /// x with the same packed W, beside raw OpenBLAS fp32 on the same shape from the same run.
    func benchBFloat16(name: String, m: Int, k: Int, n: Int, fp32Raw: Double, generator g: RandomGenerator) {
        let x = Tensor.randn([m, k], generator: g), w = Tensor.randn([n, k], generator: g)
        w.requiresGrad = true
        let flops = 2.0 * Double(m) * Double(n) * Double(k)
        let engine = BenchHarness.median {
            _ = MixedPrecision.bfloat16 { Autograd.inference { Tensor.linear(x, weight: w, bias: nil) } }
        }
        let xBits = x.to(.bfloat16), c = Tensor.zeros([m, n])
        let raw = BenchHarness.median {
            _ = MixedPrecision.rawProduct(
                m: m, n: n, k: k, aBits: xBits.storage.pointer(as: UInt16.self), weight: w,
                c: c.storage.pointer(as: Float.self))
        }
        print(
            "matmul \(name) bf16 (oneDNN \(MixedPrecision.instructionSet ?? "?")): engine \(BenchHarness.format(engine * 1e3)) ms"
                + " \(BenchHarness.format(flops / engine / 1e9)) GFLOP/s | raw oneDNN \(BenchHarness.format(raw * 1e3)) ms"
                + " \(BenchHarness.format(flops / raw / 1e9)) GFLOP/s | ratio to raw \(BenchHarness.format(raw / engine, 3))"
                + " | speed-up over raw sgemm \(BenchHarness.format(fp32Raw / engine, 2))×")
    }

    /// SiLU and add over large arrays vs memcpy of the same traffic.
    func benchElementwise() {
        let n = options.quick ? 1 << 22 : 1 << 26
        let g = RandomGenerator(seed: 2)
        let x = Tensor.randn([n], generator: g), y = Tensor.randn([n], generator: g)
        let dst = UnsafeMutableRawPointer.allocate(byteCount: n * 4, alignment: 64)
        defer { dst.deallocate() }
        let copy = BenchHarness.median {
            // Split like the engine does, so both use the same threads.
            Parallel.forEach(n, grain: 1 << 16) { r in
                (dst + r.lowerBound * 4).copyMemory(from: x.storage.rawPointer + r.lowerBound * 4, byteCount: r.count * 4)
            }
        }
        let copyRate = Double(2 * n * 4) / copy / 1e9
        print("elementwise memcpy \(n) floats: \(BenchHarness.format(copyRate)) GB/s (reference)")
        let cases: [(String, Int, () -> Void)] = [
            ("silu", 2, { _ = x.silu() }),
            ("gelu tanh", 2, { _ = x.gelu(approximateTanh: true) }),
            ("add", 3, { _ = x + y }),
            ("mul scalar", 2, { _ = x * 1.5 }),
        ]
        for (name, arrays, body) in cases {
            let t = BenchHarness.median(body)
            let rate = Double(arrays * n * 4) / t / 1e9
            print(
                "elementwise \(name): \(BenchHarness.format(t * 1e3, 2)) ms \(BenchHarness.format(rate)) GB/s"
                    + " | ratio to memcpy \(BenchHarness.format(rate / copyRate, 3))")
        }
    }
}
