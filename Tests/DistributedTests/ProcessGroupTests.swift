import Foundation
import TestSupport
import XCTest

import Distributed

/// The collectives' results against values computed from rank and size. `testCollectives` runs in this process (the
/// single-process backend) and, through `testCollectivesOnThreeRanks`, as three MPI ranks.
final class ProcessGroupTests: XCTestCase {
    func testCollectives() throws {
        let group = try ProcessGroup.world()
        let n = group.size, r = group.rank
        if ProcessGroup.launchedByMPI {
            XCTAssertTrue(group.isDistributed)
            XCTAssertEqual(n, Int(ProcessInfo.processInfo.environment["OMPI_COMM_WORLD_SIZE"] ?? ""))
        } else {
            XCTAssertFalse(group.isDistributed)
            XCTAssertEqual(n, 1)
        }
        group.resetTraffic()

        // All-reduce: sum and max.
        XCTAssertEqual(try group.allReduce([Float(r + 1), Float(2 * (r + 1))]), [Float(n * (n + 1) / 2), Float(n * (n + 1))])
        XCTAssertEqual(try group.allReduce([Double(r)], op: .max), [Double(n - 1)])
        XCTAssertEqual(try group.allReduce([Int64(r)], op: .min), [0])

        // Reduce-scatter: rank k keeps k + 1 elements of the sum; rank r contributes 100·r + j at element j.
        let counts = (0..<n).map { $0 + 1 }, total = counts.reduce(0, +)
        let input = (0..<total).map { Float(100 * r + $0) }
        var mine = [Float](repeating: -1, count: r + 1)
        try input.withUnsafeBufferPointer { i in
            try mine.withUnsafeMutableBufferPointer { try group.reduceScatter(i, counts: counts, into: $0) }
        }
        let start = ProcessGroup.offsets(counts)[r]
        XCTAssertEqual(mine, (start..<start + r + 1).map { Float($0 * n + 100 * n * (n - 1) / 2) })

        // All-gather of r + 1 copies of r.
        var gathered = [Float](repeating: -1, count: total)
        let own = [Float](repeating: Float(r), count: r + 1)
        try own.withUnsafeBufferPointer { o in
            try gathered.withUnsafeMutableBufferPointer { try group.allGather(o, counts: counts, into: $0) }
        }
        XCTAssertEqual(gathered, (0..<n).flatMap { k in [Float](repeating: Float(k), count: k + 1) })

        // All-to-all: rank r sends s + 1 elements of value 10·r + s to rank s.
        let send = (0..<n).flatMap { s in [Double](repeating: Double(10 * r + s), count: s + 1) }
        var received = [Double](repeating: -1, count: n * (r + 1))
        try send.withUnsafeBufferPointer { s in
            try received.withUnsafeMutableBufferPointer {
                try group.allToAll(s, sendCounts: counts, into: $0, receiveCounts: [Int](repeating: r + 1, count: n))
            }
        }
        XCTAssertEqual(received, (0..<n).flatMap { q in [Double](repeating: Double(10 * q + r), count: r + 1) })

        // Broadcast from the last rank, of numbers and of bytes.
        var values = [Int64(r), Int64(r * r)]
        try values.withUnsafeMutableBufferPointer { try group.broadcast($0, root: n - 1) }
        XCTAssertEqual(values, [Int64(n - 1), Int64((n - 1) * (n - 1))])
        let message = try group.broadcast(Data("from \(r)".utf8), root: n - 1)
        XCTAssertEqual(String(decoding: message, as: UTF8.self), "from \(n - 1)")
        try group.barrier()

        // Byte counts: payload per rank, nothing in one process.
        if group.isDistributed {
            XCTAssertEqual(group.traffic[.allReduce], 8 + 8 + 8)
            XCTAssertEqual(group.traffic[.reduceScatter], 4 * total)
            XCTAssertEqual(group.traffic[.allGather], 4 * total)
            XCTAssertEqual(group.traffic[.allToAll], 8 * (total - (r + 1)))
            XCTAssertEqual(group.traffic[.broadcast], 16 + 8 + message.count)
        } else {
            XCTAssertTrue(group.traffic.isEmpty)
        }
        XCTAssertEqual(group.calls[.allReduce], 3)
        XCTAssertEqual(group.calls[.barrier], 1)

        // Sub-groups: even and odd ranks.
        let half = try group.split(color: r % 2, key: r)
        XCTAssertEqual(half.size, (n - r % 2 + 1) / 2)
        XCTAssertEqual(half.rank, r / 2)
        XCTAssertEqual(try half.allReduce([Int64(1)]), [Int64(half.size)])
        XCTAssertEqual(try half.allReduce([Int64(r)], op: .min), [Int64(r % 2)])

        // Arguments that do not fit the group are named errors.
        XCTAssertThrowsError(
            try input.withUnsafeBufferPointer { i in
                try mine.withUnsafeMutableBufferPointer { try group.reduceScatter(i, counts: [total + 1] + counts.dropFirst(), into: $0) }
            }
        ) { error in XCTAssertTrue("\(error)".hasPrefix("reduce_scatter on rank \(r):"), "\(error)") }
        XCTAssertThrowsError(try values.withUnsafeMutableBufferPointer { try group.broadcast($0, root: n) }) { error in
            XCTAssertTrue("\(error)".contains("root \(n) is not a rank"), "\(error)")
        }
        // MPI's own errors come back as Swift errors naming the collective and the rank (a negative color is invalid).
        if group.isDistributed {
            XCTAssertThrowsError(try group.split(color: -5, key: 0)) { error in
                XCTAssertTrue("\(error)".hasPrefix("split failed on rank \(r): MPI error"), "\(error)")
            }
        }
    }

    func testCollectivesOnThreeRanks() throws {
        let result = try MPITestRun.xctest(ranks: 3, "DistributedTests.ProcessGroupTests/testCollectives")
        XCTAssertEqual(result.status, 0, result.output)
        XCTAssertEqual(result.output.components(separatedBy: "Test Case 'ProcessGroupTests.testCollectives' passed").count - 1, 3, result.output)
        XCTAssertFalse(result.output.contains("error:"), result.output)
    }

    func testMPIRunArguments() {
        let run = MPIRun(ranks: 4, hostfile: "hosts", forwardedVariables: ["GOKU_X"])
        let arguments = run.arguments(program: "/bin/goku", ["train", "--steps", "3"])
        XCTAssertEqual(Array(arguments.prefix(4)), ["-n", "4", "--hostfile", "hosts"])
        XCTAssertFalse(arguments.contains("--oversubscribe"))
        XCTAssertEqual(Array(arguments.suffix(4)), ["/bin/goku", "train", "--steps", "3"])
        XCTAssertTrue(arguments.contains("GOKU_X"))
        XCTAssertEqual(getuid() == 0, arguments.contains("--allow-run-as-root"))
        XCTAssertEqual(!MPIRun.crossMemoryAttachWorks, arguments.contains("btl_vader_single_copy_mechanism"))
        let many = MPIRun(ranks: ProcessInfo.processInfo.activeProcessorCount + 1).arguments(program: "p", [])
        XCTAssertTrue(many.contains("--oversubscribe"))
    }
}
