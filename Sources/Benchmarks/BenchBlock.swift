import ArgumentParser
import CBLAS
import Foundation
import GokuModel
import TensorCore

/// `goku bench block`: forward + backward of one goku-1b-shaped Goku block (D 1152, 16 heads of 72, 1024 video
/// tokens, 77 text tokens of width 2048, adaLN and cross-attention included), in fp32 or with bf16 matrix products
/// (`--dtype bf16`: `GokuBlock.matmulPrecision = .bfloat16`, oneDNN).
///
/// Printed per case: median ms, GFLOP/s from the analytic FLOP count (linear layers and attention products, backward
/// counted as twice the forward), the fraction of the fp32 ceiling — raw `cblas_sgemm` on the block's FFN shape,
/// measured in the same run (for bf16: raw oneDNN bf16 on that shape with packed weights) — and the memory one step allocates (`stepMemory`). The block runs
/// with the fused adaLN kernels and, for comparison, with the same maths composed from separate ops
/// (`GokuBlock.fusedModulation = false`); both are checked to agree before timing. Then the adaLN elementwise work
/// alone (modulated norms and gated residuals, fused vs composed) and attention alone at 4096 tokens.
/// `--compare-torch` runs `scripts/bench/torch_block.py` (PyTorch, same block) as a subprocess when a Python with
/// torch is found (`GOKU_TORCH_PYTHON`, else `.venv-bench/bin/python`) and prints the time ratios.
///
/// Attention alone runs at the chosen dtype (bf16: its tile products on AVX-512 BF16 dot products, softmax statistics
/// in fp32), and at bf16 also in fp32 and with the operands packed per tile product (`AttentionTile
/// .packsBFloat16Operands` off) for the same-run speed-ups, and is checked against fp32 (`attentionAgreement`).
public struct BenchBlock: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "block",
        abstract: "One goku-1b block forward+backward, fused vs unfused, optionally beside PyTorch.")

    @OptionGroup var options: BenchOptions

    @Option(help: "Matrix-product precision: fp32, or bf16 (oneDNN, fp32 accumulation).")
    var dtype: String = "fp32"

    @Flag(help: "Also run scripts/bench/torch_block.py (needs .venv-bench or GOKU_TORCH_PYTHON) and print ratios.")
    var compareTorch = false

    @Option(help: "Which cases to run: block (with the adaLN elementwise work), attention (comma separated).")
    var only: String = "block,attention"

    /// The cases `--only` names (validated in `run`).
    var cases: Set<String> { Set(only.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }) }

    /// `dtype` as a mode (validated in `run`).
    var precision: MixedPrecision.Mode { MixedPrecision.Mode(name: dtype) ?? .float32 }

    public init() {}

    public func run() throws {
        options.apply()
        guard MixedPrecision.Mode(name: dtype) != nil else {
            throw ValidationError("--dtype must be \(MixedPrecision.Mode.names.joined(separator: " or ")), got \(dtype)")
        }
        guard dtype == "fp32" || MixedPrecision.isAvailable else {
            throw ValidationError("--dtype bf16 needs oneDNN (libdnnl), which created no CPU engine here")
        }
        let unknown = cases.subtracting(["block", "attention"])
        guard unknown.isEmpty, !cases.isEmpty else {
            throw ValidationError("--only takes block and attention (comma separated), got \(only)")
        }
        print("goku bench block — \(Parallel.threadCount) threads; BLAS: \(Parallel.blasDescription)")
        let tokens = options.quick ? 256 : 1024, textTokens = 77
        let sgemm = sgemmCeiling(rows: tokens)
        print("fp32 ceiling: raw cblas_sgemm \(tokens)×1152·1152×4608 \(BenchHarness.format(sgemm)) GFLOP/s (same run)")
        var ceiling = sgemm
        if dtype == "bf16" {
            ceiling = oneDNNCeiling(rows: tokens)
            print(
                "bf16 ceiling: raw oneDNN (\(MixedPrecision.instructionSet ?? "?")) \(tokens)×1152·1152×4608"
                    + " \(BenchHarness.format(ceiling)) GFLOP/s (same run)")
        }
        var block: Double?, attention: Double?
        if cases.contains("block") {
            block = try blockCases(tokens: tokens, textTokens: textTokens, ceiling: ceiling)
            modulationCases(tokens: tokens)
        }
        if cases.contains("attention") {
            let length = options.quick ? 1024 : 4096
            let fp32 = attentionCase(length: length, precision: .float32)
            attention = fp32
            if precision == .bfloat16 {
                let bf16 = attentionCase(length: length, precision: .bfloat16)
                attention = bf16
                print("attention bf16 speed-up over fp32 (same run): \(BenchHarness.format(fp32 / bf16, 2))×")
                if AttentionTile.packsBFloat16Operands {
                    // The general path, which packs both operands inside every tile product, for the same-run ratio.
                    AttentionTile.packsBFloat16Operands = false
                    print("the same with operands packed per tile product:")
                    let perTile = attentionCase(length: length, precision: .bfloat16)
                    AttentionTile.packsBFloat16Operands = true
                    print("attention bf16, packed once vs per tile (same run): \(BenchHarness.format(perTile / bf16, 2))× faster")
                }
                try attentionAgreement(length: length)
            }
        }
        if compareTorch { try runTorch(block: block, attention: attention) }
    }

    /// GFLOP/s of raw sgemm on (rows × 1152)·(1152 × 4608), the block's FFN up-projection.
    func sgemmCeiling(rows: Int) -> Double {
        let k = 1152, n = 4608
        let g = RandomGenerator(seed: 4)
        let a = Tensor.randn([rows, k], generator: g), b = Tensor.randn([k, n], generator: g)
        let c = Tensor.zeros([rows, n])
        let t = BenchHarness.median {
            cblas_sgemm(
                CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(rows), Int32(n), Int32(k), 1,
                a.storage.pointer(as: Float.self), Int32(k), b.storage.pointer(as: Float.self), Int32(n), 0,
                c.storage.pointer(as: Float.self), Int32(n))
        }
        return 2.0 * Double(rows * k * n) / t / 1e9
    }

    /// GFLOP/s of raw oneDNN bf16 on (rows × 1152)·(1152 × 4608) with packed weights and pre-rounded input.
    func oneDNNCeiling(rows: Int) -> Double {
        let k = 1152, n = 4608
        let g = RandomGenerator(seed: 4)
        let a = Tensor.randn([rows, k], generator: g).to(.bfloat16), w = Tensor.randn([n, k], generator: g)
        w.requiresGrad = true
        let c = Tensor.zeros([rows, n])
        let t = BenchHarness.median {
            _ = MixedPrecision.rawProduct(
                m: rows, n: n, k: k, aBits: a.storage.pointer(as: UInt16.self), weight: w,
                c: c.storage.pointer(as: Float.self))
        }
        return 2.0 * Double(rows * k * n) / t / 1e9
    }

    /// Forward FLOPs of the block: its linear layers plus the attention products (QKᵀ and P·V).
    static func blockFlops(tokens l: Int, text t: Int, d: Int, textDimension dt: Int, ffn f: Int) -> Double {
        let linear = 4 * l * d * d + 2 * l * d * d + 2 * t * dt * d + 2 * l * d * f + d * 6 * d
        let attention = 2 * l * l * d + 2 * l * t * d
        return 2 * Double(linear + attention)
    }

    /// Times the fused and the unfused block; returns the fused fwd+bwd median in ms.
    func blockCases(tokens: Int, textTokens: Int, ceiling: Double) throws -> Double {
        var config = GokuConfig.goku1B
        config.depth = 1
        let g = RandomGenerator(seed: 1)
        let block = GokuBlock(config, generator: g)
        block.matmulPrecision = precision
        // Random weights everywhere (gates and the zero-initialised output projection included): a trained block.
        for (_, p) in block.namedParameters() where p.rank == 2 { p.assign(Tensor.randn(p.shape, generator: g) * 0.02) }
        let sample = GokuSample(
            latent: Tensor.zeros([config.inChannels, tokens / 256, 32, 32]), timestep: 0.5,
            text: Tensor.randn([textTokens, config.textDimension], generator: g))
        let batch = try PackedBatch(samples: [sample], config: config)
        let x = Tensor.randn([1, tokens, config.hiddenSize], generator: g)
        x.requiresGrad = true
        let c = Tensor.randn([1, config.hiddenSize], generator: g).silu()
        let w = Tensor.randn([1, tokens, config.hiddenSize], generator: g)
        func step() {
            block.zeroGrad()
            x.grad = nil
            (block(x, conditioning: c, batch: batch) * w).sum().backward()
        }
        // The two paths agree (forward bit-identical; gradients to rounding) before anything is timed.
        block.fusedModulation = false
        let reference = Autograd.inference { block(x, conditioning: c, batch: batch) }
        step()
        let referenceGrad = x.grad!.copy()
        block.fusedModulation = true
        let fusedOut = Autograd.inference { block(x, conditioning: c, batch: batch) }
        step()
        let outDiff = (fusedOut - reference).abs().max().item()
        let gradDiff = (x.grad! - referenceGrad).abs().max().item()
        let gradScale = referenceGrad.abs().max().item()
        guard outDiff == 0, gradDiff <= 1e-4 * gradScale else {
            throw ValidationError("fused and unfused blocks differ: output by \(outDiff), dx by \(gradDiff)")
        }
        let flops =
            3
            * Self.blockFlops(
                tokens: tokens, text: textTokens, d: config.hiddenSize, textDimension: config.textDimension,
                ffn: config.ffnDimension)
        var fusedMs = 0.0
        for fused in [true, false] {
            block.fusedModulation = fused
            let peak = BenchHarness.stepMemory(step)
            let t = BenchHarness.median(minRuns: 5, minSeconds: 3, step)
            if fused { fusedMs = t * 1e3 }
            let rate = flops / t / 1e9
            print(
                "block fwd+bwd \(dtype) \(fused ? "fused  " : "unfused"), \(tokens) tokens + \(textTokens) text:"
                    + " \(BenchHarness.format(t * 1e3)) ms, \(BenchHarness.format(rate)) GFLOP/s,"
                    + " \(BenchHarness.format(100 * rate / ceiling))% of raw \(dtype == "bf16" ? "oneDNN bf16" : "sgemm"), step allocates +\(BenchHarness.mib(peak))"
                    + (fused ? "" : " | fused speed-up \(BenchHarness.format(t * 1e3 / fusedMs, 3))×"))
        }
        block.fusedModulation = true
        if dtype == "bf16" {
            // The same fused block with fp32 products, same run: what bf16 buys on this CPU.
            block.matmulPrecision = .float32
            let t = BenchHarness.median(minRuns: 5, minSeconds: 3, step)
            block.matmulPrecision = .bfloat16
            print(
                "block fwd+bwd fp32 fused (same run), \(tokens) tokens: \(BenchHarness.format(t * 1e3)) ms"
                    + " | bf16 speed-up \(BenchHarness.format(t * 1e3 / fusedMs, 3))×")
        }
        return fusedMs
    }

    /// The block's adaLN elementwise work alone, forward + backward: two modulated norms and two gated residuals on
    /// (1, L, 1152) with per-sample (1, 1, D) modulation, fused kernels vs the composed ops.
    func modulationCases(tokens: Int) {
        let d = 1152
        let g = RandomGenerator(seed: 5)
        func leaf(_ shape: [Int]) -> Tensor {
            let t = Tensor.randn(shape, generator: g)
            t.requiresGrad = true
            return t
        }
        let x = leaf([1, tokens, d]), branch = leaf([1, tokens, d]), weight = leaf([d])
        let shift = leaf([1, 1, d]), scale = leaf([1, 1, d]), gate = leaf([1, 1, d])
        let leaves = [x, branch, weight, shift, scale, gate]
        let upstream = Tensor.randn([1, tokens, d], generator: g)
        func fused() {
            for t in leaves { t.grad = nil }
            let a = Tensor.modulatedLayerNorm(x, shift: shift, scale: scale, eps: 1e-6)
            let b = Tensor.modulatedRMSNorm(x, weight: weight, shift: shift, scale: scale, eps: 1e-6)
            let r = Tensor.gatedResidual(x, gate: gate, branch: a) + Tensor.gatedResidual(branch, gate: gate, branch: b)
            r.backward(upstream)
        }
        func unfused() {
            for t in leaves { t.grad = nil }
            let a = Tensor.layerNorm(x, weight: nil, bias: nil, eps: 1e-6) * (scale + 1) + shift
            let b = Tensor.rmsNorm(x, weight: weight, eps: 1e-6) * (scale + 1) + shift
            let r = (x + gate * a) + (branch + gate * b)
            r.backward(upstream)
        }
        let tf = BenchHarness.median(minRuns: 5, minSeconds: 1, fused)
        let tu = BenchHarness.median(minRuns: 5, minSeconds: 1, unfused)
        print(
            "adaLN elementwise fwd+bwd (2 modulated norms + 2 gated residuals) on (1, \(tokens), \(d)):"
                + " fused \(BenchHarness.format(tf * 1e3, 2)) ms | unfused \(BenchHarness.format(tu * 1e3, 2)) ms"
                + " | speed-up \(BenchHarness.format(tu / tf, 2))×")
    }

    /// Fused attention forward + backward at `length` tokens, 16 heads of 72, with tile products in `precision`;
    /// returns the median in ms.
    func attentionCase(length: Int, precision: MixedPrecision.Mode) -> Double {
        let heads = 16, headSize = 72
        let inputs = AttentionBenchInputs(length: length, heads: heads, headSize: headSize)
        let (q, k, v, dOut, flops) = (inputs.q, inputs.k, inputs.v, inputs.dOut, inputs.flops)
        func step() {
            for x in [q, k, v] { x.grad = nil }
            MixedPrecision.with(precision) { Tensor.attention(q, k, v) }.backward(dOut)
        }
        let peak = BenchHarness.stepMemory(step)
        let t = BenchHarness.median(minRuns: 3, minSeconds: 1, step)
        let forward = BenchHarness.median(minRuns: 3, minSeconds: 1) {
            _ = Autograd.inference { MixedPrecision.with(precision) { Tensor.attention(q, k, v) } }
        }
        print(
            "attention fwd+bwd \(precision.name) L=\(length) Nh=\(heads) Dh=\(headSize): \(BenchHarness.format(t * 1e3)) ms,"
                + " \(BenchHarness.format(flops / t / 1e9)) GFLOP/s (backward counted 2.5× forward), step allocates \(BenchHarness.mib(peak));"
                + " forward alone \(BenchHarness.format(forward * 1e3)) ms, \(BenchHarness.format(flops / 3.5 / forward / 1e9)) GFLOP/s"
        )
        return t * 1e3
    }

    /// bf16 attention against fp32 on the benchmark's inputs, output and the three gradients: the largest difference
    /// over the largest fp32 value, which must stay within the tolerance the unit tests hold bf16 attention to
    /// (0.03); a kernel path that has not run on this CPU before (AMX tiles) is checked here before its time counts.
    func attentionAgreement(length: Int) throws {
        let inputs = AttentionBenchInputs(length: length, heads: 16, headSize: 72)
        func run(_ mode: MixedPrecision.Mode) -> [Tensor] {
            for x in [inputs.q, inputs.k, inputs.v] { x.grad = nil }
            let out = MixedPrecision.with(mode) { Tensor.attention(inputs.q, inputs.k, inputs.v) }
            out.backward(inputs.dOut)
            return [out.detached(), inputs.q.grad!, inputs.k.grad!, inputs.v.grad!]
        }
        let exact = run(.float32), mixed = run(.bfloat16)
        var parts: [String] = [], worst = 0.0
        for (i, name) in ["output", "dq", "dk", "dv"].enumerated() {
            let error = Double((mixed[i] - exact[i]).abs().max().item()) / Double(exact[i].abs().max().item())
            worst = max(worst, error)
            parts.append("\(name) \(String(format: "%.2e", error))")
        }
        print("attention bf16 vs fp32, largest difference over largest value: \(parts.joined(separator: ", "))")
        guard worst <= 0.03 else {
            throw ValidationError("bf16 attention differs from fp32 by \(worst) of the largest value (tolerance 0.03)")
        }
    }

    /// Runs the PyTorch peer and prints our time over its time for the block and for attention.
    func runTorch(block: Double?, attention: Double?) throws {
        let arguments =
            ["--dtype", dtype, "--threads", "\(Parallel.threadCount)"] + (options.quick ? ["--quick"] : [])
            + (attention == nil ? [] : ["--attention"]) + (block == nil ? ["--skip-block"] : [])
        guard let results = try TorchPeer.run(script: "scripts/bench/torch_block.py", arguments: arguments) else {
            return
        }
        if let block, let torchBlock = results["block \(dtype)"]?.ms {
            print(
                "block \(dtype): goku \(BenchHarness.format(block)) ms / torch \(BenchHarness.format(torchBlock)) ms"
                    + " = \(BenchHarness.format(block / torchBlock, 3)) (goal ≤ \(dtype == "bf16" ? "0.4" : "1"))")
        }
        if let attention, let torchAttention = results["attention \(dtype)"]?.ms {
            print(
                "attention: goku \(dtype) \(BenchHarness.format(attention)) ms / torch \(dtype) \(BenchHarness.format(torchAttention)) ms"
                    + " = \(BenchHarness.format(attention / torchAttention, 3))")
        }
    }
}
