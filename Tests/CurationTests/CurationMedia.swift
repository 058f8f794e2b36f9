import Curation
import Foundation
import TestSupport
import XCTest

/// The test videos (320×240 at 24 fps unless the case is about size or rate), made once per process.
enum CurationMedia {
    /// The thresholds the tests run with: the paper's 480p tier scaled to tiny files.
    static var config: CurationConfig {
        var config = CurationConfig()
        config.minimumShorterSide = 200
        config.minimumBitRateKbps = 100
        config.detectorWidth = 128
        config.analysisWidth = 320
        config.motionWidth = 96
        config.motionPairs = 3
        config.minimumClipDuration = 1
        config.minimumMotion = 0.05
        config.requestsPerMinute = 6000
        config.retryDelay = 0.05
        return config
    }

    nonisolated(unsafe) private static var made: URL? = nil
    private static let lock = NSLock()

    /// The folder of test sources (made on first use):
    /// - cuts.mp4: testsrc2 then mandelbrot, 2.5 s each (one scene cut, two good clips);
    /// - text.mp4: testsrc2 with large burned-in text (OCR);
    /// - static.mp4: still colour bars, MPEG-4 intra-only so its bit rate passes (motion);
    /// - repeat.mp4: testsrc2, mandelbrot, the same testsrc2 again, 2 s each (deduplication);
    /// - lowres.mp4 (160×120), lowbitrate.mp4 (40 kbps), short.mp4 (2 s): the metadata filter;
    /// - corrupt.mp4: bytes that are no video (the ffmpeg-error stage).
    static func sources() throws -> URL {
        lock.lock()
        defer { lock.unlock() }
        if let made { return made }
        let folder = try TestMedia.folder("curation-media")
        let size = "size=320x240:rate=24"
        func path(_ name: String) -> String { folder.appendingPathComponent(name).path }
        let h264 = ["-c:v", "libx264", "-pix_fmt", "yuv420p"]
        try TestMedia.ffmpeg(
            [
                "-f", "lavfi", "-i", "testsrc2=\(size):duration=2.5", "-t", "2.5", "-f", "lavfi", "-i",
                "mandelbrot=\(size)",
                "-filter_complex", "[0][1]concat=n=2:v=1[v]", "-map", "[v]",
            ] + h264 + [path("cuts.mp4")])
        try TestMedia.ffmpeg(
            [
                "-f", "lavfi", "-i", "testsrc2=\(size):duration=4.5", "-vf",
                "drawtext=text='CURATION TEST':fontsize=36:fontcolor=black:box=1:boxcolor=white:boxborderw=8:x=(w-tw)/2:y=(h-th)/2",
            ]
                + h264 + [path("text.mp4")])
        try TestMedia.ffmpeg(
            [
                "-f", "lavfi", "-i", "smptebars=\(size):duration=4.5", "-c:v", "mpeg4", "-g", "1", "-q:v", "2",
                path("static.mp4"),
            ])
        try TestMedia.ffmpeg(
            [
                "-f", "lavfi", "-i", "testsrc2=\(size):duration=2", "-t", "2", "-f", "lavfi", "-i",
                "mandelbrot=\(size)",
                "-filter_complex", "[0]split[a][b];[a][1][b]concat=n=3:v=1[v]", "-map", "[v]",
            ] + h264 + [path("repeat.mp4")])
        try TestMedia.ffmpeg(
            ["-f", "lavfi", "-i", "testsrc2=size=160x120:rate=24:duration=4.5"] + h264 + [path("lowres.mp4")])
        try TestMedia.ffmpeg(
            [
                "-f", "lavfi", "-i", "testsrc2=\(size):duration=4.5", "-c:v", "libx264", "-b:v", "40k", "-maxrate",
                "40k",
                "-bufsize", "40k", path("lowbitrate.mp4"),
            ])
        try TestMedia.ffmpeg(["-f", "lavfi", "-i", "testsrc2=\(size):duration=2"] + h264 + [path("short.mp4")])
        try Data((0..<5000).map { UInt8(truncatingIfNeeded: ($0 * 7919) >> 3) }).write(
            to: folder.appendingPathComponent("corrupt.mp4"))
        made = folder
        return folder
    }
}
