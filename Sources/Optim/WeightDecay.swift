import NN
import TensorCore

/// Which parameters get weight decay: decided by what a tensor is, not by its name.
///
/// Matrices and higher-rank tensors (the weights of linear and convolution layers) decay; vectors (biases, norm
/// scales) and embedding tables do not (decaying a lookup table pulls rare tokens' rows towards zero, and decaying
/// a norm's scale fights the normalisation), as in GPT-2/nanoGPT's `configure_optimizers` and most DiT trainers.
public enum WeightDecay {
    /// The keys of `module`'s parameters that decay, each prefixed by `prefix`.
    public static func decayedKeys(of module: Module, prefix: String = "") -> Set<String> {
        let tables = Set(module.modules().compactMap { $0 as? Embedding }.flatMap { $0.namedParameters().map { ObjectIdentifier($0.tensor) } })
        return Set(module.namedParameters().filter { $0.tensor.rank >= 2 && !tables.contains(ObjectIdentifier($0.tensor)) }.map { prefix + $0.key })
    }
}
