import Foundation
import NN
import TensorCore

extension Module {
    /// The shape of every parameter, keyed by path.
    public var parameterShapes: [String: [Int]] {
        Dictionary(namedParameters().map { ($0.key, $0.tensor.shape) }, uniquingKeysWith: { a, _ in a })
    }

    /// Loads weights from a safetensors file, a sharded index or a folder holding either.
    ///
    /// Every key and shape is checked before any parameter is written, so a mismatched checkpoint leaves the module
    /// unchanged. Stored dtypes (F32, BF16, F16, F64) are converted to each parameter's dtype.
    /// - Parameter strict: when false, keys absent from the file keep their values and extra keys are ignored.
    /// - Throws: `CheckpointError` naming the file and listing every missing, unexpected and mis-shaped key.
    public func loadWeights(from url: URL, strict: Bool = true) throws {
        let source = try StateDict.open(url)
        let params = namedParameters()
        if strict {
            try source.validate(expected: parameterShapes)
        } else {
            let present = parameterShapes.filter { source.contains($0.key) }
            let mismatched = try present.compactMap { key, shape -> CheckpointError.ShapeMismatch? in
                let found = try source.info(key).shape
                return found == shape ? nil : .init(key: key, found: found, expected: shape)
            }
            if !mismatched.isEmpty {
                throw CheckpointError.stateDictMismatch(
                    file: source.path, missing: [], unexpected: [], mismatched: mismatched.sorted { $0.key < $1.key })
            }
        }
        // Read everything first, then assign, so a read error also leaves the module unchanged.
        var loaded: [(Tensor, Tensor)] = []
        for (key, p) in params where source.contains(key) {
            loaded.append((p, try source.tensor(key, shape: p.shape, as: p.dtype)))
        }
        for (p, t) in loaded { p.assign(t) }
    }

    /// Saves the weights as one safetensors file (atomically), optionally converting them to `dtype`.
    public func saveWeights(to url: URL, as dtype: DType? = nil, metadata: [String: String]? = ["format": "pt"]) throws {
        try SafeTensors.write(parameterDictionary(), metadata: metadata, as: dtype, to: url)
    }
}
