import ArgumentParser
import Benchmarks
import CBLAS
import Foundation
import TensorCore
import TextEncoder

/// `goku bench text`: tokenizer throughput and T5 encoder tokens/s (Flan-T5-XL shape, random weights) at 1 and 2
/// threads, the encoder beside raw `cblas_sgemm` on its largest GEMM shape measured in the same run.
struct BenchText: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "text", abstract: "T5 tokenizer captions/s and encoder tokens/s (Flan-T5-XL shape, random weights).")

    @OptionGroup var options: BenchOptions

    @Option(help: "Tokenizer folder (tokenizer.json or spiece.model); default: the test fixture's small vocabulary.")
    var tokenizer: String = "Tests/TextEncoderTests/Fixtures/tokenizer"

    @Option(help: "Encoder layers (default 24 as Flan-T5-XL; --quick uses 2).")
    var layers: Int?

    @Option(help: "Batch size of the encoder input.")
    var batch: Int = 2

    @Option(help: "Sequence length of the encoder input.")
    var length: Int = 64

    @Option(help: "Which parts to run: tokenizer, encoder (comma separated).")
    var only: String = "tokenizer,encoder"

    func run() throws {
        let parts = Set(only.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) })
        let threadCounts = options.threads.map { [$0] } ?? [1, 2]
        print("goku bench text — threads \(threadCounts); BLAS: \(Parallel.blasDescription)")
        if parts.contains("tokenizer") { try benchTokenizer(threadCounts) }
        if parts.contains("encoder") { benchEncoder(threadCounts) }
    }

    /// Shapes-like captions, deterministic.
    static func captions(_ count: Int) -> [String] {
        let sizes = ["small", "large", "tiny", "big"], colors = ["red", "green", "blue", "yellow", "purple", "white"]
        let shapes = ["circle", "square", "triangle", "star", "hexagon"]
        let moves = ["moving right", "moving left", "bouncing", "rotating clockwise", "growing", "fading in"]
        var state: UInt64 = 0x9E37_79B9_7F4A_7C15
        func pick(_ list: [String]) -> String {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return list[Int(state >> 33) % list.count]
        }
        return (0..<count).map { _ in
            "a \(pick(sizes)) \(pick(colors)) \(pick(shapes)) \(pick(moves)) and a \(pick(colors)) \(pick(shapes))"
                + " \(pick(moves)) on a \(pick(colors)) background"
        }
    }

    func benchTokenizer(_ threadCounts: [Int]) throws {
        let tok = try T5Tokenizer(folder: URL(fileURLWithPath: tokenizer))
        let texts = Self.captions(options.quick ? 2000 : 20000)
        // Check against the plain path before timing: the parallel run gives the serial run's ids.
        let serial = texts.map { tok.encode($0, maxLength: 128).ids }
        let tokenCount = serial.reduce(0) { $0 + $1.count }
        for threads in threadCounts {
            Parallel.threadCount = threads
            var ids = [[Int]](repeating: [], count: texts.count)
            let seconds = BenchHarness.median(minRuns: 3, minSeconds: 0.5) {
                ids.withUnsafeMutableBufferPointer { out in
                    let out = out
                    Parallel.forEach(texts.count, grain: 64) { range in
                        for i in range { out[i] = tok.encode(texts[i], maxLength: 128).ids }
                    }
                }
            }
            precondition(ids == serial, "parallel tokenisation differs from the serial one")
            print(
                "tokenizer \(threads) thread(s), \(texts.count) captions (vocab \(tok.vocabularySize)):"
                    + " \(BenchHarness.format(Double(texts.count) / seconds, 0)) captions/s,"
                    + " \(BenchHarness.format(Double(tokenCount) / seconds, 0)) tokens/s")
        }
    }

    func benchEncoder(_ threadCounts: [Int]) {
        var config = T5Config.flanT5XL
        config.numLayers = layers ?? (options.quick ? 2 : 24)
        let (b, l) = options.quick ? (1, 32) : (batch, length)
        let t0 = Date()
        let model = T5EncoderModel(config: config, generator: RandomGenerator(seed: 7))
        let g = RandomGenerator(seed: 8)
        let ids = (0..<b).map { _ in Tensor.rand([l], low: 3, high: 32000, generator: g).scalars.map { Int($0) } }
        let mask = ids.map { $0.map { _ in 1 } }
        print(
            "encoder Flan-T5-XL shape, \(config.numLayers) layers, \(model.parameterCount / 1_000_000) M params"
                + " (init \(BenchHarness.format(Date().timeIntervalSince(t0), 1)) s), input (\(b), \(l))")
        // FLOPs: the GEMMs of every layer (q, k, v, o, wi_0, wi_1, wo) plus scores and context.
        let tokens = Double(b * l)
        let inner = Double(config.numHeads * config.dKV), d = Double(config.dModel), ff = Double(config.dFF)
        let perLayer = 2 * tokens * (4 * d * inner + 3 * d * ff) + 4 * Double(b) * Double(l * l) * inner
        let flops = perLayer * Double(config.numLayers)
        // The reference: raw sgemm on the feed-forward's shape (B·L × D · D × d_ff), the bulk of the work.
        let a = Tensor.randn([b * l, config.dModel], generator: g), w = Tensor.randn([config.dModel, config.dFF], generator: g)
        let c = Tensor.zeros([b * l, config.dFF])
        let runs = options.quick ? 3 : 2
        // Every thread count must give the first one's output (up to GEMM rounding), and finite values.
        var reference: [Float] = []
        for threads in threadCounts {
            Parallel.threadCount = threads
            var output: [Float] = []
            let seconds = BenchHarness.median(minRuns: runs, minSeconds: 0) {
                output = Autograd.inference { model.encode(ids: ids, attentionMask: mask) }.scalars
            }
            precondition(output.allSatisfy(\.isFinite), "encoder output is not finite")
            if reference.isEmpty { reference = output }
            let worst = zip(output, reference).map { abs($0 - $1) }.max() ?? 0
            precondition(worst <= 1e-3, "encoder output at \(threads) threads differs from the first run by \(worst)")
            let raw = BenchHarness.median(minRuns: 3, minSeconds: 0.2) {
                cblas_sgemm(
                    CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(b * l), Int32(config.dFF), Int32(config.dModel), 1,
                    a.storage.pointer(as: Float.self), Int32(config.dModel), w.storage.pointer(as: Float.self),
                    Int32(config.dFF), 0, c.storage.pointer(as: Float.self), Int32(config.dFF))
            }
            let rawGFLOPs = 2 * tokens * d * ff / raw / 1e9
            print(
                "encoder \(threads) thread(s): \(BenchHarness.format(seconds * 1e3, 0)) ms/forward,"
                    + " \(BenchHarness.format(tokens / seconds, 1)) tokens/s, \(BenchHarness.format(flops / seconds / 1e9)) GFLOP/s"
                    + " | raw cblas_sgemm (\(b * l)×\(config.dModel)·\(config.dModel)×\(config.dFF))"
                    + " \(BenchHarness.format(rawGFLOPs)) GFLOP/s | ratio \(BenchHarness.format(flops / seconds / 1e9 / rawGFLOPs, 3))")
        }
    }
}
