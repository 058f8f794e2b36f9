import Checkpoint
import Foundation
import NN
import Optim
import TensorCore
import TestSupport
import Training
import XCTest

/// A tiny regression run: an MLP, AdamW, EMA and random batches drawn from the run's generator.
private final class TinyRun {
    let model: MLP
    let optimizer: AdamW
    let ema: ExponentialMovingAverage
    var generator: RandomGenerator
    var step = 0
    var dataPosition = 0

    init() {
        model = MLP(3, hidden: 16, output: 1, activation: .silu, generator: RandomGenerator(seed: 7))
        optimizer = AdamW(model.namedParameters(), options: .init(learningRate: 1e-2, weightDecay: 0.01))
        ema = ExponentialMovingAverage(model.namedParameters(), decay: 0.9)
        generator = RandomGenerator(seed: 11)
    }

    /// One step on a fresh random batch; the target is sin(x₀ + x₁·x₂).
    func trainStep() -> Float {
        let x = Tensor.randn([8, 3], generator: generator)
        let target = (x.slice(axis: 1, 0, 1) + x.slice(axis: 1, 1, 2) * x.slice(axis: 1, 2, 3)).sin()
        model.zeroGrad()
        let loss = (model(x) - target).square().mean()
        loss.backward()
        optimizer.update()
        ema.update()
        step += 1
        dataPosition += 8
        return loss.item()
    }

    func snapshot() -> TrainingSnapshot {
        TrainingSnapshot(
            groups: [
                "model": model.parameterDictionary(), "ema": ema.shadow, "optimizer": optimizer.stateDictionary(),
            ],
            state: TrainingState(step: step, generator: generator, dataPosition: dataPosition),
            configJSON: Data(#"{"name": "tiny"}"#.utf8))
    }

    func restore(_ snapshot: TrainingSnapshot) throws {
        try model.load(snapshot.groups["model"]!)
        try ema.load(snapshot.groups["ema"]!)
        try optimizer.loadStateDictionary(snapshot.groups["optimizer"]!)
        generator = snapshot.state.makeGenerator()
        step = snapshot.state.step
        dataPosition = snapshot.state.dataPosition
    }
}

final class CheckpointStoreTests: XCTestCase {
    private var folder: URL!

    override func setUpWithError() throws {
        folder = FileManager.default.temporaryDirectory.appendingPathComponent("goku-ckpt-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: folder) }

    /// Training 6 steps straight and training 3, saving, restoring into fresh objects and training 3 more give the
    /// same weights, EMA and optimizer state bit for bit.
    func testResumeEqualsUninterruptedRun() throws {
        let straight = TinyRun()
        var straightLosses: [Float] = []
        for _ in 0..<6 { straightLosses.append(straight.trainStep()) }

        let first = TinyRun()
        var losses: [Float] = []
        for _ in 0..<3 { losses.append(first.trainStep()) }
        let store = try CheckpointStore(runDirectory: folder)
        try store.save(first.snapshot())
        for _ in 0..<2 { _ = first.trainStep() }  // work after the checkpoint that the resumed run must not see
        try store.waitForPendingWrite()

        let resumed = TinyRun()
        let latest = try XCTUnwrap(try store.latest())
        XCTAssertEqual(latest.lastPathComponent, "step-00000003")
        let snapshot = try CheckpointStore.load(from: latest)
        XCTAssertEqual(snapshot.configJSON.map { String(decoding: $0, as: UTF8.self) }, #"{"name": "tiny"}"#)
        try resumed.restore(snapshot)
        for _ in 0..<3 { losses.append(resumed.trainStep()) }

        XCTAssertEqual(losses, straightLosses)
        XCTAssertEqual(resumed.dataPosition, straight.dataPosition)
        for (key, value) in straight.model.parameterDictionary() {
            XCTAssertEqual(resumed.model.parameterDictionary()[key]!.scalars, value.scalars, key)
            XCTAssertEqual(resumed.ema.shadow[key]!.scalars, straight.ema.shadow[key]!.scalars, "ema " + key)
        }
        for (key, value) in straight.optimizer.stateDictionary() {
            XCTAssertEqual(resumed.optimizer.stateDictionary()[key]!.scalars, value.scalars, "optimizer " + key)
        }
    }

    /// The tensors are copied when `save` returns: changing them afterwards does not change the checkpoint.
    func testSaveSnapshotsTensorsBeforeReturning() throws {
        let weight = Tensor(shape: [4], scalars: [1, 2, 3, 4] as [Float])
        let store = try CheckpointStore(runDirectory: folder)
        let generator = RandomGenerator(seed: 1)
        try store.save(
            TrainingSnapshot(
                groups: ["model": ["w": weight]], state: TrainingState(step: 1, generator: generator, dataPosition: 0)))
        weight.assign(Tensor(shape: [4], scalars: [9, 9, 9, 9] as [Float]))
        try store.waitForPendingWrite()
        let loaded = try CheckpointStore.load(from: try XCTUnwrap(try store.latest()))
        XCTAssertEqual(loaded.groups["model"]!["w"]!.scalars, [1, 2, 3, 4])
    }

    /// Only the newest `keepLast` checkpoints stay; unfinished writes are ignored and cleaned up.
    func testKeepsTheNewestAndIgnoresUnfinishedWrites() throws {
        let generator = RandomGenerator(seed: 1)
        let store = try CheckpointStore(runDirectory: folder, keepLast: 2)
        for step in [10, 20, 30] {
            try store.saveNow(
                TrainingSnapshot(
                    groups: ["model": ["w": Tensor(shape: [1], scalars: [Float(step)])]],
                    state: TrainingState(step: step, generator: generator, dataPosition: step)))
        }
        XCTAssertEqual(try store.checkpoints().map(\.step), [20, 30])

        // A write killed half way: a hidden partial folder, and a step folder without metadata.json.
        let fm = FileManager.default
        let partial = store.directory.appendingPathComponent(".step-00000040.partial")
        try fm.createDirectory(at: partial, withIntermediateDirectories: true)
        let incomplete = store.directory.appendingPathComponent("step-00000050")
        try fm.createDirectory(at: incomplete, withIntermediateDirectories: true)
        let reopened = try CheckpointStore(runDirectory: folder, keepLast: 2)
        XCTAssertFalse(fm.fileExists(atPath: partial.path))
        XCTAssertEqual(try reopened.latest()?.lastPathComponent, "step-00000030")
        XCTAssertThrowsError(try CheckpointStore.load(from: incomplete)) { error in
            XCTAssertTrue("\(error)".contains("metadata.json: not a complete training checkpoint"), "\(error)")
        }
    }

    /// A write that fails (the folder vanished) is reported by the next call, not lost.
    func testBackgroundErrorIsReported() throws {
        let store = try CheckpointStore(runDirectory: folder)
        try FileManager.default.removeItem(at: store.directory)
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        // Put a plain file where the checkpoints folder was, so creating the temporary folder fails.
        XCTAssertTrue(FileManager.default.createFile(atPath: store.directory.path, contents: Data("x".utf8)))
        try store.save(
            TrainingSnapshot(
                groups: [:], state: TrainingState(step: 1, generator: RandomGenerator(seed: 0), dataPosition: 0)))
        XCTAssertThrowsError(try store.waitForPendingWrite())
    }
}
