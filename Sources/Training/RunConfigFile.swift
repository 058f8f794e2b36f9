import Checkpoint
import Foundation

/// The `run.json` of a training run folder: the config a run was started with.
///
/// A new run writes it; a resumed run must bring the same config, except the top-level fields the trainer names as
/// changeable: `steps` always (a run may be extended), and for example `precision` where the checkpoint's state does
/// not depend on it (Float32 master weights and optimizer state in either precision). Both sides are compared after
/// one JSON decode, so defaulted and derived fields agree. The file is rewritten with the config the run continues
/// with.
public enum RunConfigFile {
    /// The file name inside a run folder.
    public static let fileName = "run.json"

    /// Writes `config` into a new run folder, or checks it against the one already there.
    /// - Parameters:
    ///   - mayChange: top-level keys, besides `steps`, that a resumed run may change.
    ///   - defaults: the config's defaults: a key that an older `run.json` lacks (a field added since) takes its
    ///     default value, which is what that run trained with.
    /// - Throws: `RunConfigError` when the folder holds a run with another config or an unreadable `run.json`.
    public static func checkOrWrite<C: Codable>(
        _ config: C, in folder: URL, mayChange: Set<String> = [], defaults: C? = nil
    ) throws {
        let free = mayChange.union(["steps"])
        let url = folder.appendingPathComponent(fileName)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        if FileManager.default.fileExists(atPath: url.path) {
            // A changeable key that an older run.json lacks takes the new config's value.
            guard var stored = (try? JSONSerialization.jsonObject(with: Data(contentsOf: url))) as? [String: Any],
                let current = try JSONSerialization.jsonObject(with: encoder.encode(config)) as? [String: Any]
            else { throw RunConfigError(file: url.path, reason: "unreadable run config") }
            for key in free where stored[key] == nil { stored[key] = current[key] }
            if let defaults, let base = try JSONSerialization.jsonObject(with: encoder.encode(defaults)) as? [String: Any] {
                for (key, value) in base where stored[key] == nil { stored[key] = value }
            }
            guard let saved = try? JSONDecoder().decode(C.self, from: JSONSerialization.data(withJSONObject: stored)) else {
                throw RunConfigError(file: url.path, reason: "unreadable run config")
            }
            func canonical(_ value: C) throws -> Data {
                let decoded = try JSONDecoder().decode(C.self, from: encoder.encode(value))
                var object = try JSONSerialization.jsonObject(with: encoder.encode(decoded)) as? [String: Any] ?? [:]
                for key in free { object[key] = nil }
                return try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
            }
            guard try canonical(saved) == canonical(config) else {
                throw RunConfigError(
                    file: folder.path,
                    reason: "holds a run with another config (only \(free.sorted().map { "'\($0)'" }.joined(separator: ", ")) may change on resume); use a new output folder")
            }
        }
        try AtomicFile.write(encoder.encode(config), to: url)
    }
}

/// A run folder that cannot take this run.
public struct RunConfigError: Error, CustomStringConvertible {
    /// The folder or file.
    public let file: String
    /// Why.
    public let reason: String
    public var description: String { "\(file): \(reason)" }
}
