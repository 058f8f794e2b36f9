import ArgumentParser
import Curation
import Foundation

/// `goku curate`: the data-curation pipeline (raw videos in; filtered, deduplicated, captioned clips out).
struct Curate: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Data curation: filter, clip, deduplicate, caption and balance videos.",
        subcommands: [CurateRun.self, CurateReport.self, CurateExport.self])
}

/// Where a run keeps its index and config.
enum CurateFiles {
    static func index(_ output: URL) -> URL { output.appendingPathComponent("index.sqlite") }
    static func config(_ output: URL) -> URL { output.appendingPathComponent("config.json") }

    /// The config from `--config`, else the run's saved one, else the defaults (480p tier).
    static func config(flag: String?, output: URL) throws -> CurationConfig {
        if let flag { return try CurationConfig.read(from: URL(fileURLWithPath: flag)) }
        let saved = config(output)
        return FileManager.default.fileExists(atPath: saved.path)
            ? try CurationConfig.read(from: saved) : CurationConfig()
    }
}

/// `goku curate run --input DIR --output DIR [--config FILE] [--jobs N]`.
struct CurateRun: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run", abstract: "Curate every video under --input into --output (resumes an interrupted run).")

    @Option(help: "Folder of source videos (searched recursively).")
    var input: String

    @Option(help: "Run folder: index.sqlite and config.json.")
    var output: String

    @Option(help: "Curation config JSON (defaults: the paper's 480p tier).")
    var config: String?

    @Option(help: "Parallel workers, one source video each.")
    var jobs: Int = 1

    func run() throws {
        guard jobs >= 1 else { throw ValidationError("--jobs must be ≥ 1") }
        let outputURL = URL(fileURLWithPath: output)
        try FileManager.default.createDirectory(at: outputURL, withIntermediateDirectories: true)
        let settings = try CurateFiles.config(flag: config, output: outputURL)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try encoder.encode(settings).write(to: CurateFiles.config(outputURL), options: .atomic)
        let index = try CurationIndex(url: CurateFiles.index(outputURL))
        let pipeline = try CurationPipeline(config: settings, index: index)
        try pipeline.run(input: URL(fileURLWithPath: input), jobs: jobs)
        print(try CurationReport(index: index).text, terminator: "")
    }
}

/// `goku curate report --output DIR [--config FILE]`.
struct CurateReport: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "report", abstract: "Counts per stage, rejection reasons, score histograms (PNG).")

    @Option(help: "Run folder.")
    var output: String

    @Option(help: "Re-apply this config's thresholds to the stored scores first (nothing is recomputed).")
    var config: String?

    func run() throws {
        let outputURL = URL(fileURLWithPath: output)
        let index = try openIndex(outputURL)
        if let config {
            let settings = try CurationConfig.read(from: URL(fileURLWithPath: config))
            try CurationPipeline(config: settings, index: index).reapply(config: settings)
        }
        let report = try CurationReport(index: index)
        print(report.text, terminator: "")
        for file in try report.writeHistograms(to: outputURL.appendingPathComponent("report")) {
            print("histogram: \(file.path)")
        }
    }
}

/// `goku curate export --output DIR [--to DIR] [--config FILE]`.
struct CurateExport: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export", abstract: "Accepted clips as H.264 MP4 plus manifest.jsonl (the training format).")

    @Option(help: "Run folder.")
    var output: String

    @Option(help: "Dataset folder (default: <output>/dataset).")
    var to: String?

    @Option(help: "Re-apply this config's thresholds to the stored scores first.")
    var config: String?

    func run() throws {
        let outputURL = URL(fileURLWithPath: output)
        let index = try openIndex(outputURL)
        if let config {
            let settings = try CurationConfig.read(from: URL(fileURLWithPath: config))
            try CurationPipeline(config: settings, index: index).reapply(config: settings)
        }
        let folder = to.map { URL(fileURLWithPath: $0) } ?? outputURL.appendingPathComponent("dataset")
        let entries = try CurationExport.export(index: index, to: folder)
        print("exported \(entries.count) clips to \(folder.path)/manifest.jsonl")
    }
}

/// Opens an existing run's index (an error naming the file when there is none).
func openIndex(_ output: URL) throws -> CurationIndex {
    let url = CurateFiles.index(output)
    guard FileManager.default.fileExists(atPath: url.path) else {
        throw CurationError.file(path: url.path, reason: "no curation index (run `goku curate run` first)")
    }
    return try CurationIndex(url: url)
}
