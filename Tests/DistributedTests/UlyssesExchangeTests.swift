import Distributed
import Foundation
import TensorCore
import TestSupport
import XCTest

/// Ulysses' exchanges against values computed from token, head and channel: in one process (the identity) and, through
/// `testExchangeOnTwoAndThreeRanks`, on 2 and 3 MPI ranks holding uneven token ranges.
final class UlyssesExchangeTests: XCTestCase {
    func testExchange() throws {
        let group = try ProcessGroup.world()
        let p = group.size, r = group.rank, tokens = 7, heads = 2 * p, width = 3
        let exchange = UlyssesExchange(group: group, tokens: tokens)
        XCTAssertEqual(exchange.tokenCounts.reduce(0, +), tokens)
        let mine = RowSharding.rows(tokens, rank: r, of: p)
        func value(_ t: Int, _ h: Int, _ d: Int) -> Float { Float(t * 100 + h * 10 + d) }
        let x = Tensor(
            shape: [1, mine.count, heads, width],
            scalars: mine.flatMap { t in (0..<heads).flatMap { h in (0..<width).map { value(t, h, $0) } } })
        x.requiresGrad = true
        // To heads: every token, heads r·Nh/P ..< (r+1)·Nh/P.
        let local = heads / p
        let y = exchange.toHeads(x)
        XCTAssertEqual(y.shape, [1, tokens, local, width])
        XCTAssertEqual(y.scalars, (0..<tokens).flatMap { t in (0..<local).flatMap { h in (0..<width).map { value(t, r * local + h, $0) } } })
        // And back.
        XCTAssertEqual(Autograd.inference { exchange.toTokens(y) }.scalars, x.scalars)
        // The gradient of toHeads is toTokens of the incoming gradient: d/dx Σ y·w = w sent back to its tokens.
        let w = Tensor(shape: y.shape, scalars: y.scalars.map { $0 * 2 + 1 })
        (y * w).sum().backward()
        XCTAssertEqual(try XCTUnwrap(x.grad).scalars, x.scalars.map { $0 * 2 + 1 })
    }

    func testExchangeOnTwoAndThreeRanks() throws {
        for ranks in [2, 3] {
            let result = try MPITestRun.xctest(ranks: ranks, "DistributedTests.UlyssesExchangeTests/testExchange")
            XCTAssertEqual(result.status, 0, result.output)
            XCTAssertEqual(result.output.components(separatedBy: "Test Case 'UlyssesExchangeTests.testExchange' passed").count - 1, ranks, result.output)
        }
    }
}
