import Foundation
import TensorCore

/// Reads a committed reference fixture (a safetensors file of float32 tensors made by `scripts/reference/`).
public enum Fixture {
    /// The tensors of `Tests/<target>/Fixtures/<name>.safetensors`, keyed by name.
    public static func load(_ name: String, target: String, file: StaticString = #filePath) throws -> [String: Tensor] {
        // Fixtures sit beside the test sources: <repo>/Tests/<target>/Fixtures/<name>.safetensors.
        let here = URL(fileURLWithPath: "\(file)")
        var root = here.deletingLastPathComponent()
        while root.path != "/" && root.lastPathComponent != "Tests" { root = root.deletingLastPathComponent() }
        let url = root.appendingPathComponent(target).appendingPathComponent("Fixtures")
            .appendingPathComponent("\(name).safetensors")
        let data = try Data(contentsOf: url)
        guard data.count >= 8 else { throw FixtureError.malformed(url.path) }
        let headerLength = data.prefix(8).withUnsafeBytes { Int(UInt64(littleEndian: $0.loadUnaligned(as: UInt64.self))) }
        guard data.count >= 8 + headerLength,
            let header = try JSONSerialization.jsonObject(with: data.subdata(in: 8..<8 + headerLength)) as? [String: Any]
        else { throw FixtureError.malformed(url.path) }
        var result: [String: Tensor] = [:]
        for (key, value) in header where key != "__metadata__" {
            guard let entry = value as? [String: Any], entry["dtype"] as? String == "F32",
                let shape = entry["shape"] as? [Int], let offsets = entry["data_offsets"] as? [Int]
            else { throw FixtureError.malformed("\(url.path): \(key)") }
            let start = 8 + headerLength + offsets[0], end = 8 + headerLength + offsets[1]
            let scalars = data.subdata(in: start..<end).withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
            result[key] = Tensor(shape: shape, scalars: scalars)
        }
        return result
    }
}

/// A fixture file that could not be read.
public enum FixtureError: Error { case malformed(String) }

extension Dictionary where Key == String, Value == Tensor {
    /// The tensor under `key`; stops the test with the key's name when it is missing.
    public func tensor(_ key: String) -> Tensor {
        guard let t = self[key] else { fatalError("fixture has no key \(key); keys: \(keys.sorted())") }
        return t
    }
}
