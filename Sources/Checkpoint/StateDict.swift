import Foundation
import TensorCore

/// Something that serves named tensors: one safetensors file (`SafeTensorsFile`) or a sharded folder
/// (`ShardedCheckpoint`).
public protocol TensorSource: AnyObject, Sendable {
    /// The file (or index) path, as used in error messages.
    var path: String { get }
    /// The tensor names, sorted.
    var names: [String] { get }
    /// Whether a tensor called `name` exists.
    func contains(_ name: String) -> Bool
    /// The stored dtype, shape and byte range of tensor `name`; throws `missingTensor` when there is none.
    func info(_ name: String) throws -> SafeTensorsInfo
    /// Tensor `name` converted to `dtype`.
    func tensor(_ name: String, as dtype: DType) throws -> Tensor
}

extension TensorSource {
    /// Tensor `name` as float32.
    public func tensor(_ name: String) throws -> Tensor { try tensor(name, as: .float32) }

    /// Tensor `name`, after checking that its shape is `expectedShape`.
    /// - Throws: `CheckpointError.shapeMismatch` naming the file and key, or `missingTensor`.
    public func tensor(_ name: String, shape expectedShape: [Int], as dtype: DType = .float32) throws -> Tensor {
        let stored = try info(name).shape
        guard stored == expectedShape else {
            throw CheckpointError.shapeMismatch(file: path, key: name, found: stored, expected: expectedShape)
        }
        return try tensor(name, as: dtype)
    }

    /// Every tensor, converted to `dtype`, keyed by name.
    public func tensors(as dtype: DType = .float32) throws -> [String: Tensor] {
        var result: [String: Tensor] = [:]
        for name in names { result[name] = try tensor(name, as: dtype) }
        return result
    }

    /// Checks the stored keys and shapes against `expected`; see `StateDict.validate(expected:against:)`.
    public func validate(expected: [String: [Int]]) throws {
        var missing: [String] = []
        var mismatched: [CheckpointError.ShapeMismatch] = []
        for (key, shape) in expected.sorted(by: { $0.key < $1.key }) {
            guard contains(key) else {
                missing.append(key)
                continue
            }
            let found = try info(key).shape
            if found != shape { mismatched.append(.init(key: key, found: found, expected: shape)) }
        }
        let unexpected = names.filter { expected[$0] == nil }
        if !missing.isEmpty || !unexpected.isEmpty || !mismatched.isEmpty {
            throw CheckpointError.stateDictMismatch(
                file: path, missing: missing, unexpected: unexpected, mismatched: mismatched)
        }
    }
}

/// Opening, loading and checking checkpoints, whatever their layout.
///
/// A checkpoint is either one `.safetensors` file, or a Hugging Face model folder holding `model.safetensors` or a
/// sharded `model.safetensors.index.json` with its `model-0000k-of-0000n.safetensors` shards (the index wins when
/// both are present, as in `transformers`).
public enum StateDict {
    /// The single-file weights name of a Hugging Face folder.
    public static let weightsFileName = "model.safetensors"
    /// The index name of a sharded Hugging Face folder.
    public static let indexFileName = "model.safetensors.index.json"

    /// Opens the checkpoint at `url`: a `.safetensors` file, an `.index.json` file, or a folder.
    /// - Throws: `CheckpointError` naming the file, or `.io` when a folder holds neither weights file.
    public static func open(_ url: URL) throws -> any TensorSource {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: url.path, isDirectory: &isDirectory) else {
            throw CheckpointError.io(file: url.path, reason: "no such file or folder")
        }
        if !isDirectory.boolValue {
            return url.lastPathComponent.hasSuffix(".index.json")
                ? try ShardedCheckpoint(indexURL: url) : try SafeTensorsFile(url: url)
        }
        let index = url.appendingPathComponent(indexFileName)
        if FileManager.default.fileExists(atPath: index.path) { return try ShardedCheckpoint(indexURL: index) }
        let single = url.appendingPathComponent(weightsFileName)
        if FileManager.default.fileExists(atPath: single.path) { return try SafeTensorsFile(url: single) }
        throw CheckpointError.io(file: url.path, reason: "folder has neither \(weightsFileName) nor \(indexFileName)")
    }

    /// Every tensor of the checkpoint at `url` (file or folder), converted to `dtype`, keyed by name.
    public static func loadTensors(from url: URL, as dtype: DType = .float32) throws -> [String: Tensor] {
        try open(url).tensors(as: dtype)
    }

    /// Checks that the checkpoint at `url` holds exactly the keys of `expected`, with those shapes.
    /// - Throws: one `CheckpointError.stateDictMismatch` listing every missing, unexpected and mis-shaped key.
    public static func validate(expected: [String: [Int]], against url: URL) throws {
        try open(url).validate(expected: expected)
    }

    /// Checks that `source` holds exactly the keys of `expected`, with those shapes.
    /// - Throws: one `CheckpointError.stateDictMismatch` listing every missing, unexpected and mis-shaped key.
    public static func validate(expected: [String: [Int]], against source: any TensorSource) throws {
        try source.validate(expected: expected)
    }
}
