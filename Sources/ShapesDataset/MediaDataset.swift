import Foundation
import Media
import TensorCore

/// One line of a `manifest.jsonl`: a media file beside the manifest and what it shows.
///
/// JSON keys: `file` (path relative to the manifest's folder), `caption`, `attributes` (a `SceneAttributes` record;
/// optional, so that any captioned folder of images and GIFs can be described), `frames`, `width`, `height`.
public struct ManifestEntry: Codable, Hashable, Sendable {
    /// The media file, relative to the manifest's folder.
    public var file: String
    /// The caption.
    public var caption: String
    /// The ground-truth record, when known (Shapes data).
    public var attributes: SceneAttributes?
    /// Frames in the file (1 for an image).
    public var frames: Int
    /// Frame width in pixels.
    public var width: Int
    /// Frame height in pixels.
    public var height: Int

    /// An entry.
    public init(file: String, caption: String, attributes: SceneAttributes?, frames: Int, width: Int, height: Int) {
        self.file = file
        self.caption = caption
        self.attributes = attributes
        self.frames = frames
        self.width = width
        self.height = height
    }

    /// The entry as one JSON line (keys sorted, no trailing newline).
    public func jsonLine() throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return String(decoding: try encoder.encode(self), as: UTF8.self)
    }
}

/// A folder of images and videos described by a `manifest.jsonl`: what `goku data shapes` writes and the trainers
/// read.
///
/// Opening reads and checks every manifest line (a bad line is an error naming the manifest and the line number);
/// samples are decoded on demand by `load(_:)`, which checks the decoded shape against the entry.
public struct MediaDataset: Sendable {
    /// The manifest's file name inside the folder.
    public static let manifestName = "manifest.jsonl"

    /// The folder.
    public let directory: URL
    /// The entries in manifest order.
    public let entries: [ManifestEntry]

    /// Opens `directory/manifest.jsonl`.
    public init(directory: URL) throws {
        self.directory = directory
        let url = directory.appendingPathComponent(MediaDataset.manifestName)
        let text: String
        do {
            text = try String(contentsOf: url, encoding: .utf8)
        } catch {
            throw MediaError.io(file: url.path, reason: "cannot read manifest: \(error.localizedDescription)")
        }
        let decoder = JSONDecoder()
        var entries: [ManifestEntry] = []
        for (number, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            if trimmed.isEmpty { continue }
            func bad(_ reason: String) -> ShapesError { .badManifest(file: url.path, line: number + 1, reason: reason) }
            let entry: ManifestEntry
            do {
                entry = try decoder.decode(ManifestEntry.self, from: Data(trimmed.utf8))
            } catch {
                throw bad("not a manifest entry: \(error)")
            }
            guard entry.frames >= 1, entry.width >= 1, entry.height >= 1 else {
                throw bad("frames, width and height must be positive")
            }
            guard !entry.file.isEmpty, !entry.file.hasPrefix("/"), !entry.file.split(separator: "/").contains("..")
            else { throw bad("file \"\(entry.file)\" must be a relative path inside the folder") }
            if let attributes = entry.attributes {
                do { try attributes.validate() } catch { throw bad("attributes: \(error)") }
            }
            entries.append(entry)
        }
        self.entries = entries
    }

    /// Number of entries.
    public var count: Int { entries.count }

    /// The media file of entry `index`.
    public func url(_ index: Int) -> URL { directory.appendingPathComponent(entries[index].file) }

    /// Decodes entry `index` as a float32 video `(3, T, H, W)` in [-1, 1] (T = 1 for an image).
    ///
    /// Throws `MediaError` for an unreadable file, or `ShapesError.badManifest` when the decoded size or frame count
    /// differs from the entry.
    public func load(_ index: Int) throws -> Tensor {
        let entry = entries[index]
        let video = try VideoFile.read(url(index))
        guard video.shape == [3, entry.frames, entry.height, entry.width] else {
            throw ShapesError.badManifest(
                file: directory.appendingPathComponent(MediaDataset.manifestName).path, line: index + 1,
                reason: "\(entry.file) decodes to \(video.shape), the entry says (3, \(entry.frames), \(entry.height), "
                    + "\(entry.width))")
        }
        return video
    }

    /// Writes a manifest atomically (temporary file, then rename).
    public static func writeManifest(_ entries: [ManifestEntry], to directory: URL) throws {
        let url = directory.appendingPathComponent(manifestName)
        let text = try entries.map { try $0.jsonLine() }.joined(separator: "\n") + (entries.isEmpty ? "" : "\n")
        do {
            try Data(text.utf8).write(to: url, options: .atomic)
        } catch {
            throw MediaError.io(file: url.path, reason: "cannot write: \(error.localizedDescription)")
        }
    }
}
