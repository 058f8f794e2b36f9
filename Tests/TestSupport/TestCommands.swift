import Foundation

/// Commands the tests run as a user would: the release `goku` binary and other programs, with their output.
public enum TestCommands {
    /// The package's root folder.
    public static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()

    /// The release binary: `GOKU_BINARY` when set (a build in another scratch folder), else `.build/release/goku`.
    public static var releaseGoku: URL {
        ProcessInfo.processInfo.environment["GOKU_BINARY"].map { URL(fileURLWithPath: $0) }
            ?? root.appendingPathComponent(".build/release/goku")
    }

    /// The exit status and the output (stdout and stderr together) of a finished command.
    public struct Result {
        public var status: Int32
        public var output: String
    }

    /// Runs `executable arguments` with `environment` added to this process's, waits at most `timeout` seconds
    /// (then terminates it), and returns its status and output.
    public static func run(
        _ executable: URL, _ arguments: [String], environment: [String: String] = [:], timeout: TimeInterval = 600
    ) throws -> Result {
        let process = Process()
        process.executableURL = executable
        process.arguments = arguments
        var env = ProcessInfo.processInfo.environment
        for (k, v) in environment { env[k] = v }
        process.environment = env
        // A file, not a pipe: a long output cannot fill a pipe and block the command.
        let log = FileManager.default.temporaryDirectory.appendingPathComponent("goku-test-\(UUID().uuidString).log")
        _ = FileManager.default.createFile(atPath: log.path, contents: nil)
        defer { try? FileManager.default.removeItem(at: log) }
        let handle = try FileHandle(forWritingTo: log)
        process.standardOutput = handle
        process.standardError = handle
        try process.run()
        let deadline = Date().addingTimeInterval(timeout)
        while process.isRunning && Date() < deadline { Thread.sleep(forTimeInterval: 0.05) }
        if process.isRunning { process.terminate() }
        process.waitUntilExit()
        try handle.close()
        return Result(status: process.terminationStatus, output: String(decoding: try Data(contentsOf: log), as: UTF8.self))
    }
}
