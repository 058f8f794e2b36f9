import Foundation
import Media

/// One evaluation prompt: a caption, its record, and whether a video (or an image) is asked for.
public struct ShapesPrompt: Codable, Hashable, Sendable {
    /// The caption given to the model.
    public var caption: String
    /// The ground truth the detector checks.
    public var attributes: SceneAttributes
    /// Whether the prompt asks for a video (true) or an image.
    public var video: Bool

    /// A prompt; the caption is the record's.
    public init(attributes: SceneAttributes, video: Bool) {
        self.caption = attributes.caption
        self.attributes = attributes
        self.video = video
    }
}

/// Prompt sets on disk: one JSON object a line, `{"attributes":{…},"caption":"…","video":true}`.
///
/// On reading, `attributes` may be left out (the caption is then parsed with the grammar) and `video` defaults to
/// true; when both are given the caption must be the record's. Any bad line is an error naming the file and line.
public enum ShapesPromptFile {
    /// Writes prompts atomically.
    public static func write(_ prompts: [ShapesPrompt], to url: URL) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let lines = try prompts.map { String(decoding: try encoder.encode($0), as: UTF8.self) }
        do {
            try Data((lines.joined(separator: "\n") + "\n").utf8).write(to: url, options: .atomic)
        } catch {
            throw MediaError.io(file: url.path, reason: "cannot write: \(error.localizedDescription)")
        }
    }

    /// Reads a prompt file.
    public static func read(_ url: URL) throws -> [ShapesPrompt] {
        let text: String
        do {
            text = try String(contentsOf: url, encoding: .utf8)
        } catch {
            throw MediaError.io(file: url.path, reason: "cannot read prompts: \(error.localizedDescription)")
        }
        struct Line: Decodable {
            var caption: String
            var attributes: SceneAttributes?
            var video: Bool?
        }
        var prompts: [ShapesPrompt] = []
        for (number, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = raw.trimmingCharacters(in: .whitespaces)
            if line.isEmpty { continue }
            func bad(_ reason: String) -> ShapesError { .badManifest(file: url.path, line: number + 1, reason: reason) }
            let decoded: Line
            do { decoded = try JSONDecoder().decode(Line.self, from: Data(line.utf8)) } catch {
                throw bad("not a prompt: \(error)")
            }
            let attributes: SceneAttributes
            do {
                attributes = try decoded.attributes ?? SceneAttributes(caption: decoded.caption)
                try attributes.validate()
            } catch { throw bad("\(error)") }
            guard attributes.caption == decoded.caption else {
                throw bad("caption \"\(decoded.caption)\" does not match its attributes (\"\(attributes.caption)\")")
            }
            let video = decoded.video ?? true
            guard video || attributes.motion == .static else { throw bad("an image prompt cannot move") }
            prompts.append(ShapesPrompt(attributes: attributes, video: video))
        }
        return prompts
    }
}
