import Curation
import Datasets
import Foundation
import TestSupport
import GRDB
import VideoIO
import XCTest

/// The whole pipeline on the test videos: every rejection reason, captions from a loopback chat server, export,
/// report, re-applied thresholds, and a run killed and resumed.
final class CurationPipelineTests: XCTestCase {
    /// Runs the pipeline over the test media into a fresh folder.
    private func runPipeline(jobs: Int, captions server: ChatServer?) throws -> (CurationPipeline, URL) {
        let output = try TestMedia.folder("curation-run")
        var config = CurationMedia.config
        config.captionEndpoint = server?.endpoint
        let index = try CurationIndex(url: output.appendingPathComponent("index.sqlite"))
        let pipeline = try CurationPipeline(config: config, index: index)
        pipeline.log = { _ in }
        try pipeline.run(input: try CurationMedia.sources(), jobs: jobs)
        return (pipeline, output)
    }

    private func sourceOutcomes(_ index: CurationIndex) throws -> [String: String] {
        try index.database.read { db in
            var outcomes: [String: String] = [:]
            for row in try Row.fetchAll(db, sql: "SELECT path, status, stage FROM source") {
                let name = URL(fileURLWithPath: row["path"]).lastPathComponent
                outcomes[name] = "\(row["status"] as String)/\(row["stage"] as String? ?? "-")"
            }
            return outcomes
        }
    }

    /// source file name → the clips' "status/stage" in order.
    private func clipOutcomes(_ index: CurationIndex) throws -> [String: [String]] {
        let names = Dictionary(
            uniqueKeysWithValues: try index.sources().map { ($0.id, URL(fileURLWithPath: $0.path).lastPathComponent) })
        var outcomes: [String: [String]] = [:]
        for clip in try index.clips() {
            outcomes[names[clip.sourceId]!, default: []].append("\(clip.status)/\(clip.stage ?? "-")")
        }
        return outcomes
    }

    func testPipelineRejectsEachCaseForItsReasonAndCaptionsTheRest() throws {
        let server = try ChatServer(reply: "A woman and a child play with a ball on the grass.", failuresFirst: 1)
        defer { server.stop() }
        let (pipeline, output) = try runPipeline(jobs: 2, captions: server)
        let index = pipeline.index

        let sources = try sourceOutcomes(index)
        XCTAssertEqual(sources["corrupt.mp4"], "failed/ffmpeg")
        XCTAssertEqual(sources["lowres.mp4"], "rejected/metadata")
        XCTAssertEqual(sources["lowbitrate.mp4"], "rejected/metadata")
        XCTAssertEqual(sources["short.mp4"], "rejected/metadata")
        for name in ["cuts.mp4", "text.mp4", "static.mp4", "repeat.mp4"] {
            XCTAssertEqual(sources[name], "done/-", name)
        }

        let clips = try clipOutcomes(index)
        XCTAssertEqual(clips["cuts.mp4"], ["accepted/-", "accepted/-"])
        XCTAssertEqual(clips["text.mp4"], ["rejected/ocr"])
        XCTAssertEqual(clips["static.mp4"], ["rejected/motion"])
        // The repeated testsrc2 segment: one of its two copies goes (the less sharp), mandelbrot stays.
        let repeated = clips["repeat.mp4"] ?? []
        XCTAssertEqual(repeated.count, 3)
        XCTAssertEqual(repeated[1], "accepted/-")
        XCTAssertEqual(Set([repeated[0], repeated[2]]), ["accepted/-", "rejected/dedup"])
        let repeatSource = try index.sources().first { $0.path.hasSuffix("repeat.mp4") }!
        let copies = try index.clips(source: repeatSource.id).filter { $0.number != 1 }
        let dropped = copies.first { $0.stage == "dedup" }!, kept = copies.first { $0.status == "accepted" }!
        XCTAssertLessThanOrEqual(dropped.stages["phash"]!.score!, kept.stages["phash"]!.score!)
        XCTAssertEqual(dropped.reason, "duplicate of clip \(kept.number)")

        // Captions: keyframes, clip, refinement per accepted clip, plus the one retried 503.
        let accepted = try index.clips().filter { $0.status == "accepted" }
        XCTAssertEqual(accepted.count, 4)
        XCTAssertEqual(server.requests.count, 3 * 4 + 1)
        for clip in accepted {
            let caption = clip.stages["caption"]?.detail ?? ""
            XCTAssertTrue(caption.hasPrefix("A woman and a child"), caption)
            XCTAssertTrue(caption.contains("Motion score: "), caption)
            XCTAssertEqual(clip.category, "human")
            XCTAssertEqual(clip.weight ?? 0, 1, accuracy: 1e-12)
            XCTAssertEqual(clip.stages["aesthetic"]?.status, "skipped")
        }
        // Image requests carry JPEG data URLs; the refinement request carries the two captions and no image.
        var imageCount = 0
        var refinements = 0
        for body in server.requests {
            let json = try JSONSerialization.jsonObject(with: body) as! [String: Any]
            let message = (json["messages"] as! [[String: Any]])[0]
            let parts = message["content"] as! [[String: Any]]
            let urls = parts.compactMap { ($0["image_url"] as? [String: Any])?["url"] as? String }
            for url in urls {
                XCTAssertTrue(url.hasPrefix("data:image/jpeg;base64,"))
                let jpeg = Data(base64Encoded: String(url.dropFirst("data:image/jpeg;base64,".count)))!
                XCTAssertEqual(Array(jpeg.prefix(2)), [0xFF, 0xD8])
            }
            imageCount += urls.count
            if json["model"] as? String == "qwen2" {
                refinements += 1
                XCTAssertTrue(urls.isEmpty)
                XCTAssertTrue((parts[0]["text"] as! String).contains("Keyframes: A woman"))
            }
        }
        XCTAssertEqual(refinements, 4)
        XCTAssertGreaterThan(imageCount, 4 * 2)

        // Export: one H.264 MP4 per accepted clip and a manifest line each.
        let dataset = output.appendingPathComponent("dataset")
        let entries = try CurationExport.export(index: index, to: dataset)
        XCTAssertEqual(entries.count, 4)
        let lines = try String(contentsOf: dataset.appendingPathComponent("manifest.jsonl"), encoding: .utf8)
            .split(separator: "\n")
        XCTAssertEqual(lines.count, 4)
        let entry = try JSONDecoder().decode(ManifestEntry.self, from: Data(lines[0].utf8))
        let info = try VideoIO.probe(dataset.appendingPathComponent(entry.file))
        XCTAssertEqual(info.codec, "h264")
        XCTAssertEqual(info.width, 320)
        XCTAssertEqual(entry.width, 320)
        XCTAssertEqual(entry.height, 240)
        XCTAssertEqual(info.duration, 2.5, accuracy: 0.1)
        XCTAssertNotNil(entry.scores?["motion"])
        XCTAssertEqual(entry.frames, try VideoIO.decodeFrames(dataset.appendingPathComponent(entry.file)).count)
        // A second export keeps the clips already written and reports the same entries.
        XCTAssertEqual(try CurationExport.export(index: index, to: dataset), entries)

        // Report: counts and one PNG per score.
        let report = try CurationReport(index: index)
        XCTAssertEqual(report.clipStages["dedup"], 1)
        XCTAssertEqual(report.sourceStages["metadata"], 3)
        let pictures = try report.writeHistograms(to: output.appendingPathComponent("report"))
        XCTAssertTrue(pictures.contains { $0.lastPathComponent == "motion.png" })
        XCTAssertEqual(try VideoIO.probe(pictures[0]).codec, "png")

        // Other thresholds re-applied from the stored scores: no request, no new stage row.
        let stageRows = try index.database.read { try Int.fetchOne($0, sql: "SELECT count(*) FROM stage")! }
        let requests = server.requests.count
        var strict = pipeline.config
        strict.minimumMotion = 1000
        strict.maximumMotion = 2000
        try pipeline.reapply(config: strict)
        XCTAssertEqual(try index.clips().filter { $0.status == "accepted" }.count, 0)
        XCTAssertEqual(try index.clips().filter { $0.stage == "motion" }.count, 7)
        try pipeline.reapply(config: pipeline.config)
        XCTAssertEqual(try index.clips().filter { $0.status == "accepted" }.count, 4)
        XCTAssertEqual(try index.database.read { try Int.fetchOne($0, sql: "SELECT count(*) FROM stage")! }, stageRows)
        XCTAssertEqual(server.requests.count, requests)
    }

    func testCaptionerGivesUpAfterItsRetries() throws {
        let server = try ChatServer(reply: "never", failuresFirst: 100)
        defer { server.stop() }
        var config = CurationMedia.config
        config.captionEndpoint = server.endpoint
        config.maximumRetries = 2
        let captioner = try Captioner(config: config)
        XCTAssertThrowsError(try captioner.complete(model: "m", prompt: "p", images: [])) {
            XCTAssertTrue("\($0)".contains("503"), "\($0)")
        }
        XCTAssertEqual(server.requests.count, 3)
    }

    func testKilledRunResumesWithoutRedoingOrLosingWork() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
        let goku = root.appendingPathComponent(".build/release/goku")
        guard FileManager.default.isExecutableFile(atPath: goku.path) else {
            return XCTFail("needs the release goku binary: run swift build -c release first (scripts/test.sh does)")
        }
        let media = try CurationMedia.sources()
        let output = try TestMedia.folder("curation-kill")
        let configURL = output.appendingPathComponent("test-config.json")
        try JSONEncoder().encode(CurationMedia.config).write(to: configURL)
        let process = Process()
        process.executableURL = goku
        process.arguments = [
            "curate", "run", "--input", media.path, "--output", output.path, "--config", configURL.path,
        ]
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        // Kill it as soon as the first clip's stage rows are committed, mid-run.
        let indexURL = output.appendingPathComponent("index.sqlite")
        let deadline = Date().addingTimeInterval(60)
        var killedMidway = false
        while process.isRunning && Date() < deadline {
            if let rows = try? DatabaseQueue(path: indexURL.path).read({
                try Int.fetchOne($0, sql: "SELECT count(*) FROM stage")
            }),
                (rows ?? 0) > 0
            {
                kill(process.processIdentifier, SIGKILL)
                killedMidway = true
                break
            }
            Thread.sleep(forTimeInterval: 0.01)
        }
        process.waitUntilExit()
        XCTAssertTrue(killedMidway, "the run ended before it could be killed")
        let index = try CurationIndex(url: indexURL)
        XCTAssertGreaterThan(try index.unfinishedSources().count, 0, "nothing was left to resume")
        let pipeline = try CurationPipeline(config: CurationMedia.config, index: index)
        pipeline.log = { _ in }
        try pipeline.run(input: media, jobs: 2)

        // Every stage row is unique by construction (an INSERT of a second one would have thrown); every clip has
        // its four, and the outcome equals an uninterrupted run's.
        XCTAssertEqual(try index.unfinishedSources().count, 0)
        let clips = try index.clips()
        for clip in clips { XCTAssertEqual(Set(clip.stages.keys), ["motion", "ocr", "aesthetic", "phash"]) }
        let (fresh, _) = try runPipeline(jobs: 1, captions: nil)
        XCTAssertEqual(try clipOutcomes(index), try clipOutcomes(fresh.index))
        XCTAssertEqual(try sourceOutcomes(index), try sourceOutcomes(fresh.index))

        // The command line on the resumed run: report (PNG histograms) and export (MP4s + manifest).
        func runGoku(_ arguments: [String]) throws -> String {
            let process = Process()
            process.executableURL = goku
            process.arguments = arguments
            let pipe = Pipe()
            process.standardOutput = pipe
            try process.run()
            let text = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            process.waitUntilExit()
            XCTAssertEqual(process.terminationStatus, 0, "goku \(arguments): \(text)")
            return text
        }
        let report = try runGoku(["curate", "report", "--output", output.path])
        XCTAssertTrue(report.contains("dedup: 1"), report)
        XCTAssertTrue(FileManager.default.fileExists(atPath: output.appendingPathComponent("report/motion.png").path))
        let exported = try runGoku(["curate", "export", "--output", output.path])
        XCTAssertTrue(exported.contains("exported 4 clips"), exported)
        let manifest = try String(contentsOf: output.appendingPathComponent("dataset/manifest.jsonl"), encoding: .utf8)
        XCTAssertEqual(manifest.split(separator: "\n").count, 4)
    }
}
