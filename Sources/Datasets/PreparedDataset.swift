import Checkpoint
import Foundation
import TensorCore

/// A dataset folder encoded once for training (`goku data prepare`): VAE latents at each sample's own resolution and
/// length, and text states when the text encoder is frozen, in safetensors shards that training streams.
///
/// Layout of a prepared folder:
/// - `plan.json`: written first. The identity (`PreparedIdentity`: the VAE's and text encoder's digests, the framing
///   policy, the manifest's digest), the samples in manifest order, and their split into shards (consecutive samples,
///   about `shardBytes` each by the probe's estimate).
/// - `shard-00000.safetensors`, …: per sample `i` (its index in the plan) `i.mean` (C, T, h, w), the posterior mean of
///   the VAE, scaled as the transformer sees latents (`VideoAutoencoder.scaleLatent`); `i.std`, the posterior's standard
///   deviation on the same scale; `i.text` (Ltext, D), the text states of the caption's real tokens when a frozen encoder
///   was given. Metadata: the key, `first` and `count`. Each shard is written to a temporary file and renamed, so a shard
///   present is complete; a killed run redoes only the shards that are missing.
/// - `index.json`: written last, when every shard is present: the plan plus each sample's latent shape. A folder
///   without it is unfinished; readers refuse it.
/// The whole folder is named by `PreparedIdentity.key`, so latents of a changed VAE, text encoder, policy or manifest
/// are never mixed with old ones.
public enum PreparedDataset {
    /// The format name written into `plan.json` and `index.json`.
    public static let formatName = "goku-prepared"
    /// The format version.
    public static let formatVersion = 1
    /// The plan's file name.
    public static let planName = "plan.json"
    /// The index's file name (present when the folder is complete).
    public static let indexName = "index.json"

    /// The file name of shard `number`.
    public static func shardName(_ number: Int) -> String { "shard-" + String(format: "%05d", number) + ".safetensors" }
}

/// What a prepared folder was made from and how; two folders with the same key hold the same tensors.
public struct PreparedIdentity: Codable, Equatable, Sendable {
    /// SHA-256 of the VAE's config and weights.
    public var vae: String
    /// SHA-256 of the frozen text encoder's config, tokenizer and weights; nil when captions are kept as text only.
    public var textEncoder: String?
    /// Longest text in tokens when text states are stored.
    public var maxTextLength: Int?
    /// The resize, crop and frame policy.
    public var framing: MediaFraming
    /// SHA-256 of the manifest's bytes.
    public var manifest: String

    /// An identity; see the properties.
    public init(vae: String, textEncoder: String?, maxTextLength: Int?, framing: MediaFraming, manifest: String) {
        self.vae = vae
        self.textEncoder = textEncoder
        self.maxTextLength = maxTextLength
        self.framing = framing
        self.manifest = manifest
    }

    /// A 16-hex-digit digest of every field: the prepared folder's name.
    public var key: String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        let bytes = Array((try? encoder.encode(self)) ?? Data())
        return String(SHA256.hex(SHA256.hash(bytes)).prefix(16))
    }
}

/// One sample of a prepared dataset.
public struct PreparedSample: Codable, Equatable, Sendable {
    /// 1-based line of the manifest row.
    public var line: Int
    /// The media file, relative to the dataset folder.
    public var file: String
    /// The caption.
    public var caption: String
    /// Sampling weight from the manifest (1 when absent).
    public var weight: Double
    /// Balancing category.
    public var category: String?
    /// The latent's shape (C, T, h, w): filled in by `index.json`, nil in the plan.
    public var latentShape: [Int]?
    /// The shard holding the sample.
    public var shard: Int

    /// A sample; see the properties.
    public init(
        line: Int, file: String, caption: String, weight: Double, category: String?, latentShape: [Int]?, shard: Int
    ) {
        self.line = line
        self.file = file
        self.caption = caption
        self.weight = weight
        self.category = category
        self.latentShape = latentShape
        self.shard = shard
    }

    /// Whether the sample is an image (one latent frame).
    public var isImage: Bool { latentShape.map { $0[1] == 1 } ?? false }

    /// Tokens in a packed sequence with patches of `patchSize` (t, h, w).
    public func tokens(patchSize: [Int]) -> Int {
        guard let s = latentShape else { return 0 }
        return (s[1] / patchSize[0]) * (s[2] / patchSize[1]) * (s[3] / patchSize[2])
    }
}

/// A shard's range of samples.
public struct PreparedShard: Codable, Equatable, Sendable {
    /// The first sample's index.
    public var first: Int
    /// Samples in the shard.
    public var count: Int
    /// A range.
    public init(first: Int, count: Int) {
        self.first = first
        self.count = count
    }
}

/// The contents of `plan.json` and `index.json`.
public struct PreparedManifest: Codable, Equatable, Sendable {
    /// `PreparedDataset.formatName`.
    public var format: String
    /// `PreparedDataset.formatVersion`.
    public var version: Int
    /// What the folder was made from.
    public var identity: PreparedIdentity
    /// `identity.key`.
    public var key: String
    /// The dataset folder (absolute path) the samples came from.
    public var source: String
    /// Manifest rows skipped as bad (`--skip-bad`).
    public var skippedRows: Int
    /// The samples in manifest order.
    public var samples: [PreparedSample]
    /// The shards.
    public var shards: [PreparedShard]

    /// Splits `samples` into shards of consecutive samples of about `shardBytes` each.
    /// - Parameter estimatedBytes: the bytes a sample will take.
    public static func plan(
        identity: PreparedIdentity, source: URL, skippedRows: Int, samples: [PreparedSample], shardBytes: Int,
        estimatedBytes: (Int) -> Int
    ) -> PreparedManifest {
        var samples = samples
        var shards: [PreparedShard] = []
        var bytes = 0
        for i in samples.indices {
            if shards.isEmpty || (bytes > 0 && bytes + estimatedBytes(i) > shardBytes) {
                shards.append(PreparedShard(first: i, count: 0))
                bytes = 0
            }
            shards[shards.count - 1].count += 1
            bytes += estimatedBytes(i)
            samples[i].shard = shards.count - 1
        }
        return PreparedManifest(
            format: PreparedDataset.formatName, version: PreparedDataset.formatVersion, identity: identity,
            key: identity.key, source: source.standardizedFileURL.path, skippedRows: skippedRows, samples: samples,
            shards: shards)
    }

    /// Reads `plan.json` or `index.json`; throws `DatasetError.prepared` naming the file when it is not one.
    public static func read(_ url: URL) throws -> PreparedManifest {
        let manifest: PreparedManifest
        do { manifest = try JSONDecoder().decode(PreparedManifest.self, from: Data(contentsOf: url)) } catch {
            throw DatasetError.prepared(path: url.path, reason: "unreadable: \(error)")
        }
        guard manifest.format == PreparedDataset.formatName, manifest.version == PreparedDataset.formatVersion else {
            throw DatasetError.prepared(
                path: url.path, reason: "format \(manifest.format) v\(manifest.version), expected "
                    + "\(PreparedDataset.formatName) v\(PreparedDataset.formatVersion)")
        }
        guard manifest.key == manifest.identity.key else {
            throw DatasetError.prepared(path: url.path, reason: "its key does not match its identity")
        }
        return manifest
    }

    /// Writes the file atomically.
    public func write(to url: URL) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        try AtomicFile.write(encoder.encode(self), to: url)
    }
}

/// A complete prepared folder, read sample by sample.
///
/// Only `index.json` is read when opening. A shard's header is parsed the first time one of its samples is asked for
/// and kept (shuffled batches jump between shards, and parsing a header of thousands of entries per batch would cost
/// more than the step); tensors are read with positional reads (`SafeTensorsFile.readTensor`), not through the map, so
/// no shard page stays resident (through a map, the kernel's fault-around of neighbouring pages grew the resident set
/// with every sample touched). Memory therefore does not grow with the dataset beyond the index. Safe to use from one
/// thread at a time (the prefetcher's).
public final class PreparedReader: @unchecked Sendable {
    /// The folder.
    public let directory: URL
    /// Its index.
    public let manifest: PreparedManifest
    private var mapped: [Int: SafeTensorsFile] = [:]

    /// Opens a complete prepared folder.
    /// - Throws: `DatasetError.prepared` when `index.json` is missing (an unfinished `goku data prepare`) or bad.
    public init(directory: URL) throws {
        self.directory = directory
        let url = directory.appendingPathComponent(PreparedDataset.indexName)
        guard FileManager.default.fileExists(atPath: url.path) else {
            throw DatasetError.prepared(
                path: directory.path, reason: "no \(PreparedDataset.indexName): unfinished (run goku data prepare again)")
        }
        manifest = try PreparedManifest.read(url)
        guard manifest.samples.allSatisfy({ $0.latentShape?.count == 4 }) else {
            throw DatasetError.prepared(path: url.path, reason: "a sample without its latent shape")
        }
    }

    /// The latent mean and standard deviation (C, T, h, w) and the stored text states (Ltext, D) of sample `index`.
    public func tensors(of index: Int) throws -> (mean: Tensor, std: Tensor, text: Tensor?) {
        let sample = manifest.samples[index]
        let file = try shardFile(sample.shard)
        func read(_ name: String) throws -> Tensor { try file.readTensor(name) }
        let mean = try read("\(index).mean"), std = try read("\(index).std")
        guard mean.shape == sample.latentShape, std.shape == sample.latentShape else {
            throw DatasetError.prepared(path: file.path, reason: "sample \(index) does not have the indexed shape")
        }
        return (mean, std, file.contains("\(index).text") ? try read("\(index).text") : nil)
    }

    private func shardFile(_ shard: Int) throws -> SafeTensorsFile {
        if let file = mapped[shard] { return file }
        let url = directory.appendingPathComponent(PreparedDataset.shardName(shard))
        let file = try SafeTensorsFile(url: url)
        guard file.metadata?["key"] == manifest.key else {
            throw DatasetError.prepared(path: url.path, reason: "belongs to another prepared dataset")
        }
        mapped[shard] = file
        return file
    }
}
