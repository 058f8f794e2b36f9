import Distributed
import Foundation

/// Runs commands under `mpirun` from a test.
public enum MPITestRun {
    /// The output and exit status of a finished run.
    public struct Result {
        public var status: Int32
        public var output: String
    }

    /// This test process's executable (the XCTest bundle runner).
    public static var testExecutable: String {
        (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
    }

    /// Runs `program arguments` on `ranks` ranks under `mpirun` and waits, with stdout and stderr together.
    public static func run(
        ranks: Int, program: String, _ arguments: [String], environment: [String: String] = [:], timeout: TimeInterval = 600
    ) throws -> Result {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: MPIRun.executable)
        process.arguments = MPIRun(ranks: ranks).arguments(program: program, arguments)
        var env = ProcessInfo.processInfo.environment
        for (k, v) in environment { env[k] = v }
        process.environment = env
        let log = FileManager.default.temporaryDirectory.appendingPathComponent("mpi-test-\(UUID().uuidString).log")
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
        let data = try Data(contentsOf: log)
        return Result(status: process.terminationStatus, output: String(decoding: data, as: UTF8.self))
    }

    /// Runs the XCTest `test` (`Module.Class/method`) of this test executable on `ranks` ranks.
    public static func xctest(ranks: Int, _ test: String, environment: [String: String] = [:]) throws -> Result {
        try run(ranks: ranks, program: testExecutable, [test], environment: environment)
    }
}
