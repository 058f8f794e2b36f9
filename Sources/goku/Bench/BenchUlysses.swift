import ArgumentParser
import Distributed
import Foundation
import GokuModel
import TensorCore

/// `goku bench ulysses`: one block's forward and backward over a packed sequence on P sequence-parallel ranks of one
/// thread each (Ulysses: each rank 1/P of the tokens, all-to-alls around self-attention) against one process with P
/// threads doing the whole sequence; the overhead is the ratio of the two minus one.
struct BenchUlysses: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ulysses",
        abstract: "Sequence-parallel (Ulysses) overhead: one block fwd+bwd on P ranks × 1 thread vs. 1 process × P threads.",
        discussion: """
            The block is the preset's (goku-1b by default: D 1152, 16 heads), with random weights, one sample of
            --tokens video tokens and 128 text tokens. Both sides run --iterations timed steps after one untimed one
            and report the median; the ranks start each step together (a barrier), and rank 0's time is reported.
            """)

    @Option(help: "Model preset whose block is timed.")
    var preset = "goku-1b"

    @Option(help: "Video tokens of the packed sequence (a multiple of 256).")
    var tokens = 4096

    @Option(help: "Sequence-parallel ranks P (and the threads of the one-process side).")
    var ranks = 2

    @Option(help: "Timed steps per side.")
    var iterations = 5

    @Flag(help: .hidden)
    var worker = false

    func run() throws {
        guard var config = GokuConfig.presets[preset] else {
            throw ValidationError("unknown preset '\(preset)' (\(GokuConfig.presets.keys.sorted().joined(separator: ", ")))")
        }
        guard tokens > 0, tokens % 256 == 0 else { throw ValidationError("--tokens must be a positive multiple of 256") }
        guard ranks >= 2, config.headCount % ranks == 0 else {
            throw ValidationError("--ranks must be at least 2 and divide the preset's \(config.headCount) heads")
        }
        guard iterations >= 1 else { throw ValidationError("--iterations must be positive") }
        config.depth = 1
        if worker {
            Parallel.threadCount = 1
            let group = try ProcessGroup.world()
            let ms = try measure(config, group: group)
            if group.rank == 0 { print("median_ms \(ms)") }
            return
        }
        Parallel.threadCount = ranks
        print("goku bench ulysses — \(preset) block, \(tokens) tokens + 128 text, \(iterations) steps per side")
        let one = try measure(config, group: nil)
        print(String(format: "  1 process × %d threads            %9.1f ms", ranks, one))
        let program = ThisExecutable.path
        let process = Process()
        process.executableURL = URL(fileURLWithPath: MPIRun.executable)
        process.arguments = MPIRun(ranks: ranks).arguments(
            program: program,
            ["bench", "ulysses", "--worker", "--preset", preset, "--tokens", "\(tokens)", "--ranks", "\(ranks)", "--iterations", "\(iterations)"])
        let pipe = Pipe()
        process.standardOutput = pipe
        try process.run()
        let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        guard process.terminationStatus == 0,
            let line = output.split(separator: "\n").first(where: { $0.hasPrefix("median_ms ") }),
            let sp = Double(line.dropFirst("median_ms ".count))
        else { throw ValidationError("the sequence-parallel side failed (status \(process.terminationStatus)): \(output)") }
        print(String(format: "  %d ranks × 1 thread (Ulysses)      %9.1f ms   overhead %+.1f%% (goal ≤ 15%%)", ranks, sp, 100 * (sp / one - 1)))
    }

    /// Median ms of the block's forward and backward: over the whole sequence (`group` nil), or over this rank's rows
    /// with the exchange.
    func measure(_ config: GokuConfig, group: ProcessGroup?) throws -> Double {
        let g = RandomGenerator(seed: 1)
        let block = GokuBlock(config, generator: g)
        for (_, p) in block.namedParameters() where p.rank == 2 { p.assign(Tensor.randn(p.shape, generator: g) * 0.02) }
        let sample = GokuSample(
            latent: Tensor.randn([config.inChannels, tokens / 256, 32, 32], generator: g), timestep: 0.5,
            text: Tensor.randn([128, config.textDimension], generator: g))
        var batch = try PackedBatch(samples: [sample], config: config)
        var rows = 0..<tokens
        if let group {
            rows = RowSharding.rows(tokens, rank: group.rank, of: group.size)
            batch = batch.sequenceShard(rows, exchange: UlyssesExchange(group: group, tokens: tokens))
        }
        let x = Tensor.randn([1, tokens, config.hiddenSize], generator: g).slice(axis: 1, rows.lowerBound, rows.upperBound)
        x.requiresGrad = true
        let c = Tensor.randn([1, config.hiddenSize], generator: g).silu()
        var times: [Double] = []
        for i in 0...iterations {
            try group?.barrier()
            let start = Date()
            block.zeroGrad()
            x.grad = nil
            block(x, conditioning: c, batch: batch).sum().backward()
            if i > 0 { times.append(Date().timeIntervalSince(start) * 1000) }
        }
        return times.sorted()[times.count / 2]
    }
}
