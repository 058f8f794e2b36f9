import Datasets
import Foundation
import TensorCore

/// Training clips from a dataset folder (`manifest.jsonl` and its media, `DatasetFolder`): a stream of videos and a
/// stream of images, each visited in a shuffled order per epoch, decoded from the files on demand.
///
/// - **Frames.** Every clip has the same square frames of `FolderDataOptions.size` pixels, so that the clips of a step
///   stack into one batch whatever the files' sizes and aspect ratios: a file is scaled (never up) so that its
///   shorter side becomes `size` (`MediaFraming` with the long side's cap that this gives), then the centre square is
///   cut. Cropping rather than padding or squashing keeps the pixels' aspect and shows the VAE no borders that are not
///   in the data; the sides lost are what a centre crop loses. A file whose shorter side is below `size` is a bad row
///   (upscaling would teach blur as if it were content).
/// - **Videos** are the files that hold at least `frames` frames at `framesPerSecond` (by their probe: duration ×
///   rate), cut to their first `frames` frames (1 + 4k, `MediaFraming`).
/// - **Images** are the still files and the videos too short to be training videos, by their first frame. When those
///   are fewer than the videos (a folder of clips, such as `goku data shapes` or a curation export, has none), the
///   first frames of the videos join them: the image half of each step would otherwise repeat a handful of frames
///   every few steps, and a video's first frame is coded by the causal VAE exactly as an image is.
/// - **Order.** Sample `index` of a stream is entry `permutation(epoch)[index mod count]` with `epoch = index / count`
///   and a permutation drawn from the seed and the epoch alone, so a resumed run sees exactly the clips an
///   uninterrupted one would. Manifest `weight`s are not applied: each usable row is visited once an epoch.
public struct FolderClipSource: ClipSource {
    /// What one entry of a stream decodes.
    struct Entry {
        var row: DatasetFolder.Row
        /// The first frame of a video rather than a clip (or a still file's only frame).
        var firstFrame: Bool
    }

    /// The folder.
    public let directory: URL
    /// The options the clips follow.
    public let options: FolderDataOptions
    let videos: [Entry]
    let images: [Entry]
    /// Shuffle each epoch (training) or keep manifest order (held out).
    let shuffled: Bool

    /// Videos in the stream (one epoch).
    public var videoCount: Int { videos.count }
    /// Images in the stream (one epoch), first frames of videos included.
    public var imageCount: Int { images.count }
    /// Whether the image stream includes the first frames of the videos (too few images of their own).
    public let imagesIncludeVideoFrames: Bool
    /// The manifest lines of the rows in this source, in manifest order.
    public var lines: [Int] { Set(videos.map(\.row.line) + images.map(\.row.line)).sorted() }

    /// The clips of `rows` of the folder at `directory`.
    /// - Parameter shuffled: visit each epoch in a seeded random order (training) or in manifest order (held out).
    init(directory: URL, rows: [DatasetFolder.Row], options: FolderDataOptions, shuffled: Bool) {
        self.directory = directory
        self.options = options
        self.shuffled = shuffled
        var videos: [Entry] = [], stills: [Entry] = []
        for row in rows {
            if Self.keptFrames(row, options: options) >= options.frames {
                videos.append(Entry(row: row, firstFrame: false))
            } else {
                stills.append(Entry(row: row, firstFrame: true))
            }
        }
        self.videos = videos
        imagesIncludeVideoFrames = stills.count < videos.count
        images = imagesIncludeVideoFrames ? stills + videos.map { Entry(row: $0.row, firstFrame: true) } : stills
    }

    /// Frames a row holds at the sampling rate, by its probe: 1 for a still file, else ⌊duration × rate⌋ with the
    /// rate `framesPerSecond` capped at the file's own (what `MediaFraming` keeps, up to decoding rounding).
    static func keptFrames(_ row: DatasetFolder.Row, options: FolderDataOptions) -> Int {
        if MediaFraming.isStillImage(URL(fileURLWithPath: row.entry.file)) { return 1 }
        let source = row.info.framesPerSecond
        let rate = options.framesPerSecond.map { source > 0 ? min($0, source) : $0 } ?? source
        return max(1, Int((row.info.duration * rate + 1e-6).rounded(.down)))
    }

    /// The framing of a `width` × `height` file: its shorter side scaled to `size` (never up), no crop to a multiple
    /// (the centre square is cut after decoding); nil when the shorter side is below `size`.
    public static func framing(width: Int, height: Int, options: FolderDataOptions, frames: Int) -> MediaFraming? {
        let short = min(width, height), long = max(width, height)
        guard short >= options.size else { return nil }
        let maxSide = Int((Double(options.size) * Double(long) / Double(short)).rounded(.up))
        return MediaFraming(maxSide: maxSide, multiple: 1, framesPerSecond: options.framesPerSecond, maxFrames: frames)
    }

    public func video(at index: Int) throws -> Tensor {
        guard !videos.isEmpty else {
            throw DatasetError.io(path: directory.path, reason: "holds no video of \(options.frames) frames at the sampling rate")
        }
        return try load(videos[order(index, count: videos.count, stream: 0)])
    }

    public func image(at index: Int) throws -> Tensor {
        guard !images.isEmpty else { throw DatasetError.io(path: directory.path, reason: "holds no image or video") }
        return try load(images[order(index, count: images.count, stream: 1)])
    }

    /// The entry of sample `index` of a stream of `count`.
    func order(_ index: Int, count: Int, stream: UInt64) -> Int {
        let epoch = index / count, position = index % count
        guard shuffled else { return position }
        var permutation = Array(0..<count)
        let generator = RandomGenerator(seed: options.seed &+ stream &* 0x5851_F42D_4C95_7F2D &+ UInt64(epoch) &* 0x9E37_79B9)
        for i in stride(from: count - 1, to: 0, by: -1) { permutation.swapAt(i, generator.nextInt(below: i + 1)) }
        return permutation[position]
    }

    /// Decodes an entry: (3, frames, size, size) for a video, (3, 1, size, size) for an image, in [−1, 1].
    /// - Throws: `DatasetError.io` naming the file when it decodes to fewer frames than its probe promised.
    func load(_ entry: Entry) throws -> Tensor {
        let row = entry.row, url = directory.appendingPathComponent(row.entry.file)
        let frames = entry.firstFrame ? 1 : options.frames
        guard let framing = Self.framing(width: row.info.width, height: row.info.height, options: options, frames: frames)
        else {
            throw DatasetError.io(path: url.path, reason: "\(row.info.width)×\(row.info.height) is smaller than the \(options.size)-pixel frames")
        }
        let clip = try framing.load(url, info: row.info)
        guard clip.shape[1] == frames else {
            throw DatasetError.io(
                path: url.path,
                reason: "decodes to \(clip.shape[1]) frames, fewer than the \(frames) its probe (\(row.info.duration) s) promised; "
                    + "remove the row or lower folderData.frames")
        }
        let height = clip.shape[2], width = clip.shape[3], size = options.size
        let top = (height - size) / 2, left = (width - size) / 2
        return clip.slice(axis: 2, top, top + size).slice(axis: 3, left, left + size)
    }
}

/// A dataset folder split for VAE training: the last `heldOutRows` usable rows of the manifest are held out for
/// evaluation and the scaling factor, the rest are trained on.
///
/// Why the last rows: the split then follows from the manifest alone, with no seed to keep beside it, and anyone can
/// read off which files were held out. Rows appended to the manifest later fall into the held-out window and move
/// it, so a run should keep the manifest it started with (as `goku data shapes` and `goku curate export` write it).
public struct FolderClipSplit {
    /// The training clips (shuffled each epoch).
    public let training: FolderClipSource
    /// The held-out clips (manifest order).
    public let heldOut: FolderClipSource
    /// Rows that were skipped as bad (`FolderDataOptions.skipBadRows`).
    public let skipped: [DatasetRowProblem]

    /// Opens and checks `directory` (every row probed before any training).
    /// - Throws: `DatasetError.badRows` listing every unusable row with its line and file (missing or undecodable
    ///   file, a side smaller than `size`) unless `skipBadRows`; `VAETrainingError.invalidConfig` naming
    ///   `folderData.heldOutRows` when the split leaves no row to train on; `DatasetError.io` for an unreadable
    ///   manifest.
    public init(directory: URL, options: FolderDataOptions) throws {
        // A framing that never scales and crops to multiples of `size` rejects exactly the files with a side below
        // `size`, in the folder's own bad-row report.
        let sizeCheck = MediaFraming(maxSide: 1 << 30, multiple: options.size)
        let folder = try DatasetFolder(
            directory: directory, options: .init(requireCaptions: false, skipBad: options.skipBadRows, framing: sizeCheck))
        let rows = folder.rows
        guard rows.count > options.heldOutRows else {
            throw VAETrainingError.invalidConfig(
                field: "folderData.heldOutRows",
                reason: "\(options.heldOutRows) held-out rows leave none of the \(rows.count) usable rows of \(folder.manifestURL.path) to train on")
        }
        let cut = rows.count - options.heldOutRows
        training = FolderClipSource(directory: directory, rows: Array(rows[..<cut]), options: options, shuffled: true)
        heldOut = FolderClipSource(directory: directory, rows: Array(rows[cut...]), options: options, shuffled: false)
        skipped = folder.skipped
    }
}
