import Checkpoint
import Foundation
import NN
import TensorCore
import XCTest

private final class Small: Module {
    @ModuleInfo(key: "in_proj") var inputProjection = Linear(3, 4, generator: RandomGenerator(seed: 1))
    let out = Linear(4, 2, bias: false, generator: RandomGenerator(seed: 2))
}

final class ModuleCheckpointTests: XCTestCase {
    var directory: URL!

    override func setUpWithError() throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("goku-module-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: directory) }

    func testSaveThenLoadRestoresEveryParameter() throws {
        let a = Small(), b = Small()
        b.setTrainable(true)
        for (_, p) in b.namedParameters() { p.assign(Tensor.zeros(p.shape)) }
        let url = directory.appendingPathComponent("model.safetensors")
        try a.saveWeights(to: url)
        try b.loadWeights(from: url)
        for ((ka, pa), (kb, pb)) in zip(a.namedParameters(), b.namedParameters()) {
            XCTAssertEqual(ka, kb)
            XCTAssertEqual(pa.scalars, pb.scalars, ka)
        }
        // bf16 on disk, float32 in memory: values round to bf16.
        try a.saveWeights(to: url, as: .bfloat16)
        try b.loadWeights(from: url)
        let w = a.inputProjection.weight.to(.bfloat16).to(.float32).scalars
        XCTAssertEqual(b.inputProjection.weight.scalars, w)
    }

    func testMismatchedCheckpointNamesFileAndKeysAndChangesNothing() throws {
        let url = directory.appendingPathComponent("bad.safetensors")
        try SafeTensors.write(
            ["in_proj.weight": Tensor.zeros([5, 3]), "in_proj.bias": Tensor.zeros([4]), "stray": Tensor.zeros([1])],
            to: url)
        let model = Small()
        let before = model.parameterDictionary().mapValues(\.scalars)
        XCTAssertThrowsError(try model.loadWeights(from: url)) { error in
            let text = "\(error)"
            XCTAssertTrue(text.contains("bad.safetensors"), text)
            XCTAssertTrue(text.contains("in_proj.weight"), text)
            XCTAssertTrue(text.contains("out.weight"), text)
            XCTAssertTrue(text.contains("stray"), text)
        }
        XCTAssertEqual(model.parameterDictionary().mapValues(\.scalars), before)
    }
}
