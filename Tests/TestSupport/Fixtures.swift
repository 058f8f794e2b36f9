import Checkpoint
import Foundation
import TensorCore

/// Reads a committed reference fixture (a safetensors file made by `scripts/reference/`) through the library's own
/// reader.
public enum Fixture {
    /// The tensors of `Tests/<target>/Fixtures/<name>.safetensors`, keyed by name, as float32.
    public static func load(_ name: String, target: String, file: StaticString = #filePath) throws -> [String: Tensor] {
        // Fixtures sit beside the test sources: <repo>/Tests/<target>/Fixtures/<name>.safetensors.
        var root = URL(fileURLWithPath: "\(file)").deletingLastPathComponent()
        while root.path != "/" && root.lastPathComponent != "Tests" { root = root.deletingLastPathComponent() }
        let url = root.appendingPathComponent(target).appendingPathComponent("Fixtures")
            .appendingPathComponent("\(name).safetensors")
        return try StateDict.loadTensors(from: url)
    }
}

extension Dictionary where Key == String, Value == Tensor {
    /// The tensor under `key`; stops the test with the key's name when it is missing.
    public func tensor(_ key: String) -> Tensor {
        guard let t = self[key] else { fatalError("fixture has no key \(key); keys: \(keys.sorted())") }
        return t
    }
}
