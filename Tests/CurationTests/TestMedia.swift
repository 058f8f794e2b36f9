import Foundation
import XCTest

/// Makes test videos with the ffmpeg command-line tool (lavfi sources) in a temporary folder.
enum TestMedia {
    /// A fresh temporary folder.
    static func folder(_ name: String) throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("goku-\(name)-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }

    /// Runs ffmpeg with `arguments` (quiet, overwrite); skips the test when ffmpeg is missing.
    static func ffmpeg(_ arguments: [String]) throws {
        let candidates = ["/usr/bin/ffmpeg", "/usr/local/bin/ffmpeg"]
        guard let tool = candidates.first(where: { FileManager.default.isExecutableFile(atPath: $0) }) else {
            throw XCTSkip("ffmpeg is not installed (scripts/setup.sh installs it)")
        }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: tool)
        process.arguments = ["-hide_banner", "-loglevel", "error", "-y"] + arguments
        let errors = Pipe()
        process.standardError = errors
        try process.run()
        let message = errors.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw NSError(
                domain: "ffmpeg", code: Int(process.terminationStatus),
                userInfo: [NSLocalizedDescriptionKey: String(decoding: message, as: UTF8.self)])
        }
    }

    /// A lavfi source encoded to H.264 MP4.
    static func make(_ url: URL, source: String, extra: [String] = []) throws {
        try ffmpeg(["-f", "lavfi", "-i", source] + extra + ["-c:v", "libx264", "-pix_fmt", "yuv420p", url.path])
    }
}
