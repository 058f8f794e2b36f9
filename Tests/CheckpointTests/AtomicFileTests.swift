import Checkpoint
import Foundation
import XCTest

/// Atomic replacement of files and folders.
final class AtomicFileTests: XCTestCase {
    func testFilesAndFoldersAreReplacedWhole() throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("atomic-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: root) }
        try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
        let file = root.appendingPathComponent("a.json")
        try AtomicFile.write(Data("old".utf8), to: file)
        try AtomicFile.write(Data("new".utf8), to: file)
        XCTAssertEqual(try String(contentsOf: file, encoding: .utf8), "new")
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: root.path), ["a.json"], "no temporary file left")

        func folder(_ name: String, holding entry: String) throws -> URL {
            let url = root.appendingPathComponent(name)
            try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
            try Data(entry.utf8).write(to: url.appendingPathComponent(entry))
            return url
        }
        let target = root.appendingPathComponent("model")
        try AtomicFile.replaceFolder(target, with: try folder(".staging-1", holding: "first"))
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: target.path), ["first"])
        try AtomicFile.replaceFolder(target, with: try folder(".staging-2", holding: "second"))
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: target.path), ["second"])
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: root.path).sorted(), ["a.json", "model"])
        XCTAssertThrowsError(try AtomicFile.replaceFolder(target, with: root.appendingPathComponent("missing")))
    }
}
