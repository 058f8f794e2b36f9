import Checkpoint
import Foundation
import TensorCore

/// One saved training checkpoint: groups of named tensors (`model`, `ema`, `optimizer`, …), the run state, and an
/// optional config.
public struct TrainingSnapshot {
    /// Tensor groups by name; each group is one safetensors file `<name>.safetensors`.
    public var groups: [String: [String: Tensor]]
    /// Step, random state and data position.
    public var state: TrainingState
    /// The model or run config, written as `config.json` when present (raw JSON bytes).
    public var configJSON: Data?

    /// A snapshot of `groups` and `state`.
    public init(groups: [String: [String: Tensor]], state: TrainingState, configJSON: Data? = nil) {
        self.groups = groups
        self.state = state
        self.configJSON = configJSON
    }
}

/// The checkpoints of a training run, under `<run>/checkpoints/step-00000100/`.
///
/// Saving is asynchronous: `save` copies the tensors (cheap next to a training step) and writes them on a background
/// thread while training goes on; the next `save` or `waitForPendingWrite()` waits for it and reports its error.
/// Each checkpoint is written into a hidden temporary folder that is renamed into place once every file is complete
/// (each file fsynced, `state.json` last), so a run killed at any moment leaves either a whole checkpoint or none;
/// leftovers of an interrupted write are removed when the store opens. Only the newest `keepLast` are kept.
public final class CheckpointStore: @unchecked Sendable {
    /// The folder holding the `step-*` checkpoints.
    public let directory: URL
    /// How many checkpoints to keep (older ones are deleted after a successful save).
    public let keepLast: Int

    private let queue = DispatchQueue(label: "goku.checkpoint-writer")
    private let group = DispatchGroup()
    private let lock = NSLock()
    private var pendingError: Error?

    /// Opens (creating) `runDirectory/checkpoints` and removes unfinished writes.
    public init(runDirectory: URL, keepLast: Int = 3) throws {
        precondition(keepLast >= 1, "CheckpointStore: keepLast must be at least 1")
        directory = runDirectory.appendingPathComponent("checkpoints")
        self.keepLast = keepLast
        let fm = FileManager.default
        try fm.createDirectory(at: directory, withIntermediateDirectories: true)
        for name in try fm.contentsOfDirectory(atPath: directory.path) where name.hasPrefix(".step-") {
            try? fm.removeItem(at: directory.appendingPathComponent(name))
        }
    }

    /// The folder name of the checkpoint at `step`.
    public static func folderName(step: Int) -> String { "step-" + String(format: "%08d", step) }

    /// Saves `snapshot` in the background; waits for the previous save first and rethrows its error.
    /// The tensors are copied before returning, so training may update them at once.
    public func save(_ snapshot: TrainingSnapshot) throws {
        try waitForPendingWrite()
        var copied = snapshot
        copied.groups = snapshot.groups.mapValues { group in
            Autograd.inference { group.mapValues { $0.detached().copy() } }
        }
        let frozen = copied
        group.enter()
        queue.async { [self] in
            defer { group.leave() }
            do { try write(frozen) } catch {
                lock.lock()
                pendingError = error
                lock.unlock()
            }
        }
    }

    /// Saves `snapshot` and returns once it is on disk.
    public func saveNow(_ snapshot: TrainingSnapshot) throws {
        try save(snapshot)
        try waitForPendingWrite()
    }

    /// Waits for a background save and rethrows its error, if any.
    public func waitForPendingWrite() throws {
        group.wait()
        lock.lock()
        defer { lock.unlock() }
        if let error = pendingError {
            pendingError = nil
            throw error
        }
    }

    /// The complete checkpoints, oldest first, as (step, folder).
    public func checkpoints() throws -> [(step: Int, url: URL)] {
        let fm = FileManager.default
        return try fm.contentsOfDirectory(atPath: directory.path).compactMap { name -> (Int, URL)? in
            guard name.hasPrefix("step-"), let step = Int(name.dropFirst(5)) else { return nil }
            let url = directory.appendingPathComponent(name)
            guard fm.fileExists(atPath: url.appendingPathComponent("state.json").path) else { return nil }
            return (step, url)
        }.sorted { $0.0 < $1.0 }
    }

    /// The newest complete checkpoint, or nil when there is none.
    public func latest() throws -> URL? { try checkpoints().last?.url }

    /// Reads a checkpoint folder: every `*.safetensors` group, `state.json` and `config.json`.
    /// - Throws: `CheckpointError` naming the file when something is missing or malformed.
    public static func load(from folder: URL) throws -> TrainingSnapshot {
        let fm = FileManager.default
        let stateURL = folder.appendingPathComponent("state.json")
        guard fm.fileExists(atPath: stateURL.path) else {
            throw CheckpointError.io(file: stateURL.path, reason: "missing: not a complete training checkpoint")
        }
        let state: TrainingState
        do {
            state = try JSONDecoder().decode(TrainingState.self, from: Data(contentsOf: stateURL))
        } catch {
            throw CheckpointError.io(file: stateURL.path, reason: "malformed training state: \(error)")
        }
        var groups: [String: [String: Tensor]] = [:]
        for name in try fm.contentsOfDirectory(atPath: folder.path) where name.hasSuffix(".safetensors") {
            let file = try SafeTensorsFile(url: folder.appendingPathComponent(name))
            var tensors: [String: Tensor] = [:]
            for key in file.names { tensors[key] = try file.tensor(key) }  // float32: the training dtype
            groups[String(name.dropLast(".safetensors".count))] = tensors
        }
        let configURL = folder.appendingPathComponent(ConfigFile.defaultFileName)
        let config = fm.fileExists(atPath: configURL.path) ? try Data(contentsOf: configURL) : nil
        return TrainingSnapshot(groups: groups, state: state, configJSON: config)
    }

    private func write(_ snapshot: TrainingSnapshot) throws {
        let fm = FileManager.default
        let name = Self.folderName(step: snapshot.state.step)
        let temporary = directory.appendingPathComponent(".\(name).tmp-\(getpid())")
        try? fm.removeItem(at: temporary)
        try fm.createDirectory(at: temporary, withIntermediateDirectories: true)
        for (groupName, tensors) in snapshot.groups {
            try SafeTensors.write(
                tensors, metadata: ["format": "pt", "step": "\(snapshot.state.step)"],
                to: temporary.appendingPathComponent("\(groupName).safetensors"))
        }
        if let config = snapshot.configJSON {
            try config.write(to: temporary.appendingPathComponent(ConfigFile.defaultFileName), options: .atomic)
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try encoder.encode(snapshot.state).write(to: temporary.appendingPathComponent("state.json"), options: .atomic)
        let final = directory.appendingPathComponent(name)
        try AtomicFile.replaceFolder(final, with: temporary)
        let all = try checkpoints()
        for old in all.dropLast(keepLast) { try? fm.removeItem(at: old.url) }
    }
}
