import Foundation
import TensorCore

/// Runs a PyTorch peer script (`scripts/bench/torch_*.py`) as a subprocess and collects its machine lines.
///
/// The Python is `GOKU_TORCH_PYTHON`, else `.venv-bench/bin/python` (made by `scripts/bench/setup_venv.sh`); it runs
/// with the environment the user started `goku` with (`ThreadWaitPolicy.userEnvironment`). A peer
/// prints human lines, passed through indented, and one line per case,
/// `RESULT <case> <variant> ms=<median> peak_mib=<MiB> [key=value …]`, returned keyed by "<case> <variant>".
public enum TorchPeer {
    /// One case's figures.
    public struct Result {
        public let ms: Double
        /// Peak resident memory of a step above the memory before it, MiB.
        public let peakMiB: Double?
        /// Any other key=value fields.
        public let fields: [String: String]
    }

    /// Runs `script` with `arguments` from the repository root; nil (with a line saying why) when no Python with
    /// torch or no script is here.
    public static func run(script: String, arguments: [String]) throws -> [String: Result]? {
        let env = ProcessInfo.processInfo.environment
        let python = env["GOKU_TORCH_PYTHON"] ?? ".venv-bench/bin/python"
        guard FileManager.default.isExecutableFile(atPath: python), FileManager.default.fileExists(atPath: script) else {
            print("--compare-torch: no \(python) or \(script) here (run scripts/bench/setup_venv.sh from the repository root)")
            return nil
        }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: python)
        process.arguments = [script] + arguments
        // The peer runs with the user's environment, not with the thread settings `goku` gave itself.
        process.environment = ThreadWaitPolicy.userEnvironment()
        let pipe = Pipe()
        process.standardOutput = pipe
        try process.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        var results: [String: Result] = [:]
        for line in String(decoding: data, as: UTF8.self).split(separator: "\n") {
            guard line.hasPrefix("RESULT ") else {
                print("  \(line)")
                continue
            }
            let parts = line.split(separator: " ")
            guard parts.count >= 4 else { continue }
            var fields: [String: String] = [:]
            for part in parts.dropFirst(3) {
                let pair = part.split(separator: "=", maxSplits: 1)
                if pair.count == 2 { fields[String(pair[0])] = String(pair[1]) }
            }
            guard let ms = fields["ms"].flatMap(Double.init) else { continue }
            results["\(parts[1]) \(parts[2])"] = Result(ms: ms, peakMiB: fields["peak_mib"].flatMap(Double.init), fields: fields)
        }
        guard process.terminationStatus == 0 else {
            throw PeerError(message: "\(script) exited with status \(process.terminationStatus)")
        }
        return results
    }

    struct PeerError: Error, CustomStringConvertible {
        let message: String
        var description: String { message }
    }
}
