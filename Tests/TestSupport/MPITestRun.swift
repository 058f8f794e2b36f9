import Distributed
import Foundation

/// Runs commands under `mpirun` from a test.
public enum MPITestRun {
    /// This test process's executable (the XCTest bundle runner).
    public static var testExecutable: String {
        (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
    }

    /// Runs `program arguments` on `ranks` ranks under `mpirun` and waits.
    public static func run(
        ranks: Int, program: String, _ arguments: [String], environment: [String: String] = [:], timeout: TimeInterval = 600
    ) throws -> TestCommands.Result {
        try TestCommands.run(
            URL(fileURLWithPath: MPIRun.executable), MPIRun(ranks: ranks).arguments(program: program, arguments),
            environment: environment, timeout: timeout)
    }

    /// Runs the XCTest `test` (`Module.Class/method`) of this test executable on `ranks` ranks.
    public static func xctest(ranks: Int, _ test: String, environment: [String: String] = [:]) throws -> TestCommands.Result {
        try run(ranks: ranks, program: testExecutable, [test], environment: environment)
    }
}
