import Checkpoint
import Foundation
import XCTest

/// config.json: round trips, readable decode errors, atomic writes.
final class ConfigFileTests: XCTestCase {
    struct Block: Codable, Equatable {
        var heads: Int
        var window: [Int]?
    }

    struct ModelConfig: Codable, Equatable {
        var hiddenSize: Int
        var name: String
        var eps: Double
        var blocks: [Block]
        var dropout: Float?

        enum CodingKeys: String, CodingKey {
            case hiddenSize = "hidden_size", name, eps, blocks, dropout
        }
    }

    private let sample = ModelConfig(
        hiddenSize: 64, name: "goku/tiny", eps: 1e-6,
        blocks: [Block(heads: 4, window: nil), Block(heads: 8, window: [2, 2])],
        dropout: 0.1)

    func testRoundTrip() throws {
        let dir = try makeTemporaryDirectory()
        try ConfigFile.write(sample, to: dir)
        XCTAssertEqual(try ConfigFile.read(ModelConfig.self, from: dir), sample)
        let text = try String(contentsOf: dir.appendingPathComponent("config.json"), encoding: .utf8)
        XCTAssertTrue(text.contains("\"hidden_size\""))
        XCTAssertTrue(text.contains("goku/tiny"), "slashes are not escaped")
        XCTAssertTrue(text.hasSuffix("}\n"))
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir.path), ["config.json"])
        // Overwrite in place.
        var changed = sample
        changed.hiddenSize = 128
        try ConfigFile.write(changed, to: dir)
        XCTAssertEqual(try ConfigFile.read(ModelConfig.self, from: dir).hiddenSize, 128)
    }

    private func decodeError(_ json: String, _ fragments: [String], line: UInt = #line) {
        expectCheckpointError(["config.json"] + fragments, line: line) {
            _ = try ConfigFile.decode(ModelConfig.self, from: Data(json.utf8), file: "config.json")
        }
    }

    func testTypeMismatchNamesFieldAndTypes() {
        decodeError(
            #"{"hidden_size": "64", "name": "x", "eps": 1e-6, "blocks": []}"#,
            ["config.json: field 'hidden_size': expected Int, found String"])
        decodeError(
            #"{"hidden_size": 64, "name": 3, "eps": 1e-6, "blocks": []}"#, ["field 'name': expected String, found Int"])
        decodeError(
            #"{"hidden_size": 64, "name": "x", "eps": 1e-6, "blocks": [{"heads": 1}, {"heads": true}]}"#,
            ["field 'blocks[1].heads': expected Int, found Bool"])
        decodeError(
            #"{"hidden_size": 64, "name": "x", "eps": 1e-6, "blocks": {}}"#,
            ["field 'blocks': expected Array, found Object"])
    }

    func testMissingNullAndOutOfRangeFields() {
        decodeError(#"{"name": "x", "eps": 1e-6, "blocks": []}"#, ["field 'hidden_size': missing"])
        decodeError(#"{"hidden_size": null, "name": "x", "eps": 1e-6, "blocks": []}"#, ["field 'hidden_size'", "null"])
        decodeError(
            #"{"hidden_size": 2.5, "name": "x", "eps": 1e-6, "blocks": []}"#,
            ["config.json: field 'hidden_size': number 2.5 does not fit the field's type"])
        decodeError(
            #"{"hidden_size": 8, "name": "x", "eps": 1e-6, "blocks": [{"heads": 1, "window": [1, 1e30]}]}"#,
            ["field 'blocks[0].window[1]': number 1e+30 does not fit"])
        decodeError(
            #"{"hidden_size": 64, "name": "x", "eps": 1e-6, "blocks": [{}]}"#, ["field 'blocks[0].heads': missing"])
    }

    func testSyntaxErrorsGiveLineAndColumn() {
        decodeError("{\n  \"hidden_size\": 64,\n  \"name\": x\n}", ["invalid JSON at line 3, column 11"])
        decodeError("", ["invalid JSON"])
    }

    func testReadErrorsNameTheFile() throws {
        let dir = try makeTemporaryDirectory()
        expectCheckpointError([dir.appendingPathComponent("config.json").path, "cannot read"]) {
            _ = try ConfigFile.read(ModelConfig.self, from: dir)
        }
        try Data(#"{"hidden_size": "64"}"#.utf8).write(to: dir.appendingPathComponent("custom.json"))
        expectCheckpointError(["custom.json: field 'hidden_size': expected Int, found String"]) {
            _ = try ConfigFile.read(ModelConfig.self, from: dir, fileName: "custom.json")
        }
    }

    func testUnencodableValueNamesTheField() throws {
        let dir = try makeTemporaryDirectory()
        var bad = sample
        bad.eps = .nan
        expectCheckpointError(["config.json", "eps"]) { try ConfigFile.write(bad, to: dir) }
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir.path), [])
    }
}
