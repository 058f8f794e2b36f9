import Checkpoint
import Distributed
import Foundation
import TensorCore
import TestSupport
import Training
import XCTest

/// The sharded checkpoint format in one process: three ranks' data files and the metadata written as a 3-rank job
/// writes them, read back whole and by row ranges that cross the ranks' boxes; malformed metadata is a named error.
final class ShardedCheckpointFormatTests: XCTestCase {
    let entries: [ShardedCheckpointFormat.TensorEntry] = [
        .init(name: "model/a", shape: [7, 3], dtype: .float32),
        .init(name: "model/b", shape: [2], dtype: .float32),
        .init(name: "optimizer/step", shape: [], dtype: .float32),
        .init(name: "optimizer/w", shape: [5, 2, 2], dtype: .float32),
    ]

    func tensors() -> [Tensor] {
        entries.enumerated().map { i, e in
            Tensor(shape: e.shape, scalars: (0..<e.shape.reduce(1, *)).map { Float(100 * i + $0) })
        }
    }

    /// Writes the checkpoint of 3 ranks into `folder`: ranks 0 and 2 hand over whole tensors, rank 1 its rows only.
    func writeThreeRanks(to folder: URL) throws {
        let full = tensors()
        for rank in 0..<3 {
            let given = rank == 1
                ? zip(entries, full).map { e, t -> Tensor in
                    let rows = RowSharding.rows(RowSharding.rowCount(e.shape), rank: rank, of: 3)
                    let size = RowSharding.rowSize(e.shape)
                    return Tensor(shape: RowSharding.shape(of: rows, in: e.shape), scalars: Array(t.scalars[(rows.lowerBound * size)..<(rows.upperBound * size)]))
                }
                : full
            try ShardedCheckpointFormat.writeDataFile(
                entries, tensors: given, rank: rank, of: 3,
                to: folder.appendingPathComponent(ShardedCheckpointFormat.dataFileName(rank: rank)))
        }
        try ShardedCheckpointFormat.metadata(step: 4, ranks: 3, entries: entries)
            .write(to: folder.appendingPathComponent(ShardedCheckpointFormat.metadataName))
    }

    func testThreeRanksReadBackWholeAndByRows() throws {
        let folder = try TemporaryFolders.make("goku-sharded-format")
        try writeThreeRanks(to: folder)
        let reader = try ShardedCheckpointReader(folder: folder)
        XCTAssertEqual(reader.ranks, 3)
        XCTAssertEqual(reader.step, 4)
        XCTAssertEqual(reader.names, entries.map(\.name))
        for (e, t) in zip(entries, tensors()) {
            let whole = try reader.read(e.name)
            XCTAssertEqual(whole.shape, e.shape)
            XCTAssertEqual(whole.scalars, t.scalars, e.name)
        }
        // Rows 1..<6 of a: rank 0 holds 0..<2, rank 1 2..<4, rank 2 4..<7; and what 2 ranks would hold of w.
        XCTAssertEqual(try reader.read("model/a", rows: 1..<6).scalars, Array(tensors()[0].scalars[3..<18]))
        for rank in 0..<2 {
            let rows = RowSharding.rows(5, rank: rank, of: 2)
            XCTAssertEqual(try reader.read("optimizer/w", rows: rows).scalars, Array(tensors()[3].scalars[(rows.lowerBound * 4)..<(rows.upperBound * 4)]))
        }
        XCTAssertEqual(try reader.read("model/a", rows: 3..<3).shape, [0, 3])
        XCTAssertThrowsError(try reader.read("model/missing")) { XCTAssertTrue("\($0)".contains("model/missing"), "\($0)") }
    }

    func testMalformedMetadataAndMissingFilesAreNamedErrors() throws {
        let folder = try TemporaryFolders.make("goku-sharded-bad")
        try writeThreeRanks(to: folder)
        let metadata = folder.appendingPathComponent(ShardedCheckpointFormat.metadataName)
        let good = try String(contentsOf: metadata, encoding: .utf8)

        try Data(good.prefix(40).utf8).write(to: metadata)
        XCTAssertThrowsError(try ShardedCheckpointReader(folder: folder)) {
            XCTAssertTrue("\($0)".contains("metadata.json: not a complete training checkpoint"), "\($0)")
        }
        // A box that claims more rows than the tensor has.
        try Data(good.replacingOccurrences(of: #""box_offsets":[4,0],"box_sizes":[3,3]"#, with: #""box_offsets":[4,0],"box_sizes":[5,3]"#).utf8).write(to: metadata)
        XCTAssertThrowsError(try ShardedCheckpointReader(folder: folder)) {
            XCTAssertTrue("\($0)".contains("tensor 'model/a' has a shard outside the tensor"), "\($0)")
        }
        // A missing rank file is reported by name when its rows are read.
        try Data(good.utf8).write(to: metadata)
        try FileManager.default.removeItem(at: folder.appendingPathComponent("rank-00002.data"))
        let reader = try ShardedCheckpointReader(folder: folder)
        XCTAssertEqual(try reader.read("model/a", rows: 0..<4).count, 12)
        XCTAssertThrowsError(try reader.read("model/a")) { XCTAssertTrue("\($0)".contains("rank-00002.data"), "\($0)") }
    }
}
