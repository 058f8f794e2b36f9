import Foundation
import Training
import XCTest

final class RunLoggingTests: XCTestCase {
    /// Records are appended as JSON lines; resuming at step N drops the records written after N.
    func testMetricsLogAppendsAndTruncatesOnResume() throws {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("goku-metrics-\(UUID()).jsonl")
        defer { try? FileManager.default.removeItem(at: url) }
        do {
            let log = try MetricsLog(url: url)
            for step in 1...5 { log.append(step: step, ["loss": 1 / Double(step)]) }
        }
        XCTAssertEqual(try MetricsLog.records(in: url).count, 5)
        do {
            let log = try MetricsLog(url: url, resumingAt: 3)
            log.append(step: 4, ["loss": 0.125])
        }
        let records = try MetricsLog.records(in: url)
        XCTAssertEqual(records.map { ($0["step"] as! NSNumber).intValue }, [1, 2, 3, 4])
        XCTAssertEqual((records[3]["loss"] as! NSNumber).doubleValue, 0.125)

        try Data("{\"step\": 1}\nnot json\n".utf8).write(to: url)
        XCTAssertThrowsError(try MetricsLog(url: url, resumingAt: 1)) { error in
            XCTAssertTrue("\(error)".contains("line 2"), "\(error)")
        }
    }

    private struct Config: Codable {
        var steps: Int
        var precision: String
        var learningRate: Double
    }

    /// A resumed run may change `steps` and the fields the trainer allows, nothing else; the file then holds the new
    /// config.
    func testRunConfigChangesOnlyWhatResumingAllows() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("goku-run-\(UUID())")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let first = Config(steps: 10, precision: "fp32", learningRate: 1e-3)
        try RunConfigFile.checkOrWrite(first, in: folder, mayChange: ["precision"])
        try RunConfigFile.checkOrWrite(Config(steps: 20, precision: "fp32", learningRate: 1e-3), in: folder)
        XCTAssertThrowsError(
            try RunConfigFile.checkOrWrite(Config(steps: 20, precision: "bf16", learningRate: 1e-3), in: folder)
        ) { error in
            XCTAssertTrue("\(error)".contains("only 'steps' may change"), "\(error)")
        }
        let continued = Config(steps: 30, precision: "bf16", learningRate: 1e-3)
        try RunConfigFile.checkOrWrite(continued, in: folder, mayChange: ["precision"])
        let saved = try JSONDecoder().decode(
            Config.self, from: Data(contentsOf: folder.appendingPathComponent(RunConfigFile.fileName)))
        XCTAssertEqual(saved.precision, "bf16")
        XCTAssertEqual(saved.steps, 30)
        XCTAssertThrowsError(
            try RunConfigFile.checkOrWrite(Config(steps: 30, precision: "bf16", learningRate: 2e-3), in: folder, mayChange: ["precision"])
        ) { error in
            XCTAssertTrue("\(error)".contains("'precision', 'steps'"), "\(error)")
        }
    }

    /// A run.json written before a changeable field existed still resumes: the missing field takes the new value; a
    /// missing field that may not change is still an error.
    func testOlderRunConfigWithoutAChangeableField() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("goku-run-\(UUID())")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let file = folder.appendingPathComponent(RunConfigFile.fileName)
        try Data(#"{"steps": 10, "learningRate": 0.001}"#.utf8).write(to: file)
        try RunConfigFile.checkOrWrite(Config(steps: 20, precision: "bf16", learningRate: 1e-3), in: folder, mayChange: ["precision"])
        XCTAssertEqual(try JSONDecoder().decode(Config.self, from: Data(contentsOf: file)).precision, "bf16")
        try Data(#"{"steps": 10, "precision": "fp32"}"#.utf8).write(to: file)
        XCTAssertThrowsError(
            try RunConfigFile.checkOrWrite(Config(steps: 20, precision: "fp32", learningRate: 1e-3), in: folder, mayChange: ["precision"])
        ) { error in
            XCTAssertTrue("\(error)".contains("unreadable run config"), "\(error)")
        }
    }

    /// The line shows the count, percentage, metrics, rate and ETA.
    func testProgressLine() throws {
        let sink = FileHandle(forWritingAtPath: "/dev/null")!
        let bar = ProgressBar(total: 100, label: "train", output: sink, interactive: false)
        bar.update(completed: 25, metrics: [("loss", 0.123456)])
        let line = bar.line(now: Date().addingTimeInterval(10))
        XCTAssertTrue(line.hasPrefix("train [######"), line)
        XCTAssertTrue(line.contains("25/100 25%"), line)
        XCTAssertTrue(line.contains("loss 0.1235"), line)
        XCTAssertTrue(line.contains("it/s"), line)
        XCTAssertTrue(line.contains("ETA 3"), line)  // 75 items at ~2.5 it/s: about 30 s
        XCTAssertEqual(ProgressBar.duration(3725), "1h02m")
        XCTAssertEqual(ProgressBar.duration(380), "6m20s")
    }

    /// In a log (not a terminal) the final state is written once, not again by `finish`.
    func testPlainOutputWritesTheFinalLineOnce() throws {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("bar-\(UUID().uuidString).log")
        defer { try? FileManager.default.removeItem(at: url) }
        FileManager.default.createFile(atPath: url.path, contents: nil)
        let sink = try FileHandle(forWritingTo: url)
        let bar = ProgressBar(total: 3, label: "prepare", output: sink, interactive: false)
        bar.update(completed: 1)
        bar.update(completed: 3)
        bar.finish()
        try sink.close()
        let lines = try String(contentsOf: url, encoding: .utf8).split(separator: "\n")
        XCTAssertEqual(lines.filter { $0.contains("3/3 100%") }.count, 1, "\(lines)")
        XCTAssertTrue(lines.first?.contains("1/3") ?? false, "\(lines)")
    }
}
