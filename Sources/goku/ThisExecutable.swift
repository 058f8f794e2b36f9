import Foundation

/// The running `goku` binary's path, for the commands that start copies of it (workers, ranks, benchmark sides).
enum ThisExecutable {
    static var path: String {
        (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
    }
}
