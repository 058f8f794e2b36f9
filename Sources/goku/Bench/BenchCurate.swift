import ArgumentParser
import Benchmarks
import Curation
import Foundation
import VideoIO

/// `goku bench curate`: clips per second of each curation stage on 720p input made with ffmpeg's lavfi sources.
struct BenchCurate: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "curate", abstract: "Clips per second for each curation stage on 720p lavfi input.")

    @OptionGroup var options: BenchOptions

    @Option(help: "A 720p video to use instead of generating one with ffmpeg.")
    var input: String?

    func run() throws {
        options.apply()
        let url = try input.map { URL(fileURLWithPath: $0) } ?? makeInput()
        let config = CurationConfig()
        let info = try VideoIO.probe(url)
        print(
            "goku bench curate — \(url.lastPathComponent): \(info.width)×\(info.height), \(BenchHarness.format(info.duration)) s,"
                + " \(BenchHarness.format(info.framesPerSecond, 3)) fps, \(info.codec); one worker; 480p-tier config")
        let runs = options.quick ? 1 : 3
        func line(_ stage: String, _ seconds: Double, clips: Int, note: String = "") {
            print(
                "  \(stage.padding(toLength: 26, withPad: " ", startingAt: 0)) \(BenchHarness.format(seconds * 1000, 1)) ms"
                    + "  \(BenchHarness.format(Double(clips) / seconds, 2)) clips/s \(note)")
        }
        let probe = BenchHarness.median(minRuns: runs, minSeconds: 0) { _ = try? VideoIO.probe(url) }
        var detected: ShotDetector.Result? = nil
        let shots = BenchHarness.median(minRuns: runs, minSeconds: 0) {
            detected = try? ShotDetector(config: config).detect(url, info: info)
        }
        guard let result = detected, let clip = result.clips.first else { throw ValidationError("no clip detected") }
        let clipCount = result.clips.count
        print(
            "  \(clipCount) clips; per-source stages count clips of this source, per-clip stages one clip of"
                + " \(BenchHarness.format(clip.duration, 2)) s")
        // Reference: the decode alone at the detector's size, the floor shot detection cannot go below.
        let decodeOnly = BenchHarness.median(minRuns: runs, minSeconds: 0) {
            try? VideoIO.decode(url, options: DecodeOptions(width: config.detectorWidth)) { _ in true }
        }
        line("probe + metadata filter", probe, clips: clipCount)
        line(
            "shot detection", shots, clips: clipCount,
            note: "(\(BenchHarness.format(shots / decodeOnly, 2))× its decode)")
        line(
            "  reference: decode only", decodeOnly, clips: clipCount,
            note: "(\(config.detectorWidth) wide, every frame)")

        // Per-clip stages on the first clip: decode once, then each computation alone.
        var frames: [RGBFrame] = []
        let decode = BenchHarness.median(minRuns: runs, minSeconds: 0) {
            frames =
                (try? VideoIO.decodeFrames(
                    url, options: DecodeOptions(width: config.analysisWidth, start: clip.start, end: clip.end))) ?? []
        }
        let keyframes = stride(from: 0, to: frames.count, by: max(1, Int(info.framesPerSecond.rounded()))).map {
            frames[$0]
        }
        let greys = frames.prefix(2 * config.motionPairs).map { frame in
            GreyImage(frame).resized(
                width: config.motionWidth, height: Int(Double(frame.height * config.motionWidth) / Double(frame.width)))
        }
        let flow = FarnebackFlow()
        let motion = BenchHarness.median(minRuns: runs, minSeconds: 0) {
            for p in 0..<(greys.count / 2) { _ = flow.meanMagnitude(from: greys[2 * p], to: greys[2 * p + 1]) }
        }
        let ocr = try TextCoverage()
        let text = BenchHarness.median(minRuns: runs, minSeconds: 0) { for k in keyframes { _ = ocr.coverage(k) } }
        let hashes = BenchHarness.median(minRuns: runs, minSeconds: 0) {
            for k in keyframes { _ = PerceptualHash.hash(k); _ = GreyImage(k).laplacianVariance }
        }
        let analyzer = try ClipAnalyzer(config: config, aesthetic: nil)
        let whole = BenchHarness.median(minRuns: runs, minSeconds: 0) {
            _ = analyzer.analyze(url, span: clip, framesPerSecond: info.framesPerSecond)
        }
        line("clip decode at \(config.analysisWidth) wide", decode, clips: 1, note: "(\(frames.count) frames)")
        line("motion (Farnebäck)", motion, clips: 1, note: "(\(greys.count / 2) pairs at \(config.motionWidth) wide)")
        line("OCR (Tesseract)", text, clips: 1, note: "(\(keyframes.count) keyframes)")
        line("pHash + sharpness", hashes, clips: 1, note: "(\(keyframes.count) keyframes)")
        print("  aesthetic                  skipped: the bench runs without LAION weights")
        line("all per-clip stages", whole, clips: 1, note: "(one decode; as the pipeline runs them)")
    }

    /// 10 s of 1280×720 at 24 fps: testsrc2 then mandelbrot (one scene cut), H.264.
    private func makeInput() throws -> URL {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("goku-bench-curate")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let url = folder.appendingPathComponent("input-720p.mp4")
        if FileManager.default.fileExists(atPath: url.path) { return url }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/ffmpeg")
        let size = "size=1280x720:rate=24"
        process.arguments = [
            "-hide_banner", "-loglevel", "error", "-y", "-t", "5", "-f", "lavfi", "-i", "testsrc2=\(size)", "-t", "5",
            "-f", "lavfi", "-i", "mandelbrot=\(size)", "-filter_complex", "[0][1]concat=n=2:v=1[v]", "-map", "[v]",
            "-c:v", "libx264",
            "-pix_fmt", "yuv420p", url.path,
        ]
        do { try process.run() } catch { throw ValidationError("ffmpeg is needed to make the input: \(error)") }
        process.waitUntilExit()
        guard process.terminationStatus == 0 else { throw ValidationError("ffmpeg failed making \(url.path)") }
        return url
    }
}
