import Datasets
import XCTest

/// The token-budget batch sampler: budgets hold, epochs cover every sample once, and batches depend only on the
/// position.
final class PackingSamplerTests: XCTestCase {
    /// A mix like a joint image-video dataset at two resolutions: images of 16 and 64 tokens, videos of 80 and 320.
    func mixedItems(_ count: Int) -> [PackingSampler.Item] {
        (0..<count).map { i in PackingSampler.Item(tokens: [16, 64, 80, 320][(i * 7 + i / 3) % 4]) }
    }

    func testBudgetNeverExceededAndEverySampleOncePerEpoch() throws {
        let items = mixedItems(203)
        let sampler = try PackingSampler(items: items, tokenBudget: 512, seed: 3)
        for epoch in 0..<4 {
            let batches = sampler.batches(epoch: epoch)
            for batch in batches {
                XCTAssertFalse(batch.isEmpty)
                XCTAssertLessThanOrEqual(batch.reduce(0) { $0 + items[$1].tokens }, 512)
            }
            XCTAssertEqual(batches.flatMap { $0 }.sorted(), Array(0..<203), "epoch \(epoch) covers each sample once")
        }
        XCTAssertNotEqual(sampler.batches(epoch: 0), sampler.batches(epoch: 1), "epochs are shuffled differently")
        // First-fit over open batches fills the budget well on this mix.
        XCTAssertGreaterThan(sampler.fill(epoch: 0), 0.85)
    }

    func testSameBatchesFromAFreshSamplerAndAfterResume() throws {
        let items = mixedItems(57)
        let a = try PackingSampler(items: items, tokenBudget: 400, seed: 9)
        let b = try PackingSampler(items: items, tokenBudget: 400, seed: 9)
        XCTAssertEqual(a.batches(epoch: 2), b.batches(epoch: 2))
        var straight = BatchStream(sampler: a)
        var taken: [[Int]] = []
        var positions: [BatchPosition] = []
        for _ in 0..<60 {
            positions.append(straight.position)
            taken.append(straight.next().items)
        }
        // Resume at every 7th position: the same batches follow, across epoch boundaries.
        for k in stride(from: 0, to: 60, by: 7) {
            var resumed = BatchStream(sampler: b, position: positions[k])
            for j in k..<min(k + 10, 60) { XCTAssertEqual(resumed.next().items, taken[j], "batch \(j) after resuming at \(k)") }
        }
        XCTAssertGreaterThan(positions.last!.epoch, 0, "the stream crossed an epoch")
        let other = try PackingSampler(items: items, tokenBudget: 400, seed: 10)
        XCTAssertNotEqual(other.batches(epoch: 0), a.batches(epoch: 0))
    }

    func testWeightsRepeatSamples() throws {
        var items = mixedItems(40)
        for i in 0..<10 { items[i].weight = 3 }
        for i in 10..<20 { items[i].weight = 0 }
        for i in 20..<30 { items[i].weight = 0.5 }
        let sampler = try PackingSampler(items: items, tokenBudget: 640, seed: 1)
        var counts = [Int](repeating: 0, count: 40)
        let epochs = 200
        for e in 0..<epochs { for i in sampler.batches(epoch: e).flatMap({ $0 }) { counts[i] += 1 } }
        for i in 0..<10 { XCTAssertEqual(counts[i], 3 * epochs) }
        for i in 10..<20 { XCTAssertEqual(counts[i], 0) }
        for i in 20..<30 { XCTAssertEqual(Double(counts[i]) / Double(epochs), 0.5, accuracy: 0.15) }
        for i in 30..<40 { XCTAssertEqual(counts[i], epochs) }
    }

    func testBadOptionsNameTheProblem() {
        XCTAssertThrowsError(try PackingSampler(items: [.init(tokens: 600)], tokenBudget: 512, seed: 0)) {
            XCTAssertTrue("\($0)".contains("sample 0 has 600 tokens"), "\($0)")
        }
        XCTAssertThrowsError(try PackingSampler(items: [.init(tokens: 6)], tokenBudget: 0, seed: 0))
        XCTAssertThrowsError(try PackingSampler(items: [.init(tokens: 6, weight: 0)], tokenBudget: 8, seed: 0)) {
            XCTAssertTrue("\($0)".contains("positive weight"), "\($0)")
        }
        XCTAssertThrowsError(try PackingSampler(items: [.init(tokens: 6, weight: -1)], tokenBudget: 8, seed: 0))
    }

    /// A global batch cut among ranks: every sample exactly once, in batch order per rank, the largest rank load at
    /// most the smallest plus the largest sample (greedy largest-first), and the same cut every time.
    func testBatchShareCoversTheBatchOnceAndBalancesTokens() {
        let tokens = [16, 320, 64, 80, 16, 64, 80, 16, 320, 64]
        for ranks in 1...4 {
            let shares = BatchShare.cut(tokens: tokens, ranks: ranks)
            XCTAssertEqual(shares.count, ranks)
            XCTAssertEqual(shares.flatMap { $0 }.sorted(), Array(tokens.indices))
            for share in shares { XCTAssertEqual(share, share.sorted()) }
            let loads = shares.map { $0.reduce(0) { $0 + tokens[$1] } }
            XCTAssertLessThanOrEqual(loads.max()! - loads.min()!, tokens.max()!)
            XCTAssertEqual(BatchShare.cut(tokens: tokens, ranks: ranks), shares)
        }
        XCTAssertEqual(BatchShare.cut(tokens: [16, 320, 64, 80], ranks: 2).map { $0.map { [16, 320, 64, 80][$0] }.reduce(0, +) }, [320, 160])
        // Fewer samples than ranks: the last ranks get none.
        XCTAssertEqual(BatchShare.cut(tokens: [5, 9], ranks: 3), [[1], [0], []])
    }
}
