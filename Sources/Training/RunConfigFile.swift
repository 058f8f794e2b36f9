import Foundation

/// The `run.json` of a training run folder: the config a run was started with.
///
/// A new run writes it; a resumed run must bring the same config, except `steps` (a run may be extended). Both sides
/// are compared after one JSON decode, so defaulted and derived fields agree.
public enum RunConfigFile {
    /// The file name inside a run folder.
    public static let fileName = "run.json"

    /// Writes `config` into a new run folder, or checks it against the one already there.
    /// - Throws: `RunConfigError` when the folder holds a run with another config or an unreadable `run.json`.
    public static func checkOrWrite<C: Codable>(_ config: C, in folder: URL) throws {
        let url = folder.appendingPathComponent(fileName)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        if FileManager.default.fileExists(atPath: url.path) {
            guard let saved = try? JSONDecoder().decode(C.self, from: Data(contentsOf: url)) else {
                throw RunConfigError(file: url.path, reason: "unreadable run config")
            }
            func canonical(_ value: C) throws -> Data {
                let decoded = try JSONDecoder().decode(C.self, from: encoder.encode(value))
                var object = try JSONSerialization.jsonObject(with: encoder.encode(decoded)) as? [String: Any] ?? [:]
                object["steps"] = nil
                return try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
            }
            guard try canonical(saved) == canonical(config) else {
                throw RunConfigError(
                    file: folder.path,
                    reason: "holds a run with another config (only 'steps' may change on resume); use a new output folder")
            }
        }
        let temporary = folder.appendingPathComponent(".\(fileName).tmp")
        try encoder.encode(config).write(to: temporary)
        if FileManager.default.fileExists(atPath: url.path) { try FileManager.default.removeItem(at: url) }
        try FileManager.default.moveItem(at: temporary, to: url)
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
