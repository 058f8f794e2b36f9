import Foundation
import TensorCore

/// Random q, k, v (leaves that require gradients) and an upstream gradient, (1, L, Nh, Dh), for attention benchmarks.
struct AttentionBenchInputs {
    let q: Tensor, k: Tensor, v: Tensor, dOut: Tensor
    /// Model FLOPs of forward + backward: forward 4·L²·Dh per head (QKᵀ and P·V); backward counted as 2.5× forward
    /// (5 products, the recomputation of QKᵀ not counted), as FlashAttention reports.
    let flops: Double

    init(length: Int, heads: Int, headSize: Int, seed: UInt64 = 3) {
        let g = RandomGenerator(seed: seed)
        func input() -> Tensor {
            let t = Tensor.randn([1, length, heads, headSize], generator: g)
            t.requiresGrad = true
            return t
        }
        q = input()
        k = input()
        v = input()
        dOut = Tensor.randn([1, length, heads, headSize], generator: g)
        flops = 4.0 * Double(length * length * headSize * heads) * 3.5
    }
}

/// Attention forward+backward at L tokens, 16 heads: the fused kernel vs the unfused path (QKᵀ, softmax, ·V as
/// separate ops, which materialises the L×L scores), each with its peak resident memory.
struct OpsAttentionBench {
    let quick: Bool

    func run() {
        let length = quick ? 1024 : 4096
        for headSize in [64, 72] {
            let heads = 16
            let inputs = AttentionBenchInputs(length: length, heads: heads, headSize: headSize)
            let (q, k, v, dOut, flops) = (inputs.q, inputs.k, inputs.v, inputs.dOut, inputs.flops)

            func fused() {
                let out = Tensor.attention(q, k, v)
                out.backward(dOut)
                for t in [q, k, v] { t.grad = nil }
            }
            // The same maths from separate ops, in (B, Nh, L, Dh) layout.
            let qh = Autograd.inference { q.permute([0, 2, 1, 3]) }.detachedLeaf()
            let kh = Autograd.inference { k.permute([0, 2, 1, 3]) }.detachedLeaf()
            let vh = Autograd.inference { v.permute([0, 2, 1, 3]) }.detachedLeaf()
            let dOutH = dOut.permute([0, 2, 1, 3])
            let scale = 1 / Double(headSize).squareRoot()
            func unfused() {
                let p = (Tensor.matmul(qh, kh, transposeB: true) * scale).softmax(axis: -1)
                Tensor.matmul(p, vh).backward(dOutH)
                for t in [qh, kh, vh] { t.grad = nil }
            }
            // Check the fused result against the unfused one before timing.
            let a = Autograd.inference { Tensor.attention(q, k, v).permute([0, 2, 1, 3]) }
            let b = Autograd.inference { Tensor.matmul((Tensor.matmul(qh, kh, transposeB: true) * scale).softmax(axis: -1), vh) }
            let diff = Autograd.inference { (a - b).abs().max().item() }
            precondition(diff < 1e-3, "attention bench: fused and unfused results differ by \(diff)")

            // The Float32 tiles on the portable Swift panels, against the AVX-512 kernel the engine uses here.
            var panels = ""
            if q.dtype == .float32 && AttentionTile.hasFloat32Kernel && AttentionTile.usesFloat32Kernel {
                AttentionTile.usesFloat32Kernel = false
                let tPanels = BenchHarness.median(minRuns: 3, minSeconds: 0.5, fused)
                AttentionTile.usesFloat32Kernel = true
                let tVector = BenchHarness.median(minRuns: 3, minSeconds: 0.5, fused)
                panels = " | fused on Swift panels \(BenchHarness.format(tPanels * 1e3)) ms, AVX-512 tiles "
                    + "\(BenchHarness.format(tVector * 1e3)) ms (speed ratio \(BenchHarness.format(tPanels / tVector, 2)))"
            }
            let base = BenchHarness.residentMemory()
            BenchHarness.resetPeakMemory()
            let tFused = BenchHarness.median(minRuns: 3, minSeconds: 0.5, fused)
            let peakFused = BenchHarness.peakMemory() - base
            BenchHarness.resetPeakMemory()
            let tUnfused = BenchHarness.median(minRuns: 3, minSeconds: 0.5, unfused)
            let peakUnfused = BenchHarness.peakMemory() - base
            print(
                "attention fwd+bwd L=\(length) Nh=\(heads) Dh=\(headSize): fused \(BenchHarness.format(tFused * 1e3)) ms "
                    + "\(BenchHarness.format(flops / tFused / 1e9)) GFLOP/s, peak +\(BenchHarness.mib(peakFused))"
                    + " | unfused \(BenchHarness.format(tUnfused * 1e3)) ms \(BenchHarness.format(flops / tUnfused / 1e9)) GFLOP/s,"
                    + " peak +\(BenchHarness.mib(peakUnfused)) | speed ratio \(BenchHarness.format(tUnfused / tFused, 2))" + panels)
        }
    }
}

extension Tensor {
    fileprivate func detachedLeaf() -> Tensor {
        let t = detached()
        t.requiresGrad = true
        return t
    }
}
