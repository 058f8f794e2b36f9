import Foundation
import GRDB
import VideoIO

/// Counts per stage, rejection reasons and score histograms of a curation index.
public struct CurationReport: Sendable {
    /// Sources by status.
    public var sourceStatus: [String: Int] = [:]
    /// Failed or rejected sources by stage.
    public var sourceStages: [String: Int] = [:]
    /// Clips by status.
    public var clipStatus: [String: Int] = [:]
    /// Rejected clips by stage.
    public var clipStages: [String: Int] = [:]
    /// Stage results by "stage/status".
    public var stageStatus: [String: Int] = [:]
    /// Scores by stage, over every clip with a score.
    public var scores: [String: [Double]] = [:]
    /// Accepted clips by category.
    public var categories: [String: Int] = [:]
    /// Failed or rejected sources: file name, stage and reason.
    public var sourceReasons: [(file: String, stage: String, reason: String)] = []

    /// Gathers the report from the index.
    public init(index: CurationIndex) throws {
        for source in try index.sources() { sourceStatus[source.status, default: 0] += 1 }
        try index.database.read { db in
            for row in try Row.fetchAll(
                db, sql: "SELECT path, stage, reason FROM source WHERE status IN ('failed', 'rejected') ORDER BY path")
            {
                sourceReasons.append(
                    (URL(fileURLWithPath: row["path"]).lastPathComponent, row["stage"] ?? "", row["reason"] ?? ""))
            }
        }
        try index.database.read { db in
            for row in try Row.fetchAll(
                db, sql: "SELECT stage, count(*) AS n FROM source WHERE stage IS NOT NULL GROUP BY stage")
            {
                sourceStages[row["stage"]] = row["n"]
            }
        }
        for clip in try index.clips() {
            clipStatus[clip.status, default: 0] += 1
            if let stage = clip.stage { clipStages[stage, default: 0] += 1 }
            if clip.status == "accepted" { categories[clip.category ?? "other", default: 0] += 1 }
            scores["similarity", default: []].append(clip.similarity)
            for (name, result) in clip.stages {
                stageStatus["\(name)/\(result.status)", default: 0] += 1
                if let score = result.score { scores[name == "phash" ? "sharpness" : name, default: []].append(score) }
            }
        }
    }

    /// The report as text.
    public var text: String {
        func lines(_ title: String, _ counts: [String: Int]) -> String {
            "\(title):\n" + counts.sorted { $0.key < $1.key }.map { "  \($0.key): \($0.value)\n" }.joined()
        }
        var out = lines("sources", sourceStatus) + lines("sources failed or rejected, by stage", sourceStages)
        for (file, stage, reason) in sourceReasons { out += "  \(file): \(stage): \(reason)\n" }
        out += lines("clips", clipStatus) + lines("clips rejected, by stage", clipStages)
        out += lines("stage results", stageStatus) + lines("accepted clips by category", categories)
        for (name, values) in scores.sorted(by: { $0.key < $1.key }) where !values.isEmpty {
            out += String(
                format: "%@: n=%d min=%.4g median=%.4g max=%.4g\n", name, values.count, values.min()!,
                values.sorted()[values.count / 2], values.max()!)
        }
        return out
    }

    /// Writes one histogram PNG per score into `folder` (`<score>.png`); returns the files.
    public func writeHistograms(to folder: URL, bins: Int = 20) throws -> [URL] {
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        var files: [URL] = []
        for (name, values) in scores where !values.isEmpty {
            let image = Self.histogram(values, bins: bins)
            let url = folder.appendingPathComponent("\(name).png")
            try ImageCodec.encode(image, as: .png).write(to: url, options: .atomic)
            files.append(url)
        }
        return files.sorted { $0.path < $1.path }
    }

    /// A bar chart of `values` in `bins` equal bins between their minimum and maximum: 400×200, dark bars on white,
    /// a baseline; the bin range is in the text report.
    static func histogram(_ values: [Double], bins: Int) -> RGBFrame {
        let (width, height, margin) = (400, 200, 10)
        var pixels = [UInt8](repeating: 255, count: width * height * 3)
        let low = values.min()!, high = values.max()!
        var counts = [Int](repeating: 0, count: bins)
        for v in values {
            let b = high > low ? min(bins - 1, Int((v - low) / (high - low) * Double(bins))) : 0
            counts[b] += 1
        }
        let tallest = max(1, counts.max()!)
        let barWidth = (width - 2 * margin) / bins
        for (b, count) in counts.enumerated() {
            let barHeight = (height - 2 * margin) * count / tallest
            for y in (height - margin - barHeight)..<(height - margin) {
                for x in (margin + b * barWidth + 1)..<(margin + (b + 1) * barWidth - 1) {
                    let i = (y * width + x) * 3
                    pixels[i] = 40; pixels[i + 1] = 80; pixels[i + 2] = 160
                }
            }
        }
        for x in margin..<(width - margin) {
            let i = ((height - margin) * width + x) * 3
            pixels[i] = 0; pixels[i + 1] = 0; pixels[i + 2] = 0
        }
        return RGBFrame(width: width, height: height, time: 0, pixels: pixels)
    }
}
