import Checkpoint
import Foundation
import TensorCore
import XCTest

/// Positional reads give the same tensors as reads through the map.
final class SafeTensorsPositionalReadTests: XCTestCase {
    func testReadTensorEqualsMappedRead() throws {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("pread-\(UUID().uuidString).safetensors")
        defer { try? FileManager.default.removeItem(at: url) }
        let g = RandomGenerator(seed: 3)
        let tensors = [
            "a": Tensor.randn([3, 5, 7], generator: g), "b": Tensor.randn([4097], generator: g),
            "c": Tensor.randn([2, 3], generator: g).to(.bfloat16),
        ]
        try SafeTensors.write(tensors, to: url)
        let file = try SafeTensorsFile(url: url)
        for name in ["a", "b", "c"] {
            let read = try file.readTensor(name), mapped = try file.tensor(name)
            XCTAssertEqual(read.shape, mapped.shape, name)
            XCTAssertEqual(read.dtype, .float32, name)
            XCTAssertEqual(read.scalars, mapped.scalars, name)
        }
        XCTAssertThrowsError(try file.readTensor("missing")) { XCTAssertTrue("\($0)".contains("missing"), "\($0)") }
    }
}
