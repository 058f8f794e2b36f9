import Checkpoint
import Foundation
import XCTest

/// `ConfigFile.readStrict`: unknown keys named, absent fields from the defaults, bad values named by their field.
final class ConfigReadStrictTests: XCTestCase {
    struct Options: Codable, Equatable {
        var steps: Int
        var name: String
        var rate: Double
    }

    func testStrictReading() throws {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("config-\(UUID().uuidString).json")
        defer { try? FileManager.default.removeItem(at: url) }
        let defaults = Options(steps: 10, name: "run", rate: 0.5)
        let known: Set<String> = ["steps", "name", "rate"]
        func read(_ text: String) throws -> Options {
            try Data(text.utf8).write(to: url)
            return try ConfigFile.readStrict(Options.self, from: url, known: known, defaults: defaults)
        }
        XCTAssertEqual(try read(#"{"steps": 3}"#), Options(steps: 3, name: "run", rate: 0.5))
        XCTAssertThrowsError(try read(#"{"steps": 3, "stpes": 4}"#)) { error in
            guard case let ConfigReadError.unknownField(key, file) = error else { return XCTFail("\(error)") }
            XCTAssertEqual(key, "stpes")
            XCTAssertEqual(file, url.path)
        }
        XCTAssertThrowsError(try read(#"{"steps": "three"}"#)) { error in
            guard case let ConfigReadError.invalid(_, reason) = error else { return XCTFail("\(error)") }
            XCTAssertTrue(reason.contains("steps") && reason.contains("String"), reason)
        }
        XCTAssertThrowsError(try read("[1, 2]")) { XCTAssertTrue("\($0)".contains("not a JSON object"), "\($0)") }
        // Without defaults every field must be there.
        try Data(#"{"steps": 3}"#.utf8).write(to: url)
        XCTAssertThrowsError(try ConfigFile.readStrict(Options.self, from: url, known: known, defaults: nil)) {
            XCTAssertTrue("\($0)".contains("name"), "\($0)")
        }
    }
}
