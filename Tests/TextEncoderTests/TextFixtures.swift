import Foundation
import TestSupport

/// Paths of the committed fixtures of this target.
enum TextFixtures {
    /// `Tests/TextEncoderTests/Fixtures`.
    static var folder: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures")
    }

    /// One recorded tokenizer case.
    struct Case: Decodable {
        let text: String
        let ids: [Int]
        let sentencepiece_ids: [Int]
        let truncated_ids: [Int]
        let truncated_mask: [Int]
    }

    /// `tokenizer_cases.json`.
    struct Cases: Decodable {
        let max_length: Int
        let cases: [Case]
    }

    static func cases() throws -> Cases {
        try JSONDecoder().decode(
            Cases.self, from: Data(contentsOf: folder.appendingPathComponent("tokenizer_cases.json")))
    }

    /// A fresh temporary folder, removed when the tests end.
    static func temporaryFolder() throws -> URL { try TemporaryFolders.make("goku-text") }
}
