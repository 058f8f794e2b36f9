import Checkpoint
import Foundation
import TensorCore
import XCTest

/// Paths of the committed fixtures (made by scripts/reference/make_checkpoint_fixtures.py), found beside this file.
enum CheckpointFixtures {
    static let folder = URL(fileURLWithPath: "\(#filePath)").deletingLastPathComponent().appendingPathComponent(
        "Fixtures")

    static func url(_ name: String) -> URL { folder.appendingPathComponent(name) }

    static func bytes(_ name: String) throws -> [UInt8] { Array(try Data(contentsOf: url(name))) }
}

/// A deterministic generator for fuzz inputs (SplitMix64).
struct SeededBytes {
    private var state: UInt64

    init(seed: UInt64) { state = seed }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    mutating func below(_ bound: Int) -> Int { Int(next() % UInt64(bound)) }

    mutating func byte() -> UInt8 { UInt8(truncatingIfNeeded: next()) }
}

extension XCTestCase {
    /// A fresh empty directory under the system temporary directory, removed when the test ends.
    func makeTemporaryDirectory() throws -> URL {
        let url = FileManager.default.temporaryDirectory
            .appendingPathComponent("goku-checkpoint-tests-\(UUID().uuidString)", isDirectory: true)
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(at: url) }
        return url
    }

    /// Runs `body`, which must throw a `CheckpointError` whose description contains every string in `fragments`.
    @discardableResult
    func expectCheckpointError(
        _ fragments: [String], file: StaticString = #filePath, line: UInt = #line, _ body: () throws -> Void
    ) -> CheckpointError? {
        do {
            try body()
            XCTFail("expected an error containing \(fragments)", file: file, line: line)
        } catch let error as CheckpointError {
            for fragment in fragments where !error.description.contains(fragment) {
                XCTFail("error \"\(error.description)\" does not contain \"\(fragment)\"", file: file, line: line)
            }
            return error
        } catch {
            XCTFail("expected a CheckpointError, got \(error)", file: file, line: line)
        }
        return nil
    }

    /// The float32 bit patterns of a tensor (exact comparison, NaN included).
    func bitPatterns(_ t: Tensor) -> [UInt32] { t.to(.float32).scalars.map(\.bitPattern) }

    /// The raw storage bytes of a tensor.
    func storageBytes(_ t: Tensor) -> [UInt8] {
        Array(UnsafeRawBufferPointer(start: t.storage.rawPointer, count: t.storage.byteCount))
    }
}

/// A small valid file of all four float dtypes with metadata, built in memory.
func smallValidFile() throws -> [UInt8] {
    try SafeTensors.encode(
        [
            "a": Tensor(shape: [2, 3], scalars: [Float](stride(from: 1, through: 6, by: 1))),
            "b": Tensor(shape: [4], scalars: [Float]([0.5, -1, 3, 1e3])).to(.bfloat16),
            "c": Tensor(shape: [3], scalars: [Float]([0.25, 2, -8])).to(.float16),
            "d": Tensor(shape: [1], scalars: [Double]([1.0 / 3.0])),
        ], metadata: ["k": "v"])
}
