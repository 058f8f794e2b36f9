import ArgumentParser
import Benchmarks
import CBLAS
import Foundation
import TensorCore
import VideoVAE

/// `goku bench vae`: encode + decode time and peak memory of the CogVideoX VAE (random weights), one pass and tiled,
/// and one of its 3×3×3 convolutions beside a raw `cblas_sgemm` of the same FLOPs.
struct BenchVAE: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "vae",
        abstract: "VAE encode+decode time and peak memory (17×256×256, CogVideoX config), one pass and tiled.")

    @OptionGroup var options: BenchOptions

    @Option(help: "Frames, height and width as TxHxW (default 17x256x256; --quick: 5x64x64).")
    var size: String?

    func run() throws {
        options.apply()
        let dims = (size ?? (options.quick ? "5x64x64" : "17x256x256")).split(separator: "x").compactMap { Int($0) }
        guard dims.count == 3 else { throw ValidationError("--size: expected TxHxW, got \(size ?? "")") }
        let (t, h, w) = (dims[0], dims[1], dims[2])
        let vae = try VideoAutoencoder(config: .cogVideoX, generator: RandomGenerator(seed: 1))
        let video = Tensor.rand([1, 3, t, h, w], low: -1, high: 1, generator: RandomGenerator(seed: 2))
        try vae.validateVideo(video)
        print(
            "goku bench vae — \(Parallel.threadCount) threads; CogVideoX VAE (\(vae.parameterCount) parameters, random); "
                + "video 1×3×\(t)×\(h)×\(w)")
        let tile = max(32, (min(h, w) / 2) / 32 * 32)
        let cases: [(String, VideoVAEMemoryOptions)] = [
            ("one pass", .wholeClip), ("chunked 8/2", .chunked), ("tiled \(tile) + chunked", .tiled(tile: tile)),
        ]
        // Warm-up on one small frame: first-touch page faults and buffer-pool growth would otherwise land on the
        // first case.
        _ = try Autograd.inference {
            try vae.decode(try vae.encode(Tensor.zeros([1, 3, 1, 64, 64])).mode)
        }
        var reference: Tensor?
        for (name, memory) in cases {
            // One timed run each: at full size one run takes minutes on a small machine.
            BenchHarness.resetPeakMemory()
            let base = BenchHarness.residentMemory()
            let t0 = Date()
            let out = try Autograd.inference { () throws -> Tensor in
                let z = try vae.encode(video, options: memory).mode
                return try vae.decode(z, options: memory)
            }
            let seconds = Date().timeIntervalSince(t0)
            let peak = BenchHarness.peakMemory()
            var note = ""
            if let reference {
                let diff = zip(out.scalars, reference.scalars).map { Swift.abs($0 - $1) }.max() ?? 0
                note = "; max |Δ| vs one pass \(BenchHarness.format(Double(diff), 4))"
            } else {
                reference = out
            }
            let label = name.padding(toLength: 22, withPad: " ", startingAt: 0)
            let growth = BenchHarness.mib(max(0, peak - base))
            print(
                "  \(label) encode+decode \(BenchHarness.format(seconds, 2)) s, "
                    + "peak RSS \(BenchHarness.mib(peak)) (+\(growth) over start)\(note)")
            fflush(stdout)  // a case takes minutes at full size: show progress when the output is redirected
        }
        benchConvolution(frames: t, height: min(h, 64), width: min(w, 64))
    }

    /// A 128→128 causal 3×3×3 convolution (the first level's) beside sgemm with M = Cout, K = Cin·27, N = T·H·W.
    func benchConvolution(frames: Int, height: Int, width: Int) {
        let c = 128, g = RandomGenerator(seed: 3)
        let x = Tensor.randn([1, c, frames, height, width], generator: g)
        let weight = Tensor.randn([c, c, 3, 3, 3], generator: g)
        let m = c, k = c * 27, n = frames * height * width
        let flops = 2.0 * Double(m) * Double(k) * Double(n)
        // Each path: forward alone, and forward + backward (data and weight gradients).
        var timings: [(forward: Double, training: Double)] = []
        let saved = Convolution.usesDNNL
        for dnnl in [false, true] {
            Convolution.usesDNNL = dnnl
            let forward = BenchHarness.median(minRuns: 3, minSeconds: 0.5) {
                _ = Tensor.conv3d(x, weight: weight, bias: nil, padding: [(2, 0), (1, 1), (1, 1)])
            }
            let xg = x.detached(), wg = weight.detached()
            xg.requiresGrad = true
            wg.requiresGrad = true
            let training = BenchHarness.median(minRuns: 3, minSeconds: 0.5) {
                xg.grad = nil
                wg.grad = nil
                Tensor.conv3d(xg, weight: wg, bias: nil, padding: [(2, 0), (1, 1), (1, 1)]).sum().backward()
            }
            timings.append((forward, training))
        }
        Convolution.usesDNNL = saved
        let names = Convolution.isDNNLAvailable ? ["vol2col + sgemm", "oneDNN direct"] : ["vol2col + sgemm"]
        for (name, t) in zip(names, timings) {
            print(
                "  conv3d \(name): forward \(BenchHarness.format(t.forward * 1e3, 1)) ms "
                    + "(\(BenchHarness.format(flops / t.forward / 1e9, 1)) GFLOP/s), forward + backward "
                    + "\(BenchHarness.format(t.training * 1e3, 1)) ms "
                    + "(\(BenchHarness.format(3 * flops / t.training / 1e9, 1)) GFLOP/s)")
        }
        let conv = timings[saved && Convolution.isDNNLAvailable ? 1 : 0].forward
        let a = Tensor.randn([m, k], generator: g), b = Tensor.randn([k, n], generator: g), out = Tensor.zeros([m, n])
        let gemm = BenchHarness.median(minRuns: 3, minSeconds: 0.5) {
            cblas_sgemm(
                CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(m), Int32(n), Int32(k), 1,
                a.storage.pointer(as: Float.self), Int32(k), b.storage.pointer(as: Float.self), Int32(n), 0,
                out.storage.pointer(as: Float.self), Int32(n))
        }
        print(
            "  conv3d 128→128 3×3×3 on \(frames)×\(height)×\(width): \(BenchHarness.format(conv * 1e3, 1)) ms, "
                + "\(BenchHarness.format(flops / conv / 1e9, 1)) GFLOP/s; sgemm of the same FLOPs "
                + "\(BenchHarness.format(gemm * 1e3, 1)) ms; ratio conv/sgemm \(BenchHarness.format(conv / gemm, 2))")
    }
}
