import Datasets
import Foundation

/// The Shapes data as a dataset folder: each `manifest.jsonl` line is a `ManifestEntry` plus the Shapes recipe's own
/// key `attributes` (the `SceneAttributes` ground truth), which generic readers ignore.
public enum ShapesManifest {
    /// Writes the manifest of `entries` with their attributes atomically.
    public static func write(_ entries: [ManifestEntry], attributes: [SceneAttributes?], to directory: URL) throws {
        precondition(entries.count == attributes.count, "ShapesManifest.write: one attributes record per entry")
        try DatasetFolder.writeManifest(
            entries, extra: attributes.map { a in a.map { ["attributes": $0] } ?? [:] }, to: directory)
    }

    /// The ground truth of each row of a folder's manifest, by 1-based line (nil for a row without one).
    /// - Throws: `ShapesError.badManifest` naming the line when an `attributes` record is malformed or invalid.
    public static func attributes(in directory: URL) throws -> [Int: SceneAttributes] {
        struct Line: Decodable { var attributes: SceneAttributes? }
        let url = directory.appendingPathComponent(DatasetFolder.manifestName)
        let text: String
        do { text = try String(contentsOf: url, encoding: .utf8) } catch {
            throw ShapesError.badManifest(file: url.path, line: 0, reason: "cannot read: \(error.localizedDescription)")
        }
        var out: [Int: SceneAttributes] = [:]
        for (number, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            if trimmed.isEmpty { continue }
            let decoded: Line
            do { decoded = try JSONDecoder().decode(Line.self, from: Data(trimmed.utf8)) } catch {
                throw ShapesError.badManifest(file: url.path, line: number + 1, reason: "attributes: \(error)")
            }
            guard let attributes = decoded.attributes else { continue }
            do { try attributes.validate() } catch {
                throw ShapesError.badManifest(file: url.path, line: number + 1, reason: "attributes: \(error)")
            }
            out[number + 1] = attributes
        }
        return out
    }
}
