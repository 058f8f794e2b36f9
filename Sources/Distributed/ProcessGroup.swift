import CMPI
import Foundation

/// Element types a collective can carry.
public protocol CollectiveScalar {
    /// The MPI datatype of the element.
    static var mpiType: MPI_Datatype { get }
}

extension Float: CollectiveScalar { public static var mpiType: MPI_Datatype { goku_mpi_float() } }
extension Double: CollectiveScalar { public static var mpiType: MPI_Datatype { goku_mpi_double() } }
extension Int64: CollectiveScalar { public static var mpiType: MPI_Datatype { goku_mpi_int64() } }
extension UInt8: CollectiveScalar { public static var mpiType: MPI_Datatype { goku_mpi_byte() } }

/// The reduction of an all-reduce or reduce-scatter.
public enum ReduceOperation: String, Sendable {
    case sum, max, min

    var mpiOp: MPI_Op {
        switch self {
        case .sum: goku_mpi_sum()
        case .max: goku_mpi_max()
        case .min: goku_mpi_min()
        }
    }
}

/// The collectives, by name (the keys of `ProcessGroup.traffic`).
public enum Collective: String, Sendable, CaseIterable, Codable {
    case allReduce = "all_reduce"
    case reduceScatter = "reduce_scatter"
    case allGather = "all_gather"
    case allToAll = "all_to_all"
    case broadcast
    case barrier
}

/// A collective that failed.
public enum DistributedError: Error, CustomStringConvertible {
    /// MPI returned an error code.
    case collective(name: String, rank: Int, code: Int32, message: String)
    /// Arguments that do not fit the group (counts, sizes, roots).
    case invalidArgument(name: String, rank: Int, reason: String)
    /// MPI could not start.
    case initialization(reason: String)

    public var description: String {
        switch self {
        case let .collective(name, rank, code, message):
            return "\(name) failed on rank \(rank): MPI error \(code): \(message)"
        case let .invalidArgument(name, rank, reason):
            return "\(name) on rank \(rank): \(reason)"
        case let .initialization(reason):
            return "MPI could not start: \(reason)"
        }
    }
}

/// A set of processes that run collectives together: the whole job (`world()`) or a sub-group of it (`split`).
///
/// Two backends. **MPI** (Open MPI) when the process was started by `mpirun` (or `goku launch`, which runs it): the
/// collectives are MPI's own (ring and tree algorithms chosen by Open MPI for the message size and network). **Single
/// process** otherwise: rank 0 of 1, where every collective is the identity and moves no bytes. Code written against
/// `ProcessGroup` therefore runs unchanged from one process to many machines.
///
/// Byte accounting: each collective adds to `traffic` the payload this rank contributes, in bytes: the whole buffer
/// for an all-reduce and a broadcast, the input for a reduce-scatter, the output for an all-gather, the sent bytes of
/// an all-to-all; nothing in a single-process group. This is the quantity `CostModel` predicts (its `wireBytes`
/// converts it to what a ring algorithm puts on the network).
///
/// Threads: MPI is initialised with `MPI_THREAD_SERIALIZED`; call collectives from one thread at a time (the training
/// loop calls them from its own thread; the checkpoint writer does file I/O only).
/// Errors: communicators return errors instead of aborting, and each becomes a `DistributedError` naming the
/// collective and the rank.
public final class ProcessGroup: @unchecked Sendable {
    /// This process's rank in the group, 0 ..< size.
    public let rank: Int
    /// Processes in the group.
    public let size: Int
    /// The rank in the whole job (for messages and logs).
    public let worldRank: Int
    /// Whether collectives go through MPI (false: the single-process backend).
    public var isDistributed: Bool { communicator != nil }
    /// Payload bytes this rank moved, by collective, in this group and every group split from it or from which it
    /// was split (they share one count, so a step's figures include its sub-groups' collectives).
    public var traffic: [Collective: Int] { ledger.traffic }
    /// Collective calls, by collective, counted as `traffic`.
    public var calls: [Collective: Int] { ledger.calls }

    /// The counts shared by a group and its splits.
    private final class Ledger {
        var traffic: [Collective: Int] = [:]
        var calls: [Collective: Int] = [:]
    }

    private let ledger: Ledger
    private let communicator: MPI_Comm?
    private nonisolated(unsafe) static var worldGroup: ProcessGroup?
    private static let worldLock = NSLock()

    private init(rank: Int, size: Int, worldRank: Int, communicator: MPI_Comm?, ledger: Ledger = Ledger()) {
        self.rank = rank
        self.size = size
        self.worldRank = worldRank
        self.communicator = communicator
        self.ledger = ledger
    }

    /// A group of one process that does nothing: the single-process backend.
    public static func single() -> ProcessGroup { ProcessGroup(rank: 0, size: 1, worldRank: 0, communicator: nil) }

    /// Whether this process was started by an MPI launcher (Open MPI's `mpirun`, or a PMI/PMIx one).
    public static var launchedByMPI: Bool {
        let env = ProcessInfo.processInfo.environment
        return env["OMPI_COMM_WORLD_SIZE"] != nil || env["PMIX_RANK"] != nil || env["PMI_RANK"] != nil
    }

    /// The whole job: MPI's world when started by an MPI launcher (initialising MPI once, finalised at exit), else a
    /// single-process group.
    /// - Throws: `DistributedError.initialization` when MPI fails to start.
    public static func world() throws -> ProcessGroup {
        worldLock.lock()
        defer { worldLock.unlock() }
        if let worldGroup { return worldGroup }
        guard launchedByMPI else {
            let group = single()
            worldGroup = group
            return group
        }
        var initialized: Int32 = 0
        MPI_Initialized(&initialized)
        if initialized == 0 {
            var provided: Int32 = 0
            let code = MPI_Init_thread(nil, nil, Int32(MPI_THREAD_SERIALIZED), &provided)
            guard code == MPI_SUCCESS else { throw DistributedError.initialization(reason: "MPI_Init_thread returned \(code)") }
            atexit { finalizeMPI() }
        }
        let comm = goku_mpi_comm_world()
        MPI_Comm_set_errhandler(comm, goku_mpi_errors_return())
        var rank: Int32 = 0, size: Int32 = 0
        MPI_Comm_rank(comm, &rank)
        MPI_Comm_size(comm, &size)
        let group = ProcessGroup(rank: Int(rank), size: Int(size), worldRank: Int(rank), communicator: comm)
        worldGroup = group
        return group
    }

    /// Stops every process of the job at once (after an error on one rank, so that the others do not wait forever in
    /// a collective). Returns only for a single-process group.
    public func abort(code: Int32 = 1) {
        guard let communicator else { return }
        MPI_Abort(communicator, code)
    }

    /// Splits the group: processes with the same `color` form a new group, ranked by `key` (then by rank).
    public func split(color: Int, key: Int) throws -> ProcessGroup {
        guard let communicator else {
            return ProcessGroup(rank: 0, size: 1, worldRank: worldRank, communicator: nil, ledger: ledger)
        }
        var newComm: MPI_Comm? = goku_mpi_comm_null()
        try check("split", MPI_Comm_split(communicator, Int32(color), Int32(key), &newComm))
        guard let newComm else { throw DistributedError.invalidArgument(name: "split", rank: rank, reason: "no communicator") }
        MPI_Comm_set_errhandler(newComm, goku_mpi_errors_return())
        var r: Int32 = 0, s: Int32 = 0
        MPI_Comm_rank(newComm, &r)
        MPI_Comm_size(newComm, &s)
        return ProcessGroup(rank: Int(r), size: Int(s), worldRank: worldRank, communicator: newComm, ledger: ledger)
    }

    // MARK: - Collectives

    /// Reduces `buffer` over the group in place: every rank ends with the same elementwise result.
    public func allReduce<T: CollectiveScalar>(_ buffer: UnsafeMutableBufferPointer<T>, op: ReduceOperation = .sum) throws {
        let bytes = buffer.count * MemoryLayout<T>.stride
        try account(.allReduce, bytes: bytes)
        guard let communicator, buffer.count > 0 else { return }
        try check("all_reduce", MPI_Allreduce(goku_mpi_in_place(), buffer.baseAddress, try count32("all_reduce", buffer.count), T.mpiType, op.mpiOp, communicator))
    }

    /// All-reduce of a small array (norms, metrics, flags).
    public func allReduce<T: CollectiveScalar>(_ values: [T], op: ReduceOperation = .sum) throws -> [T] {
        var out = values
        try out.withUnsafeMutableBufferPointer { try allReduce($0, op: op) }
        return out
    }

    /// Reduces `input` over the group and leaves rank r with elements `counts[0..<r].sum ..< counts[0...r].sum` of the
    /// result in `output` (`output.count == counts[rank]`, `input.count == counts.sum`).
    public func reduceScatter<T: CollectiveScalar>(
        _ input: UnsafeBufferPointer<T>, counts: [Int], into output: UnsafeMutableBufferPointer<T>, op: ReduceOperation = .sum
    ) throws {
        try checkCounts("reduce_scatter", counts: counts, total: input.count, own: output.count)
        try account(.reduceScatter, bytes: input.count * MemoryLayout<T>.stride)
        guard let communicator else {
            if output.count > 0 { output.baseAddress!.update(from: input.baseAddress!, count: output.count) }
            return
        }
        let counts32 = try counts.map { try count32("reduce_scatter", $0) }
        try check("reduce_scatter", MPI_Reduce_scatter(input.baseAddress, output.baseAddress, counts32, T.mpiType, op.mpiOp, communicator))
    }

    /// Gathers every rank's `input` (rank r sends `counts[r]` elements) into `output`, in rank order, on every rank.
    public func allGather<T: CollectiveScalar>(
        _ input: UnsafeBufferPointer<T>, counts: [Int], into output: UnsafeMutableBufferPointer<T>
    ) throws {
        try checkCounts("all_gather", counts: counts, total: output.count, own: input.count)
        try account(.allGather, bytes: output.count * MemoryLayout<T>.stride)
        guard let communicator else {
            if input.count > 0 { output.baseAddress!.update(from: input.baseAddress!, count: input.count) }
            return
        }
        let counts32 = try counts.map { try count32("all_gather", $0) }
        let displacements = try Self.offsets(counts).map { try count32("all_gather", $0) }
        try check(
            "all_gather",
            MPI_Allgatherv(input.baseAddress, counts32[rank], T.mpiType, output.baseAddress, counts32, displacements, T.mpiType, communicator))
    }

    /// Sends `sendCounts[r]` consecutive elements of `input` to each rank r and receives `receiveCounts[r]` from each
    /// into `output`, in rank order.
    public func allToAll<T: CollectiveScalar>(
        _ input: UnsafeBufferPointer<T>, sendCounts: [Int], into output: UnsafeMutableBufferPointer<T>, receiveCounts: [Int]
    ) throws {
        try checkCounts("all_to_all", counts: sendCounts, total: input.count, own: nil)
        try checkCounts("all_to_all", counts: receiveCounts, total: output.count, own: nil)
        let sent = sendCounts.enumerated().reduce(0) { $0 + ($1.offset == rank ? 0 : $1.element) }
        try account(.allToAll, bytes: sent * MemoryLayout<T>.stride)
        guard let communicator else {
            if input.count > 0 { output.baseAddress!.update(from: input.baseAddress!, count: input.count) }
            return
        }
        let s = try sendCounts.map { try count32("all_to_all", $0) }, r = try receiveCounts.map { try count32("all_to_all", $0) }
        let sd = try Self.offsets(sendCounts).map { try count32("all_to_all", $0) }
        let rd = try Self.offsets(receiveCounts).map { try count32("all_to_all", $0) }
        try check("all_to_all", MPI_Alltoallv(input.baseAddress, s, sd, T.mpiType, output.baseAddress, r, rd, T.mpiType, communicator))
    }

    /// Copies `root`'s `buffer` into every rank's.
    public func broadcast<T: CollectiveScalar>(_ buffer: UnsafeMutableBufferPointer<T>, root: Int = 0) throws {
        guard root >= 0 && root < size else {
            throw DistributedError.invalidArgument(name: "broadcast", rank: rank, reason: "root \(root) is not a rank of \(size)")
        }
        try account(.broadcast, bytes: buffer.count * MemoryLayout<T>.stride)
        guard let communicator, buffer.count > 0 else { return }
        try check("broadcast", MPI_Bcast(buffer.baseAddress, try count32("broadcast", buffer.count), T.mpiType, Int32(root), communicator))
    }

    /// Broadcast of bytes (a message, a JSON document) from `root`; every rank returns root's.
    public func broadcast(_ data: Data, root: Int = 0) throws -> Data {
        var length = [Int64(data.count)]
        try length.withUnsafeMutableBufferPointer { try broadcast($0, root: root) }
        var bytes = rank == root ? [UInt8](data) : [UInt8](repeating: 0, count: Int(length[0]))
        try bytes.withUnsafeMutableBufferPointer { try broadcast($0, root: root) }
        return Data(bytes)
    }

    /// Waits until every rank has called it.
    public func barrier() throws {
        try account(.barrier, bytes: 0)
        guard let communicator else { return }
        try check("barrier", MPI_Barrier(communicator))
    }

    /// Clears `traffic` and `calls`.
    public func resetTraffic() {
        ledger.traffic = [:]
        ledger.calls = [:]
    }

    // MARK: - Helpers

    /// Exclusive prefix sums of `counts`.
    public static func offsets(_ counts: [Int]) -> [Int] {
        var out: [Int] = [], total = 0
        for c in counts {
            out.append(total)
            total += c
        }
        return out
    }

    private func account(_ collective: Collective, bytes: Int) throws {
        ledger.calls[collective, default: 0] += 1
        if isDistributed { ledger.traffic[collective, default: 0] += bytes }
    }

    private func count32(_ name: String, _ count: Int) throws -> Int32 {
        guard count >= 0 && count <= Int(Int32.max) else {
            throw DistributedError.invalidArgument(name: name, rank: rank, reason: "\(count) elements is more than MPI's 2^31 − 1 per call: split it into buckets")
        }
        return Int32(count)
    }

    private func checkCounts(_ name: String, counts: [Int], total: Int, own: Int?) throws {
        guard counts.count == size else {
            throw DistributedError.invalidArgument(name: name, rank: rank, reason: "\(counts.count) counts for a group of \(size)")
        }
        guard counts.allSatisfy({ $0 >= 0 }), counts.reduce(0, +) == total else {
            throw DistributedError.invalidArgument(name: name, rank: rank, reason: "counts \(counts) do not sum to the buffer's \(total) elements")
        }
        if let own, counts[rank] != own {
            throw DistributedError.invalidArgument(name: name, rank: rank, reason: "this rank's count is \(counts[rank]) but its buffer holds \(own)")
        }
    }

    private func check(_ name: String, _ code: Int32) throws {
        guard code != MPI_SUCCESS else { return }
        var buffer = [CChar](repeating: 0, count: Int(MPI_MAX_ERROR_STRING) + 1)
        var length: Int32 = 0
        MPI_Error_string(code, &buffer, &length)
        throw DistributedError.collective(name: name, rank: worldRank, code: code, message: String(cString: buffer))
    }
}

/// Finalises MPI at exit when it was initialised and not yet finalised.
private func finalizeMPI() {
    var finalized: Int32 = 0
    MPI_Finalized(&finalized)
    if finalized == 0 { MPI_Finalize() }
}
