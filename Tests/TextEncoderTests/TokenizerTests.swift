import Foundation
import XCTest

import TextEncoder

final class TokenizerTests: XCTestCase {
    static let tokenizerFolder = TextFixtures.folder.appendingPathComponent("tokenizer")

    func loadBoth() throws -> [(String, T5Tokenizer)] {
        [
            ("spiece.model", try T5Tokenizer(sentencePieceModel: Self.tokenizerFolder.appendingPathComponent("spiece.model"))),
            ("tokenizer.json", try T5Tokenizer(tokenizerJSON: Self.tokenizerFolder.appendingPathComponent("tokenizer.json"))),
        ]
    }

    /// Every case against both references. They agree on all but one fuzz string, where transformers' Precompiled
    /// normaliser replaces a whole grapheme ("１" + U+0327 COMBINING CEDILLA) by the rule of its first character and so
    /// drops the cedilla; SentencePiece keeps it (as `<unk>`), and so do we: there the sentencepiece ids are the
    /// reference.
    func testIdsMatchTransformersFromBothFormats() throws {
        let cases = try TextFixtures.cases()
        XCTAssertGreaterThan(cases.cases.count, 250)
        for (format, tokenizer) in try loadBoth() {
            var disagreements = 0
            for c in cases.cases {
                let (ids, mask) = tokenizer.encode(c.text, maxLength: nil, padding: .none)
                XCTAssertEqual(ids, c.sentencepiece_ids, "\(format): \(c.text.debugDescription)")
                XCTAssertEqual(mask, [Int](repeating: 1, count: ids.count))
                guard c.ids == c.sentencepiece_ids else {
                    disagreements += 1
                    XCTAssertTrue(c.text.unicodeScalars.contains("\u{0327}"), "unexpected disagreement \(c.text.debugDescription)")
                    continue
                }
                let short = tokenizer.encode(c.text, maxLength: cases.max_length, padding: .maxLength, truncation: true)
                XCTAssertEqual(short.ids, c.truncated_ids, "\(format) truncated: \(c.text.debugDescription)")
                XCTAssertEqual(short.attentionMask, c.truncated_mask, "\(format) mask: \(c.text.debugDescription)")
            }
            XCTAssertEqual(disagreements, 1)
        }
    }

    func testBothFormatsGiveTheSameVocabulary() throws {
        let both = try loadBoth()
        XCTAssertEqual(both[0].1.vocabularySize, both[1].1.vocabularySize)
        XCTAssertEqual(both[0].1.pieces.map(\.piece), both[1].1.pieces.map(\.piece))
        XCTAssertEqual(both[0].1.padID, 0)
        XCTAssertEqual(both[0].1.endOfSequenceID, 1)
        XCTAssertEqual(both[0].1.unknownID, 2)
    }

    func testNormalizationCollapsesWhitespaceAndAddsPrefix() throws {
        let tokenizer = try loadBoth()[0].1
        let normalized = String(decoding: tokenizer.normalizer.normalize("  a\t\tb   c  "), as: UTF8.self)
        XCTAssertEqual(normalized, "▁a▁b▁c")
        XCTAssertEqual(tokenizer.normalizer.normalize("   "), [])
        // NFKC through the charsmap: full-width letters and the fi ligature become ASCII.
        XCTAssertEqual(String(decoding: tokenizer.normalizer.normalize("Ｆｆｉ ﬁ"), as: UTF8.self), "▁Ffi▁fi")
    }

    func testConsecutiveUnknownsMergeIntoOne() throws {
        for (_, tokenizer) in try loadBoth() {
            let ids = tokenizer.pieceIDs("☃☃☃")
            XCTAssertEqual(ids.filter { $0 == tokenizer.unknownID }.count, 1, "\(ids)")
        }
    }

    func testDecodeRoundTripsPlainText() throws {
        for (_, tokenizer) in try loadBoth() {
            let text = "a large red circle moving right"
            XCTAssertEqual(tokenizer.decode(tokenizer.encode(text, maxLength: 32, padding: .maxLength).ids), text)
        }
    }

    func testBatchPadsToCommonLength() throws {
        let tokenizer = try loadBoth()[0].1
        let batch = tokenizer.encodeBatch(["a red circle", "a large red circle moving right"], padding: .none)
        XCTAssertEqual(batch.ids[0].count, batch.ids[1].count)
        XCTAssertEqual(batch.attentionMask[0].filter { $0 == 1 }.count, tokenizer.encode("a red circle").ids.count)
        XCTAssertEqual(batch.ids[0].last, tokenizer.padID)
    }

    /// Older transformers conversions: normalizer Sequence [Precompiled, Replace " {2,}" → " "], pre-tokenizer a lone
    /// Metaspace with `add_prefix_space`. Same ids.
    func testOlderTokenizerJSONLayoutGivesTheSameIds() throws {
        var json = try JSONSerialization.jsonObject(
            with: Data(contentsOf: Self.tokenizerFolder.appendingPathComponent("tokenizer.json"))) as! [String: Any]
        let precompiled = json["normalizer"]!
        json["normalizer"] = [
            "type": "Sequence",
            "normalizers": [precompiled, ["type": "Replace", "pattern": ["Regex": " {2,}"], "content": " "]],
        ]
        json["pre_tokenizer"] = ["type": "Metaspace", "replacement": "▁", "add_prefix_space": true]
        let url = try TextFixtures.temporaryFolder().appendingPathComponent("tokenizer.json")
        try JSONSerialization.data(withJSONObject: json).write(to: url)
        let old = try T5Tokenizer(tokenizerJSON: url)
        for c in try TextFixtures.cases().cases {
            XCTAssertEqual(old.encode(c.text).ids, c.sentencepiece_ids, c.text.debugDescription)
        }
    }

    func testMissingVocabularyNamesTheFolder() throws {
        let empty = try TextFixtures.temporaryFolder()
        XCTAssertThrowsError(try T5Tokenizer(folder: empty)) { error in
            XCTAssertTrue("\(error)".contains(empty.path) && "\(error)".contains("spiece.model"), "\(error)")
        }
    }

    func testMalformedFilesThrowNamingTheField() throws {
        let folder = try TextFixtures.temporaryFolder()
        // A protobuf whose first field announces more bytes than there are.
        let bad = folder.appendingPathComponent("spiece.model")
        try Data([0x0a, 0x40, 0x01]).write(to: bad)
        XCTAssertThrowsError(try T5Tokenizer(sentencePieceModel: bad)) { error in
            XCTAssertTrue("\(error)".contains(bad.path), "\(error)")
        }
        // A tokenizer.json with a BPE model.
        let original = try JSONSerialization.jsonObject(
            with: Data(contentsOf: Self.tokenizerFolder.appendingPathComponent("tokenizer.json"))) as! [String: Any]
        var json = original
        var model = json["model"] as! [String: Any]
        model["type"] = "BPE"
        json["model"] = model
        let badJSON = folder.appendingPathComponent("tokenizer.json")
        try JSONSerialization.data(withJSONObject: json).write(to: badJSON)
        XCTAssertThrowsError(try T5Tokenizer(tokenizerJSON: badJSON)) { error in
            XCTAssertEqual((error as? TokenizerError)?.field, "model.type", "\(error)")
        }
        json = original
        json["pre_tokenizer"] = ["type": "ByteLevel"]
        try JSONSerialization.data(withJSONObject: json).write(to: badJSON)
        XCTAssertThrowsError(try T5Tokenizer(tokenizerJSON: badJSON)) { error in
            XCTAssertEqual((error as? TokenizerError)?.field, "pre_tokenizer.type", "\(error)")
        }
    }
}
