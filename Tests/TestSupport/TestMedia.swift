import Foundation

/// Makes test videos with the ffmpeg command-line tool (lavfi sources) in a temporary folder.
public enum TestMedia {
    /// A fresh temporary folder, removed when the tests end (`TemporaryFolders`).
    public static func folder(_ name: String) throws -> URL { try TemporaryFolders.make("goku-\(name)") }

    /// Runs ffmpeg with `arguments` (quiet, overwrite); fails when ffmpeg is missing (scripts/setup.sh installs it).
    public static func ffmpeg(_ arguments: [String]) throws {
        let candidates = ["/usr/bin/ffmpeg", "/usr/local/bin/ffmpeg"]
        guard let tool = candidates.first(where: { FileManager.default.isExecutableFile(atPath: $0) }) else {
            throw NSError(
                domain: "ffmpeg", code: 127,
                userInfo: [NSLocalizedDescriptionKey: "ffmpeg is not installed (scripts/setup.sh installs it)"])
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
    public static func make(_ url: URL, source: String, extra: [String] = []) throws {
        try ffmpeg(["-f", "lavfi", "-i", source] + extra + ["-c:v", "libx264", "-pix_fmt", "yuv420p", url.path])
    }
}
