import Checkpoint
import Datasets
import Foundation
import TensorCore
import TextEncoder
import Training
import VideoIO
import VideoVAE

/// Encodes dataset folders once for training (`goku data prepare`): VAE posteriors at each sample's own resolution and
/// length under a `MediaFraming`, and text states when the text encoder is frozen, into a `PreparedDataset` folder.
///
/// The work is split into shards planned up front (`plan.json`), so it is resumable (a shard present is complete; a
/// killed run redoes only missing shards and produces the same bytes) and parallel (`encodeShards(selecting:)` takes
/// any subset, so several processes can share one plan; `goku data prepare --jobs N` starts N). The VAE runs in
/// inference mode and its posterior is stored whole (mean and standard deviation, scaled as the transformer sees
/// latents); training takes the mean (the mode, the default) or draws from it (`latentSampling`).
public final class DatasetPreparer {
    /// The VAE, frozen.
    public let vae: VideoAutoencoder
    /// Its digest (config and weights).
    public let vaeIdentity: String
    /// The frozen text encoder whose states are stored, if any.
    public let text: TextConditioning?
    /// Its digest (every file of its folder).
    public let textIdentity: String?
    /// Target shard size in bytes (by the plan's estimate), e.g. 256 MiB.
    public var shardBytes = 256 << 20

    /// A preparer over loaded models.
    public init(vae: VideoAutoencoder, vaeIdentity: String, text: TextConditioning?, textIdentity: String?) {
        self.vae = vae
        self.vaeIdentity = vaeIdentity
        self.text = text
        self.textIdentity = textIdentity
    }

    /// Loads the VAE (and the text encoder, whose states will be stored) from their folders.
    public convenience init(vaeFolder: URL, textEncoderFolder: URL?, maxTextLength: Int) throws {
        let vae = try VideoAutoencoder.load(from: vaeFolder)
        vae.setTraining(false)
        var text: TextConditioning?
        if let textEncoderFolder {
            text = TextConditioning(
                try T5TextEncoder.load(from: textEncoderFolder, maxLength: maxTextLength), tokenizerFolder: textEncoderFolder)
        }
        self.init(
            vae: vae, vaeIdentity: try DatasetPreparer.vaeIdentity(ofFolder: vaeFolder), text: text,
            textIdentity: try textEncoderFolder.map(Self.digest(ofFolder:)))
    }

    /// The identity of `folder` prepared under `framing` with these models.
    public func identity(of folder: DatasetFolder, framing: MediaFraming) -> PreparedIdentity {
        identity(manifestBytes: folder.manifestBytes, framing: framing)
    }

    /// The identity of the dataset whose manifest holds `manifestBytes`, prepared under `framing` with these models
    /// (found without opening the media, to look for a prepared copy).
    public func identity(manifestBytes: Data, framing: MediaFraming) -> PreparedIdentity {
        PreparedIdentity(
            vae: vaeIdentity, textEncoder: textIdentity, maxTextLength: text?.maxLength, framing: framing,
            manifest: SHA256.hex(SHA256.hash(Array(manifestBytes))))
    }

    /// Where a dataset's prepared copy lives unless told otherwise: `<dataset>/.prepared/<key>`.
    public static func defaultLocation(dataset: URL, key: String) -> URL {
        dataset.appendingPathComponent(".prepared").appendingPathComponent(key)
    }

    /// Prepares `folder` into `output` in this process (or finds it done) and opens it.
    public func prepare(
        _ folder: DatasetFolder, framing: MediaFraming, output: URL, showProgress: Bool = true,
        progressOutput: FileHandle = .standardError
    ) throws -> PreparedReader {
        if let done = try? PreparedReader(directory: output), done.manifest.key == identity(of: folder, framing: framing).key {
            return done
        }
        let plan = try self.plan(folder, framing: framing, output: output)
        try encodeShards(plan, folder: folder, output: output, showProgress: showProgress, progressOutput: progressOutput)
        return try finish(plan, output: output)
    }

    /// Reads `output/plan.json`, or plans the shards and writes it.
    /// - Throws: `DatasetError.prepared` when `output` holds a plan of other data, models or settings.
    public func plan(_ folder: DatasetFolder, framing: MediaFraming, output: URL) throws -> PreparedManifest {
        try framing.validate()
        let identity = identity(of: folder, framing: framing)
        let url = output.appendingPathComponent(PreparedDataset.planName)
        if FileManager.default.fileExists(atPath: url.path) {
            let plan = try PreparedManifest.read(url)
            guard plan.key == identity.key else {
                throw DatasetError.prepared(
                    path: output.path, reason: "holds another preparation (key \(plan.key), this one is \(identity.key)): "
                        + "use another output folder")
            }
            guard plan.samples.map(\.line) == folder.rows.map(\.line) else {
                throw DatasetError.prepared(
                    path: output.path, reason: "was planned with other rows skipped; use the same --skip-bad setting or another output folder")
            }
            return plan
        }
        do { try FileManager.default.createDirectory(at: output, withIntermediateDirectories: true) } catch {
            throw DatasetError.io(path: output.path, reason: "cannot create: \(error.localizedDescription)")
        }
        let samples = folder.rows.map { row in
            PreparedSample(
                line: row.line, file: row.entry.file, caption: row.entry.caption, weight: row.entry.weight ?? 1,
                category: row.entry.category, latentShape: nil, shard: 0)
        }
        let channels = vae.config.latentChannels, s = vae.config.spatialCompression
        let textBytes = text.map { $0.maxLength * $0.dimension * 4 } ?? 0
        let plan = PreparedManifest.plan(
            identity: identity, source: folder.directory, skippedRows: folder.skipped.count, samples: samples,
            shardBytes: shardBytes
        ) { i in
            let info = folder.rows[i].info
            guard let g = framing.geometry(width: info.width, height: info.height) else { return 0 }
            let rate = min(framing.framesPerSecond ?? info.framesPerSecond, max(info.framesPerSecond, 1))
            let frames = MediaFraming.isStillImage(folder.url(of: folder.rows[i]))
                ? 1 : framing.frameCount(available: Int(info.duration * rate))
            return 2 * 4 * channels * vae.config.latentFrames(forFrames: frames) * (g.height / s) * (g.width / s) + textBytes
        }
        try plan.write(to: url)
        return plan
    }

    /// Encodes every missing shard of `plan` that `selecting` accepts (by shard number).
    public func encodeShards(
        _ plan: PreparedManifest, folder: DatasetFolder, output: URL, selecting: (Int) -> Bool = { _ in true },
        showProgress: Bool = true, progressOutput: FileHandle = .standardError
    ) throws {
        let todo = plan.shards.indices.filter { selecting($0) && !shardIsComplete($0, plan: plan, output: output) }
        let total = todo.reduce(0) { $0 + plan.shards[$1].count }
        guard total > 0 else { return }
        let bar = ProgressBar(total: total, label: "prepare", output: progressOutput, interactive: showProgress ? nil : false)
        bar.unit = "samples"
        var done = 0
        for number in todo {
            let shard = plan.shards[number]
            var tensors: [String: Tensor] = [:]
            for i in shard.first..<(shard.first + shard.count) {
                let row = folder.rows[i]
                let clip = try framing(plan).load(folder.url(of: row), info: row.info)
                try Autograd.inference {
                    let posterior = try vae.encode(clip.unsqueeze(0))
                    tensors["\(i).mean"] = vae.scaleLatent(posterior.mean).squeeze(0)
                    tensors["\(i).std"] = (posterior.standardDeviation * vae.config.scalingFactor).squeeze(0)
                    if let text {
                        let encoded = text.encode([row.entry.caption])[0]
                        let kept = encoded.mask.filter { $0 }.count
                        tensors["\(i).text"] = encoded.states.slice(axis: 0, 0, kept)
                    }
                }
                done += 1
                bar.update(completed: done)
            }
            try SafeTensors.write(
                tensors, metadata: ["key": plan.key, "first": "\(shard.first)", "count": "\(shard.count)"],
                to: output.appendingPathComponent(PreparedDataset.shardName(number)))
        }
        bar.finish()
    }

    /// Writes `index.json` once every shard of `plan` is present, and opens the folder.
    /// - Throws: `DatasetError.prepared` naming the first missing shard.
    public func finish(_ plan: PreparedManifest, output: URL) throws -> PreparedReader {
        var index = plan
        for (number, shard) in plan.shards.enumerated() {
            let url = output.appendingPathComponent(PreparedDataset.shardName(number))
            guard shardIsComplete(number, plan: plan, output: output) else {
                throw DatasetError.prepared(path: url.path, reason: "missing or incomplete: run goku data prepare again")
            }
            let file = try SafeTensorsFile(url: url)
            for i in shard.first..<(shard.first + shard.count) {
                index.samples[i].latentShape = try file.info("\(i).mean").shape
            }
        }
        try index.write(to: output.appendingPathComponent(PreparedDataset.indexName))
        return try PreparedReader(directory: output)
    }

    /// Whether shard `number` of `plan` is on disk with the plan's key and range (a shard is renamed into place
    /// complete, so its header is enough).
    func shardIsComplete(_ number: Int, plan: PreparedManifest, output: URL) -> Bool {
        let url = output.appendingPathComponent(PreparedDataset.shardName(number))
        guard FileManager.default.fileExists(atPath: url.path), let file = try? SafeTensorsFile(url: url) else { return false }
        let shard = plan.shards[number]
        return file.metadata?["key"] == plan.key && file.metadata?["first"] == "\(shard.first)"
            && file.metadata?["count"] == "\(shard.count)"
    }

    private func framing(_ plan: PreparedManifest) -> MediaFraming { plan.identity.framing }

    /// SHA-256 over the names and bytes of every regular file of `folder` (sorted by name, not recursive).
    public static func digest(ofFolder folder: URL) throws -> String {
        var hasher = SHA256()
        let names = try FileManager.default.contentsOfDirectory(atPath: folder.path).sorted()
        for name in names where !name.hasPrefix(".") {
            var isDirectory: ObjCBool = false
            let url = folder.appendingPathComponent(name)
            guard FileManager.default.fileExists(atPath: url.path, isDirectory: &isDirectory), !isDirectory.boolValue
            else { continue }
            hasher.update(Array(name.utf8) + [0])
            hasher.update(Array(try Data(contentsOf: url)))
        }
        return SHA256.hex(hasher.finalize())
    }

    /// A digest of a VAE folder's config and weights, naming its latent space (part of a prepared dataset's key and
    /// of the Shapes recipe's latent cache name): SHA-256 over `config.json` then the weights file.
    public static func vaeIdentity(ofFolder folder: URL) throws -> String {
        var hasher = SHA256()
        for name in ["config.json", VideoAutoencoder.weightsFileName] {
            hasher.update(Array(try Data(contentsOf: folder.appendingPathComponent(name))))
        }
        return SHA256.hex(hasher.finalize())
    }
}
