import Checkpoint
import Foundation
import TensorCore

/// A content-addressed on-disk cache of caption encodings, so training encodes each caption once.
///
/// An entry's key is the SHA-256 of (model identity, max length, text); it lives at `<dir>/<k[0..2]>/<k>.safetensors`
/// holding `hidden_states` (L, D) and `attention_mask` (L) as float32, written atomically. Its metadata records the
/// key and a SHA-256 checksum of the two tensors' bytes; an entry that cannot be read, belongs to another key or fails
/// its checksum is treated as missing (counted in `corruptCount`), recomputed and rewritten.
public final class CaptionCache {
    /// One cached encoding.
    public struct Entry {
        /// (L, D) float32.
        public let hiddenStates: Tensor
        /// L values, 1 for tokens and 0 for padding.
        public let attentionMask: [Int]
    }

    /// The cache folder.
    public let directory: URL
    /// Hex digest identifying the model (see `modelIdentity`).
    public let modelIdentity: String
    /// The max length the entries were encoded with.
    public let maxLength: Int
    /// Lookups answered from disk.
    public private(set) var hitCount = 0
    /// Lookups that had to compute.
    public private(set) var missCount = 0
    /// Entries found corrupt (then recomputed).
    public private(set) var corruptCount = 0

    /// A cache in `directory` (created if needed).
    /// - Throws: `CheckpointError.io` naming the folder when it cannot be created.
    public init(directory: URL, modelIdentity: String, maxLength: Int) throws {
        self.directory = directory
        self.modelIdentity = modelIdentity
        self.maxLength = maxLength
        do { try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true) } catch {
            throw CheckpointError.io(file: directory.path, reason: "cannot create: \(error.localizedDescription)")
        }
    }

    /// The identity of a model from its config and every weight (names, dtypes, shapes and bytes, in name order).
    /// Reads all weights once: for large models prefer `modelIdentity(config:id:)` with a release name.
    public static func modelIdentity(config: T5Config, weights: any TensorSource) throws -> String {
        var hash = SHA256()
        hash.update(try configText(config))
        for name in weights.names {
            let info = try weights.info(name)
            hash.update("\0\(name)\0\(info.dtype.rawValue)\0\(info.shape)\0")
            if let file = weights as? SafeTensorsFile {
                try file.withRawBytes(name) { hash.update($0) }
            } else {
                let t = try weights.tensor(name, as: .float32)
                t.withPointer(as: Float.self) { hash.update(UnsafeRawBufferPointer(start: $0, count: t.count * 4)) }
            }
        }
        return SHA256.hex(hash.finalize())
    }

    /// The identity of a model from its config and a caller-given name (e.g. "google/flan-t5-xl@<revision>").
    public static func modelIdentity(config: T5Config, id: String) throws -> String {
        var hash = SHA256()
        hash.update(try configText(config))
        hash.update("\0id\0" + id)
        return SHA256.hex(hash.finalize())
    }

    private static func configText(_ config: T5Config) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return String(decoding: try encoder.encode(config), as: UTF8.self)
    }

    /// The key of `text`: hex SHA-256 of identity, max length and text.
    public func key(for text: String) -> String {
        var hash = SHA256()
        hash.update("\(modelIdentity)\0\(maxLength)\0")
        hash.update(text)
        return SHA256.hex(hash.finalize())
    }

    /// Where the entry of `key` lives.
    public func url(forKey key: String) -> URL {
        directory.appendingPathComponent(String(key.prefix(2))).appendingPathComponent("\(key).safetensors")
    }

    /// The cached entry of `text`, or nil when absent or corrupt.
    public func lookup(_ text: String) -> Entry? {
        let key = key(for: text)
        let url = url(forKey: key)
        guard FileManager.default.fileExists(atPath: url.path) else { return nil }
        guard let entry = try? read(url, key: key) else {
            corruptCount += 1
            try? FileManager.default.removeItem(at: url)
            return nil
        }
        return entry
    }

    /// Writes the entry of `text` atomically.
    /// - Parameters: hiddenStates: (L, D); attentionMask: L values.
    public func store(_ text: String, hiddenStates: Tensor, attentionMask: [Int]) throws {
        precondition(hiddenStates.rank == 2 && hiddenStates.shape[0] == attentionMask.count, "store: shapes differ")
        let key = key(for: text)
        let url = url(forKey: key)
        do {
            try FileManager.default.createDirectory(
                at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        } catch {
            throw CheckpointError.io(file: url.path, reason: "cannot create folder: \(error.localizedDescription)")
        }
        let hidden = hiddenStates.dtype == .float32 ? hiddenStates : hiddenStates.to(.float32)
        let mask = Tensor(shape: [attentionMask.count], scalars: attentionMask.map(Float.init))
        let checksum = Self.checksum(hidden, mask)
        try SafeTensors.write(
            ["hidden_states": hidden, "attention_mask": mask], metadata: ["key": key, "sha256": checksum], to: url)
    }

    /// The encodings of `texts`, from the cache where present, else computed in one batch by `compute` (which gets
    /// the missing texts and returns (B, L, D) hidden states and B masks) and stored.
    public func encodings(
        for texts: [String], compute: ([String]) throws -> (hiddenStates: Tensor, attentionMask: [[Int]])
    ) throws -> [Entry] {
        var result = texts.map { lookup($0) }
        let missing = result.indices.filter { result[$0] == nil }
        hitCount += texts.count - missing.count
        missCount += missing.count
        guard !missing.isEmpty else { return result.map { $0! } }
        let computed = try compute(missing.map { texts[$0] })
        for (row, index) in missing.enumerated() {
            let hidden = computed.hiddenStates.slice(axis: 0, row, row + 1).squeeze(0).copy()
            let entry = Entry(hiddenStates: hidden, attentionMask: computed.attentionMask[row])
            try store(texts[index], hiddenStates: entry.hiddenStates, attentionMask: entry.attentionMask)
            result[index] = entry
        }
        return result.map { $0! }
    }

    private func read(_ url: URL, key: String) throws -> Entry {
        let file = try SafeTensorsFile(url: url)
        guard file.metadata?["key"] == key, let stored = file.metadata?["sha256"] else {
            throw CheckpointError.invalidHeader(file: url.path, reason: "key or checksum missing")
        }
        let hidden = try file.tensor("hidden_states", as: .float32)
        let mask = try file.tensor("attention_mask", as: .float32)
        guard hidden.rank == 2, mask.shape == [hidden.shape[0]], Self.checksum(hidden, mask) == stored else {
            throw CheckpointError.invalidHeader(file: url.path, reason: "checksum mismatch")
        }
        return Entry(hiddenStates: hidden, attentionMask: mask.scalars.map { Int($0) })
    }

    private static func checksum(_ hidden: Tensor, _ mask: Tensor) -> String {
        var hash = SHA256()
        for t in [hidden, mask] {
            t.withPointer(as: Float.self) { hash.update(UnsafeRawBufferPointer(start: $0, count: t.count * 4)) }
        }
        return SHA256.hex(hash.finalize())
    }
}
