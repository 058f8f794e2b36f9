import Checkpoint
import Distributed
import Foundation
import TensorCore

/// The on-disk format of a training checkpoint, written by any number of ranks and read by any other (after
/// ByteCheckpoint and `torch.distributed.checkpoint`).
///
/// A checkpoint folder holds one data file per rank, `rank-00000.data` …, and one global `metadata.json`:
///
///     {"format": "goku.sharded-checkpoint", "version": 1, "step": 40, "ranks": 2,
///      "tensors": {"model/transformer.blocks.0.attn.qkv.weight": {"dtype": "F32", "shape": [192, 64],
///                   "shards": [{"file": "rank-00000.data", "offset": 0, "length": 24576,
///                               "box_offsets": [0, 0], "box_sizes": [96, 64]}, …]}, …}}
///
/// A tensor's name is its group and key (`model/…`, `optimizer/…`, `ema/…`). Each shard is a box of the tensor
/// (offsets and sizes per axis) stored row-major at `offset` in `file`; the writer cuts every tensor by rows
/// (`RowSharding`), so that rank k of n stores rows ⌊k·R/n⌋ ..< ⌊(k+1)·R/n⌋ of every tensor, whether it holds the
/// tensor replicated (the model in data parallel without full sharding, written once in total rather than once per
/// rank) or only as that shard (the optimizer state and EMA at the sharded stages). Where each piece lies in each
/// rank's file follows from the tensors' shapes alone, so rank 0 writes the metadata of every rank's file without
/// being sent anything. Pieces start on 64-byte boundaries.
///
/// Reading takes any row range of any tensor and reads only the bytes of the boxes it overlaps
/// (`ShardedCheckpointReader.read`), so a checkpoint saved by N ranks at one sharding stage loads into M ranks at
/// another, or into one process.
public enum ShardedCheckpointFormat {
    /// The metadata file: written last, so a folder with it is complete.
    public static let metadataName = "metadata.json"
    /// The format's name in the metadata.
    public static let formatName = "goku.sharded-checkpoint"

    /// Rank `rank`'s data file name.
    public static func dataFileName(rank: Int) -> String { "rank-" + String(format: "%05d", rank) + ".data" }

    /// One tensor of a checkpoint: its name, full shape and dtype.
    public struct TensorEntry: Sendable, Equatable {
        public var name: String
        public var shape: [Int]
        public var dtype: DType
        public init(name: String, shape: [Int], dtype: DType) {
            self.name = name
            self.shape = shape
            self.dtype = dtype
        }
    }

    /// Where a piece lies in a rank's data file.
    public struct Piece: Sendable, Equatable {
        public var entry: Int
        public var rows: Range<Int>
        public var offset: Int
        public var length: Int
    }

    /// The pieces of rank `rank`'s file, in file order (entries sorted by name; empty pieces left out).
    public static func layout(_ entries: [TensorEntry], rank: Int, of ranks: Int) -> [Piece] {
        var pieces: [Piece] = [], offset = 0
        for (i, e) in entries.enumerated() {
            let rows = RowSharding.rows(RowSharding.rowCount(e.shape), rank: rank, of: ranks)
            let length = rows.count * RowSharding.rowSize(e.shape) * e.dtype.byteCount
            guard length > 0 else { continue }
            pieces.append(Piece(entry: i, rows: rows, offset: offset, length: length))
            offset = (offset + length + 63) / 64 * 64
        }
        return pieces
    }

    /// The metadata file's content.
    struct Metadata: Codable {
        struct Shard: Codable {
            var file: String
            var offset: Int
            var length: Int
            var box_offsets: [Int]
            var box_sizes: [Int]
        }
        struct Tensor: Codable {
            var dtype: String
            var shape: [Int]
            var shards: [Shard]
        }
        var format: String
        var version: Int
        var step: Int
        var ranks: Int
        var tensors: [String: Tensor]
    }

    /// The metadata of a checkpoint of `entries` written by `ranks` ranks.
    public static func metadata(step: Int, ranks: Int, entries: [TensorEntry]) -> Data {
        var tensors: [String: Metadata.Tensor] = [:]
        for e in entries { tensors[e.name] = Metadata.Tensor(dtype: SafeTensorsDType(e.dtype).rawValue, shape: e.shape, shards: []) }
        for rank in 0..<ranks {
            for piece in layout(entries, rank: rank, of: ranks) {
                let shape = entries[piece.entry].shape
                let offsets = shape.isEmpty ? [] : [piece.rows.lowerBound] + Array(repeating: 0, count: shape.count - 1)
                let sizes = shape.isEmpty ? [] : [piece.rows.count] + shape.dropFirst()
                tensors[entries[piece.entry].name]!.shards.append(
                    Metadata.Shard(file: dataFileName(rank: rank), offset: piece.offset, length: piece.length, box_offsets: offsets, box_sizes: sizes))
            }
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return try! encoder.encode(Metadata(format: formatName, version: 1, step: step, ranks: ranks, tensors: tensors))
    }

    /// Writes rank `rank`'s data file: this rank's rows of every tensor (`tensors[i]` is either the full tensor or
    /// exactly this rank's rows of it), then fsyncs it. Written to a temporary name and renamed, so the file is whole
    /// or absent.
    public static func writeDataFile(_ entries: [TensorEntry], tensors: [Tensor], rank: Int, of ranks: Int, to url: URL) throws {
        var pieces: [(offset: Int, bytes: UnsafeRawBufferPointer)] = []
        for piece in layout(entries, rank: rank, of: ranks) {
            let t = tensors[piece.entry], e = entries[piece.entry]
            precondition(t.dtype == e.dtype, "writeDataFile: \(e.name) is \(t.dtype), expected \(e.dtype)")
            let rowBytes = RowSharding.rowSize(e.shape) * e.dtype.byteCount
            let start = t.shape == e.shape ? piece.rows.lowerBound * rowBytes : 0
            precondition(t.storage.byteCount >= start + piece.length, "writeDataFile: \(e.name) holds \(t.shape), not its rows \(piece.rows)")
            pieces.append((piece.offset, UnsafeRawBufferPointer(start: t.storage.rawPointer + start, count: piece.length)))
        }
        try AtomicFile.write(to: url) { writer in
            var position = 0
            let zeros = [UInt8](repeating: 0, count: 64)
            for (offset, bytes) in pieces {
                if offset > position { try zeros.withUnsafeBytes { try writer.write(UnsafeRawBufferPointer(rebasing: $0[0..<(offset - position)])) } }
                try writer.write(bytes)
                position = offset + bytes.count
            }
        }
        withExtendedLifetime(tensors) {}
    }

}

/// Reads a sharded checkpoint folder's tensors, or row ranges of them, reading only the bytes needed.
public final class ShardedCheckpointReader {
    /// One stored box.
    struct Shard {
        var file: String
        var offset: Int
        var length: Int
        var rows: Range<Int>
    }

    struct Entry {
        var shape: [Int]
        var dtype: DType
        var shards: [Shard]
    }

    /// The folder.
    public let folder: URL
    /// The step it was saved at.
    public let step: Int
    /// Ranks that wrote it.
    public let ranks: Int
    private let entries: [String: Entry]

    /// Opens `folder`'s metadata.
    /// - Throws: `CheckpointError.io` naming the file when it is missing or malformed.
    public init(folder: URL) throws {
        self.folder = folder
        let url = folder.appendingPathComponent(ShardedCheckpointFormat.metadataName)
        let metadata: ShardedCheckpointFormat.Metadata
        do {
            metadata = try JSONDecoder().decode(ShardedCheckpointFormat.Metadata.self, from: Data(contentsOf: url))
        } catch {
            throw CheckpointError.io(file: url.path, reason: "not a complete training checkpoint: \(error)")
        }
        func fail(_ reason: String) -> CheckpointError { CheckpointError.io(file: url.path, reason: reason) }
        guard metadata.format == ShardedCheckpointFormat.formatName else { throw fail("not a \(ShardedCheckpointFormat.formatName) file") }
        step = metadata.step
        ranks = metadata.ranks
        var entries: [String: Entry] = [:]
        for (name, value) in metadata.tensors {
            guard let dtype = SafeTensorsDType(rawValue: value.dtype)?.tensorDType else { throw fail("tensor '\(name)' has dtype \(value.dtype)") }
            let shape = value.shape
            guard shape.allSatisfy({ $0 >= 0 }) else { throw fail("tensor '\(name)' has a malformed shape") }
            let rowBytes = RowSharding.rowSize(shape) * dtype.byteCount
            var shards: [Shard] = []
            for s in value.shards {
                let o = s.box_offsets, z = s.box_sizes
                // Boxes cut by rows only: full extent on every other axis.
                guard !s.file.contains("/"), o.count == shape.count, z.count == shape.count, o.dropFirst().allSatisfy({ $0 == 0 }),
                    Array(z.dropFirst()) == Array(shape.dropFirst())
                else { throw fail("tensor '\(name)' has a shard that is not a range of rows, which this reader does not support") }
                let rows = shape.isEmpty ? 0..<1 : o[0]..<(o[0] + z[0])
                guard rows.lowerBound >= 0, rows.upperBound <= RowSharding.rowCount(shape), s.length == rows.count * rowBytes, s.offset >= 0 else {
                    throw fail("tensor '\(name)' has a shard outside the tensor or of the wrong length")
                }
                shards.append(Shard(file: s.file, offset: s.offset, length: s.length, rows: rows))
            }
            entries[name] = Entry(shape: shape, dtype: dtype, shards: shards)
        }
        self.entries = entries
    }

    /// The tensor names (`group/key`).
    public var names: [String] { entries.keys.sorted() }

    /// The full shape of `name`, if stored.
    public func shape(_ name: String) -> [Int]? { entries[name]?.shape }

    /// Rows `rows` of tensor `name` (all of them when nil) as a float32 tensor, reading only the stored boxes that
    /// overlap them.
    /// - Throws: `CheckpointError.missingTensor` for an unknown name, `.io` when the boxes do not cover the rows or a
    ///   file is short.
    public func read(_ name: String, rows wanted: Range<Int>? = nil) throws -> Tensor {
        guard let entry = entries[name] else { throw CheckpointError.missingTensor(file: folder.path, key: name) }
        let all = 0..<RowSharding.rowCount(entry.shape)
        let rows = wanted ?? all
        precondition(rows.lowerBound >= 0 && rows.upperBound <= all.upperBound, "read: rows \(rows) of \(entry.shape)")
        let shape = wanted == nil ? entry.shape : RowSharding.shape(of: rows, in: entry.shape)
        let out = Tensor(uninitializedShape: shape, dtype: entry.dtype)
        let rowBytes = RowSharding.rowSize(entry.shape) * entry.dtype.byteCount
        var covered = 0
        for shard in entry.shards {
            let low = max(rows.lowerBound, shard.rows.lowerBound), high = min(rows.upperBound, shard.rows.upperBound)
            guard low < high else { continue }
            let overlap = low..<high
            let path = folder.appendingPathComponent(shard.file).path
            let fd = open(path, O_RDONLY | O_CLOEXEC)
            guard fd >= 0 else { throw CheckpointError.io(file: path, reason: "cannot open: \(String(cString: strerror(errno)))") }
            defer { close(fd) }
            let target = out.storage.rawPointer + (overlap.lowerBound - rows.lowerBound) * rowBytes
            let start = shard.offset + (overlap.lowerBound - shard.rows.lowerBound) * rowBytes
            let count = overlap.count * rowBytes
            var done = 0
            while done < count {
                let n = pread(fd, target + done, count - done, off_t(start + done))
                if n < 0 && errno == EINTR { continue }
                guard n > 0 else { throw CheckpointError.io(file: path, reason: "short read of '\(name)'") }
                done += n
            }
            covered += overlap.count
        }
        guard covered == rows.count else {
            throw CheckpointError.io(file: folder.path, reason: "the shards of '\(name)' cover \(covered) of its rows \(rows)")
        }
        return out.dtype == .float32 ? out : out.to(.float32)
    }
}
