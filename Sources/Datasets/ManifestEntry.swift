import Foundation

/// One line of a dataset folder's `manifest.jsonl`: a media file beside the manifest and what it shows.
///
/// The one format every trainer reads and every writer of the project (`goku curate export`, `goku data shapes`)
/// writes. JSON keys:
/// - `file` (required): the media file, relative to the folder: PNG/JPEG images, MP4/GIF (or anything FFmpeg reads)
///   videos, of any size and length;
/// - `caption` (required; may be empty only when captions are not required);
/// - `width`, `height`, `frames`, `fps` (optional): what the file holds, as a hint (the file itself decides);
/// - `scores` (optional): named quality scores from curation;
/// - `category` (optional): a balancing category;
/// - `weight` (optional, ≥ 0, default 1): how often the sample is drawn per epoch relative to the others.
/// Other keys are kept in the file and ignored by readers, so a recipe may add its own (the Shapes recipe adds
/// `attributes`, its ground truth).
public struct ManifestEntry: Codable, Hashable, Sendable {
    /// The media file, relative to the manifest's folder.
    public var file: String
    /// The caption.
    public var caption: String
    /// Frame width in pixels, when known.
    public var width: Int?
    /// Frame height in pixels, when known.
    public var height: Int?
    /// Frames in the file (1 for an image), when known.
    public var frames: Int?
    /// Frames per second of a video, when known.
    public var fps: Double?
    /// Quality scores by name (curation's motion, ocr, aesthetic, …).
    public var scores: [String: Double]?
    /// Balancing category.
    public var category: String?
    /// Relative sampling weight (1 when absent).
    public var weight: Double?

    /// An entry; only `file` and `caption` are required.
    public init(
        file: String, caption: String, width: Int? = nil, height: Int? = nil, frames: Int? = nil, fps: Double? = nil,
        scores: [String: Double]? = nil, category: String? = nil, weight: Double? = nil
    ) {
        self.file = file
        self.caption = caption
        self.width = width
        self.height = height
        self.frames = frames
        self.fps = fps
        self.scores = scores
        self.category = category
        self.weight = weight
    }

    /// The entry as one JSON line (keys sorted, no trailing newline), with a recipe's own keys merged in.
    /// - Parameter extra: JSON-encodable values under keys the entry does not use (e.g. `attributes`).
    public func jsonLine(extra: [String: any Encodable] = [:]) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        var data = try encoder.encode(self)
        if !extra.isEmpty {
            var object = try JSONSerialization.jsonObject(with: data) as! [String: Any]
            for (key, value) in extra {
                precondition(object[key] == nil, "ManifestEntry.jsonLine: extra key '\(key)' is a manifest field")
                object[key] = try JSONSerialization.jsonObject(
                    with: encoder.encode(AnyEncodable(value)), options: [.fragmentsAllowed])
            }
            data = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])
        }
        return String(decoding: data, as: UTF8.self)
    }

    /// Checks the fields that do not need the file: a relative path inside the folder, sizes and weight in range,
    /// and a caption when `requireCaption`. Returns the reason of the first problem, or nil.
    public func problem(requireCaption: Bool) -> String? {
        if file.isEmpty { return "\"file\" is empty" }
        if file.hasPrefix("/") || file.split(separator: "/").contains("..") {
            return "file \"\(file)\" must be a relative path inside the folder"
        }
        if requireCaption && caption.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty {
            return "empty caption (write one, or pass --skip-bad to leave the row out)"
        }
        for (name, value) in [("width", width), ("height", height), ("frames", frames)] {
            if let value, value < 1 { return "\"\(name)\" must be positive, not \(value)" }
        }
        if let fps, !(fps.isFinite && fps > 0) { return "\"fps\" must be positive, not \(fps)" }
        if let weight, !(weight.isFinite && weight >= 0) { return "\"weight\" must be ≥ 0, not \(weight)" }
        return nil
    }
}

/// Type erasure so that `jsonLine(extra:)` can encode values of any `Encodable` type.
private struct AnyEncodable: Encodable {
    let value: any Encodable
    init(_ value: any Encodable) { self.value = value }
    func encode(to encoder: Encoder) throws { try value.encode(to: encoder) }
}
