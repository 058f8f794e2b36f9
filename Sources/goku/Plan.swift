import ArgumentParser
import Distributed
import Foundation
import GokuModel
import GokuPipeline
import ShapesRecipe

/// `goku plan --preset goku-8b --ranks 1024 --sequence-parallel 8 --sharding hybrid --tokens 219600`: per-rank memory
/// and per-step communication of a distributed training run, from `CostModel`, without running anything.
struct PlanCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "plan",
        abstract: "Estimate per-rank memory and per-step communication of a distributed training run.",
        discussion: """
            The ranks form ranks/P data-parallel groups of P sequence-parallel (Ulysses) ranks; each group trains one \
            packed sequence of --tokens tokens per step. Memory is per rank (fp32 parameters, gradients and \
            activations; fp32 AdamW master weights, moments and EMA). Communication is the payload each rank \
            contributes per step (what ProcessGroup counts), the bytes a ring algorithm puts on its link, and their \
            time at --bandwidth with no overlap. See CostModel for the formulas and what they leave out.
            """)

    @Option(help: "A named transformer: \(PlanCommand.presetNames).")
    var preset: String?

    @Option(
        help: """
            A training config (JSON): its transformer or preset is sized, and its maxTextLength, largest stage token \
            budget and activationCheckpointing become the defaults. The preset's text width and latent channels are \
            used (the trainer takes them from the text encoder and VAE).
            """)
    var config: String?

    @Option(help: "Ranks (GPUs) in the job.")
    var ranks: Int

    @Option(help: "Ulysses degree P: ranks sharing one packed sequence; divides --ranks and the heads.")
    var sequenceParallel = 1

    @Option(
        help: "State sharding: none (DDP), optimizer (ZeRO-1), gradients (ZeRO-2), full (FSDP), hybrid (HYBRID_SHARD).")
    var sharding = ShardingStage.none

    @Option(help: "Ranks a node holds: the FULL_SHARD group of --sharding hybrid.")
    var ranksPerNode = 8

    @Option(
        help: """
            Tokens of the packed sequence of one sequence-parallel group (default 4096, or the config's largest stage \
            token budget).
            """)
    var tokens: Int?

    @Option(help: "Text tokens per packed sequence (default 128, or the config's maxTextLength).")
    var textTokens: Int?

    @Flag(inversion: .prefixedNo, help: "Recompute each block in backward (default off, or the config's).")
    var activationCheckpointing: Bool?

    @Option(help: "Link bandwidth per rank, GB/s (10⁹ bytes; 25 ≈ a 200 Gb/s NIC).")
    var bandwidth = 25.0

    @Flag(help: "Print the estimate as JSON.")
    var json = false

    static var presetNames: String { GokuConfig.presets.keys.sorted().joined(separator: ", ") }

    func validate() throws {
        guard (preset == nil) != (config == nil) else {
            throw ValidationError("give either --preset NAME (\(Self.presetNames)) or --config FILE")
        }
        if let preset, GokuConfig.presets[preset] == nil {
            throw ValidationError("unknown preset '\(preset)'; the presets are \(Self.presetNames)")
        }
        guard bandwidth > 0 && bandwidth.isFinite else { throw ValidationError("--bandwidth must be positive") }
    }

    func run() throws {
        let source = try modelSource()
        let model = ModelShape(source.config, textTokens: textTokens ?? source.textTokens)
        let plan = ParallelPlan(
            ranks: ranks, sequenceParallel: sequenceParallel, sharding: sharding, ranksPerNode: ranksPerNode,
            activationCheckpointing: activationCheckpointing ?? source.activationCheckpointing,
            tokens: tokens ?? source.tokens)
        let estimate = try CostModel.estimate(model: model, plan: plan)
        let report = PlanReport(
            name: source.name, model: model, plan: plan, estimate: estimate, bandwidthBytesPerSecond: bandwidth * 1e9)
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            print(String(decoding: try encoder.encode(report), as: UTF8.self))
        } else {
            print(report.table)
        }
    }

    /// The transformer to size and the defaults its source gives.
    private func modelSource() throws -> (
        name: String, config: GokuConfig, textTokens: Int, tokens: Int, activationCheckpointing: Bool
    ) {
        guard let path = config else { return (preset!, GokuConfig.presets[preset!]!, 128, 4096, false) }
        let (training, _) = try ShapesTrainingRecipe.read(from: URL(fileURLWithPath: path))
        var config = training.transformer ?? GokuConfig.presets[training.preset]!
        if training.transformer == nil { config.imageConditioning = training.imageConditioning }
        let budget = training.stages.map(\.tokenBudget).max() ?? 4096
        let name = training.transformer == nil ? "\(training.preset) (\(path))" : path
        return (name, config, training.maxTextLength, budget, training.activationCheckpointing)
    }
}

extension ShardingStage: ExpressibleByArgument {}

/// What `goku plan` prints: the inputs, the estimate, and its derived totals (for `--json` too).
struct PlanReport: Encodable {
    /// One collective kind with its derived figures.
    struct Transfer: Encodable {
        var collective: Collective
        var purpose: String
        var groupSize: Int
        var calls: Int
        var payloadBytes: Int
        var wireBytes: Double
        var seconds: Double
    }

    var name: String
    var model: ModelShape
    var plan: ParallelPlan
    var dataParallel: Int
    var tokensPerRank: Int
    var tokensPerStep: Int
    var memory: CostEstimate.Memory
    var memoryTotal: Int
    var transfers: [Transfer]
    var payloadBytes: [Collective: Int]
    var wireBytes: [Collective: Double]
    var bandwidthBytesPerSecond: Double
    var communicationSeconds: Double

    init(name: String, model: ModelShape, plan: ParallelPlan, estimate: CostEstimate, bandwidthBytesPerSecond: Double) {
        self.name = name
        self.model = model
        self.plan = plan
        dataParallel = estimate.dataParallel
        tokensPerRank = estimate.tokensPerRank
        tokensPerStep = estimate.tokensPerStep
        memory = estimate.memory
        memoryTotal = estimate.memory.total
        transfers = estimate.transfers.map {
            Transfer(
                collective: $0.collective, purpose: $0.purpose, groupSize: $0.groupSize, calls: $0.calls,
                payloadBytes: $0.payloadBytes, wireBytes: $0.wireBytes,
                seconds: $0.seconds(bandwidth: bandwidthBytesPerSecond))
        }
        payloadBytes = estimate.payloadBytes
        wireBytes = estimate.wireBytes
        self.bandwidthBytesPerSecond = bandwidthBytesPerSecond
        communicationSeconds = estimate.communicationSeconds(bandwidth: bandwidthBytesPerSecond)
    }

    /// The readable form: a header, memory by part in GiB, and the collectives of a step.
    var table: String {
        let m = model, p = plan
        var lines = [
            "\(name): \(count(m.parameterCount)) parameters (\(m.depth) blocks of \(count(m.blockParameterCount))), "
                + "D \(m.hiddenSize), \(m.headCount) heads, \(m.textTokens) text tokens",
            "\(p.ranks) rank\(p.ranks == 1 ? "" : "s") = \(dataParallel) data-parallel × \(p.sequenceParallel) "
                + "sequence-parallel; sharding \(p.sharding.rawValue)\(p.sharding == .hybrid ? " in nodes of \(p.ranksPerNode)" : ""); activation "
                + "checkpointing \(p.activationCheckpointing ? "on" : "off")",
            "tokens: \(count(p.tokens)) a sequence, \(count(tokensPerRank)) a rank, \(count(tokensPerStep)) a step",
            "",
            pad("memory per rank", 44) + pad("GiB", 10, left: true),
        ]
        let parts: [(String, Int)] = [
            ("parameters", memory.parameters),
            ("gathered parameters (one block + the rest)", memory.gatheredParameters),
            ("gradients", memory.gradients), ("optimizer state (fp32 master, m, v)", memory.optimizerState),
            ("EMA (fp32)", memory.ema),
            ("activations (\(p.activationCheckpointing ? "checkpointed" : "all blocks kept"))", memory.activations),
            ("total", memory.total),
        ]
        for (part, bytes) in parts { lines.append(pad("  " + part, 44) + pad(gib(bytes), 10, left: true)) }
        let other =
            p.activationCheckpointing ? memory.activationsWithoutCheckpointing : memory.activationsWithCheckpointing
        lines.append(
            "  (activations \(p.activationCheckpointing ? "without" : "with") checkpointing: \(gib(other)) GiB)")
        lines.append("")
        lines.append(
            pad("communication per step", 56) + pad("group", 6, left: true) + pad("payload", 11, left: true)
                + pad("wire", 11, left: true)
                + pad("s @ \(formatNumber(bandwidthBytesPerSecond / 1e9)) GB/s", 16, left: true))
        for t in transfers {
            lines.append(
                pad("  \(t.collective.rawValue): \(t.purpose)", 56) + pad("\(t.groupSize)", 6, left: true)
                    + pad(bytesText(Double(t.payloadBytes)), 11, left: true)
                    + pad(bytesText(t.wireBytes), 11, left: true)
                    + pad(seconds(t.seconds), 16, left: true))
        }
        if transfers.isEmpty { lines.append("  none (one rank)") }
        let payload = transfers.reduce(0) { $0 + $1.payloadBytes }, wire = transfers.reduce(0) { $0 + $1.wireBytes }
        lines.append(
            pad("  total", 62) + pad(bytesText(Double(payload)), 11, left: true) + pad(bytesText(wire), 11, left: true)
                + pad(seconds(communicationSeconds), 16, left: true))
        return lines.joined(separator: "\n")
    }

    private func pad(_ text: String, _ width: Int, left: Bool = false) -> String {
        let fill = String(repeating: " ", count: max(0, width - text.count))
        return left ? fill + text : text + fill
    }

    private func gib(_ bytes: Int) -> String { String(format: "%.2f", Double(bytes) / 1_073_741_824) }

    private func seconds(_ s: Double) -> String {
        s == 0 ? "0" : s < 0.001 ? String(format: "%.1e", s) : String(format: "%.3f", s)
    }

    /// 32 B, 1.5 KiB, 3.2 MiB, 7.45 GiB.
    private func bytesText(_ bytes: Double) -> String {
        let units = ["B", "KiB", "MiB", "GiB", "TiB"]
        var value = bytes, unit = 0
        while value >= 1024 && unit < units.count - 1 {
            value /= 1024
            unit += 1
        }
        return unit == 0 ? "\(Int(value)) B" : String(format: "%.2f ", value) + units[unit]
    }

    /// 2.08 G, 70.6 M, 27.5 K, or the plain number below 10 000.
    private func count(_ n: Int) -> String {
        let v = Double(n)
        if v >= 1e9 { return String(format: "%.2f G", v / 1e9) }
        if v >= 1e6 { return String(format: "%.1f M", v / 1e6) }
        if v >= 1e4 { return String(format: "%.1f K", v / 1e3) }
        return "\(n)"
    }

    private func formatNumber(_ x: Double) -> String { x == x.rounded() ? "\(Int(x))" : String(format: "%g", x) }
}
