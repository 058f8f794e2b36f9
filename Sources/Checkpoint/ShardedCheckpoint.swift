import Foundation
import TensorCore

/// A Hugging Face sharded checkpoint: `model.safetensors.index.json` plus the shard files it names.
///
/// The index is `{"metadata": {"total_size": N, …}, "weight_map": {tensor name: shard file name}}`. Opening reads and
/// validates only the index (shard names must be plain file names in the index's folder: no `/`, no `..`); each shard
/// is opened (memory-mapped and validated) the first time one of its tensors is asked for, then kept open. Safe to use
/// from several threads.
public final class ShardedCheckpoint: TensorSource, @unchecked Sendable {
    /// The index file's path (used in error messages about the index).
    public let path: String
    /// The folder holding the index and the shards.
    public let folder: URL
    /// Shard file name of every tensor.
    public let weightMap: [String: String]
    /// The tensor names, sorted.
    public let names: [String]
    /// The distinct shard file names, sorted.
    public let shardFiles: [String]
    /// `metadata.total_size` of the index (bytes of tensor data, as written by `transformers`), if present.
    public let totalSize: Int?

    private let lock = NSLock()
    private var openShards: [String: SafeTensorsFile] = [:]

    /// Reads and validates the index at `indexURL`; no shard is opened yet.
    /// - Throws: `CheckpointError.invalidIndex` or `.io`, naming the index file.
    public init(indexURL: URL) throws {
        path = indexURL.path
        folder = indexURL.deletingLastPathComponent()
        let bytes: [UInt8]
        do {
            bytes = Array(try Data(contentsOf: indexURL))
        } catch {
            throw CheckpointError.io(file: indexURL.path, reason: "cannot read: \(error.localizedDescription)")
        }
        let json: JSONValue
        do {
            json = try JSONParser.parse(bytes)
        } catch let error as JSONSyntaxError {
            throw CheckpointError.invalidIndex(
                file: path, reason: "JSON error at byte \(error.offset): \(error.message)")
        }
        guard case .object(let members)? = json["weight_map"] else {
            throw CheckpointError.invalidIndex(
                file: path, reason: "'weight_map' is \(json["weight_map"]?.typeName ?? "missing"), expected an object")
        }
        var map: [String: String] = [:]
        for (name, value) in members {
            guard case .string(let file) = value else {
                throw CheckpointError.invalidIndex(
                    file: path, reason: "weight_map entry '\(name)' is \(value.typeName), expected a file name")
            }
            guard !file.isEmpty, !file.contains("/"), file != ".", file != ".." else {
                throw CheckpointError.invalidIndex(
                    file: path, reason: "weight_map entry '\(name)' names '\(file)', which is not a file in the folder")
            }
            map[name] = file
        }
        switch json["metadata"]?["total_size"] {
        case .integer(let n)?: totalSize = n
        // Some writers store the size as a float (e.g. 1.2e9); keep it when it is a whole number.
        case .number(let x)? where x == x.rounded() && x >= 0 && x < 9e18: totalSize = Int(x)
        default: totalSize = nil
        }
        weightMap = map
        names = map.keys.sorted()
        shardFiles = Set(map.values).sorted()
    }

    /// Whether the index lists a tensor called `name`.
    public func contains(_ name: String) -> Bool { weightMap[name] != nil }

    /// The shard file `fileName` (one of `shardFiles`), opened and validated on first use.
    public func shard(_ fileName: String) throws -> SafeTensorsFile {
        lock.lock()
        defer { lock.unlock() }
        if let file = openShards[fileName] { return file }
        let file = try SafeTensorsFile(url: folder.appendingPathComponent(fileName))
        openShards[fileName] = file
        return file
    }

    /// The shard holding `name`, after checking that it really does.
    private func shard(holding name: String) throws -> SafeTensorsFile {
        guard let fileName = weightMap[name] else { throw CheckpointError.missingTensor(file: path, key: name) }
        let file = try shard(fileName)
        guard file.contains(name) else {
            throw CheckpointError.invalidIndex(
                file: path, reason: "weight_map puts tensor '\(name)' in \(fileName), which has no such tensor")
        }
        return file
    }

    /// The stored dtype, shape and byte range (within its shard) of tensor `name`.
    public func info(_ name: String) throws -> SafeTensorsInfo { try shard(holding: name).info(name) }

    /// Tensor `name` converted to `dtype`, read from its shard.
    public func tensor(_ name: String, as dtype: DType) throws -> Tensor {
        try shard(holding: name).tensor(name, as: dtype)
    }

    /// Opens every shard and checks that the shards hold exactly the tensors the index assigns to them.
    /// - Throws: `CheckpointError.invalidIndex` listing the shards that cannot be opened, the tensors missing from
    ///   their shard, and those not in the index.
    public func verifyShards() throws {
        var problems: [String] = []
        for fileName in shardFiles {
            let file: SafeTensorsFile
            do {
                file = try shard(fileName)
            } catch let error as CheckpointError {
                problems.append(error.description)
                continue
            }
            let listed = Set(weightMap.filter { $0.value == fileName }.keys)
            let missing = listed.filter { !file.contains($0) }.sorted()
            let extra = file.names.filter { !listed.contains($0) }
            if !missing.isEmpty {
                problems.append("\(fileName) lacks " + missing.map { "'\($0)'" }.joined(separator: ", "))
            }
            if !extra.isEmpty {
                problems.append(
                    "\(fileName) holds tensors not in the index: " + extra.map { "'\($0)'" }.joined(separator: ", "))
            }
        }
        if !problems.isEmpty {
            throw CheckpointError.invalidIndex(file: path, reason: problems.joined(separator: "; "))
        }
    }
}

extension ShardedCheckpoint {
    /// Writes `tensors` into `folder` as Hugging Face shards of at most `maxShardBytes` bytes of tensor data each.
    ///
    /// Splitting follows `huggingface_hub.split_torch_state_dict_into_shards`: tensors are taken in name order (UTF-8
    /// byte order); one that would push the current shard over the limit starts a new shard, and a tensor larger than
    /// the limit gets a shard of its own. With one shard the result is a plain `model.safetensors` and no index;
    /// otherwise `model-0000k-of-0000n.safetensors` plus `model.safetensors.index.json` (formatted like
    /// `transformers`: 2-space indent, sorted keys, trailing newline). Every file is written atomically and the index
    /// last, then weights files of an earlier save that are no longer referenced are removed, so the folder never
    /// points at a shard that is not complete.
    /// - Parameters:
    ///   - tensors: the state dict.
    ///   - folder: created if missing.
    ///   - maxShardBytes: the shard size limit (tensor data bytes, headers not counted).
    ///   - metadata: `__metadata__` of every shard (`transformers` writes `["format": "pt"]`).
    ///   - dtype: when set, tensors are converted to it on the way.
    /// - Returns: the names of the files written (shards, then the index when there is one).
    @discardableResult
    public static func write(
        _ tensors: [String: Tensor], to folder: URL, maxShardBytes: Int, metadata: [String: String]? = ["format": "pt"],
        as dtype: DType? = nil
    ) throws -> [String] {
        precondition(maxShardBytes > 0, "ShardedCheckpoint.write: maxShardBytes must be positive, got \(maxShardBytes)")
        do {
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        } catch {
            throw CheckpointError.io(file: folder.path, reason: "cannot create folder: \(error.localizedDescription)")
        }
        let shards = split(tensors, maxShardBytes: maxShardBytes, dtype: dtype)
        var written: [String] = []
        if shards.count == 1 {
            try SafeTensors.write(
                tensors, metadata: metadata, as: dtype, to: folder.appendingPathComponent(StateDict.weightsFileName))
            written.append(StateDict.weightsFileName)
        } else {
            var weightMap: [(key: String, value: JSONValue)] = []
            var totalSize = 0
            for (k, names) in shards.enumerated() {
                let fileName = String(format: "model-%05d-of-%05d.safetensors", k + 1, shards.count)
                var shard: [String: Tensor] = [:]
                for name in names {
                    shard[name] = tensors[name]
                    weightMap.append((name, .string(fileName)))
                    totalSize += tensors[name]!.count * (dtype ?? tensors[name]!.dtype).byteCount
                }
                try SafeTensors.write(shard, metadata: metadata, as: dtype, to: folder.appendingPathComponent(fileName))
                written.append(fileName)
            }
            let index = JSONValue.object([
                ("metadata", .object([("total_size", .integer(totalSize))])), ("weight_map", .object(weightMap)),
            ])
            let text = PythonJSON.format(index) + "\n"
            try AtomicFile.write(to: folder.appendingPathComponent(StateDict.indexFileName)) {
                try $0.write(Array(text.utf8))
            }
            written.append(StateDict.indexFileName)
        }
        removeStaleWeights(in: folder, keeping: Set(written))
        return written
    }

    /// Tensor names grouped into shards, in the order `huggingface_hub` produces.
    static func split(_ tensors: [String: Tensor], maxShardBytes: Int, dtype: DType?) -> [[String]] {
        var shards: [[String]] = []
        var current: [String] = []
        var currentSize = 0
        for name in tensors.keys.sorted(by: { $0.utf8.lexicographicallyPrecedes($1.utf8) }) {
            let tensor = tensors[name]!
            let size = tensor.count * (dtype ?? tensor.dtype).byteCount
            if size > maxShardBytes {
                shards.append([name])
                continue
            }
            if currentSize + size > maxShardBytes {
                shards.append(current)
                current = []
                currentSize = 0
            }
            current.append(name)
            currentSize += size
        }
        if !current.isEmpty || shards.isEmpty { shards.append(current) }
        return shards
    }

    /// Removes `model.safetensors`, the index and `model-*-of-*.safetensors` files not in `keeping`.
    private static func removeStaleWeights(in folder: URL, keeping: Set<String>) {
        guard let contents = try? FileManager.default.contentsOfDirectory(atPath: folder.path) else { return }
        for name in contents where !keeping.contains(name) {
            let isShard = name.hasPrefix("model-") && name.hasSuffix(".safetensors") && name.contains("-of-")
            if isShard || name == StateDict.weightsFileName || name == StateDict.indexFileName {
                try? FileManager.default.removeItem(at: folder.appendingPathComponent(name))
            }
        }
    }
}
