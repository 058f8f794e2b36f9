import Datasets
import Foundation
import VideoIO

/// Writes accepted clips as H.264 MP4 files plus `manifest.jsonl`: a dataset folder (`DatasetFolder`) that
/// `goku data prepare` and the trainers read. Each line is a `ManifestEntry` with `file` (relative to the manifest),
/// `caption`, `frames` (the exact count in the file), `width`, `height`, `fps`, `category`, `weight` and `scores`
/// (motion, ocr, aesthetic when computed, similarity, sharpness).
public enum CurationExport {
    /// Exports every accepted clip of `index` into `folder` (clips/ and manifest.jsonl). Clips already exported are
    /// kept (the MP4 is written atomically, so one present is complete). Returns the entries written.
    @discardableResult
    public static func export(index: CurationIndex, to folder: URL, crf: Int = 20) throws -> [ManifestEntry] {
        let clipsFolder = folder.appendingPathComponent("clips")
        try FileManager.default.createDirectory(at: clipsFolder, withIntermediateDirectories: true)
        let sources = Dictionary(uniqueKeysWithValues: try index.sources().map { ($0.id, $0) })
        var entries: [ManifestEntry] = []
        for clip in try index.clips() where clip.status == "accepted" {
            guard let source = sources[clip.sourceId], let info = source.info else { continue }
            let stem = URL(fileURLWithPath: source.path).deletingPathExtension().lastPathComponent
            let name = String(format: "%@_%04lld_%03d.mp4", stem, clip.sourceId, clip.number)
            let destination = clipsFolder.appendingPathComponent(name)
            let width = info.width & ~1
            let height = info.height & ~1
            // The exact frame count (readers check it against the decoded clip): from the encoder, or for a clip
            // exported by an earlier run, by decoding it small.
            var frames = 0
            if FileManager.default.fileExists(atPath: destination.path) {
                try VideoIO.decode(destination, options: DecodeOptions(width: 16, height: 16)) { _ in
                    frames += 1
                    return true
                }
            } else {
                frames = try VideoIO.cut(
                    URL(fileURLWithPath: source.path), start: clip.span.start, end: clip.span.end, to: destination,
                    crf: crf)
            }
            var scores: [String: Double] = ["similarity": clip.similarity]
            for (name, result) in clip.stages where result.status == "done" {
                if let score = result.score { scores[name == "phash" ? "sharpness" : name] = score }
            }
            entries.append(
                ManifestEntry(
                    file: "clips/\(name)", caption: clip.stages["caption"]?.detail ?? "", width: width, height: height,
                    frames: frames, fps: info.framesPerSecond, scores: scores, category: clip.category,
                    weight: clip.weight))
        }
        try DatasetFolder.writeManifest(entries, to: folder)
        return entries
    }
}
