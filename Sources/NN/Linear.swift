import TensorCore

/// y = x·Wᵀ + b, with PyTorch's layout: `weight` (out, in), `bias` (out).
public final class Linear: Module {
    public let weight: Tensor
    public let bias: Tensor?

    /// - Parameters:
    ///   - inputCount: features in (K).
    ///   - outputCount: features out (N).
    ///   - bias: whether to add a bias.
    ///   - generator: draws the initial weights (PyTorch's default init: U(±1/√K)).
    public init(_ inputCount: Int, _ outputCount: Int, bias: Bool = true, generator: RandomGenerator = DefaultGenerator.shared) {
        weight = Initializer.torchDefault([outputCount, inputCount], generator: generator).asParameter()
        self.bias = bias ? Initializer.torchDefaultBias(outputCount, fanIn: inputCount, generator: generator).asParameter() : nil
    }

    /// Wraps given tensors (their `requiresGrad` is set).
    public init(weight: Tensor, bias: Tensor?) {
        precondition(weight.rank == 2, "Linear: weight must be (out, in), got \(weight.shape)")
        self.weight = weight.asParameter()
        self.bias = bias?.asParameter()
    }

    /// - Parameter x: (…, in). - Returns: (…, out).
    public func callAsFunction(_ x: Tensor) -> Tensor { Tensor.linear(x, weight: weight, bias: bias) }

    public var inputCount: Int { weight.shape[1] }
    public var outputCount: Int { weight.shape[0] }
}

/// A lookup table of `count` vectors of width `dimension` (`weight` (count, dimension)).
public final class Embedding: Module {
    public let weight: Tensor

    /// Rows start N(0, 1), as PyTorch's `nn.Embedding`.
    public init(_ count: Int, _ dimension: Int, generator: RandomGenerator = DefaultGenerator.shared) {
        weight = Initializer.normal([count, dimension], generator: generator).asParameter()
    }

    /// Rows of `ids`, shaped `shape + [dimension]` (default: one axis of `ids.count`).
    public func callAsFunction(_ ids: [Int], shape: [Int]? = nil) -> Tensor {
        weight.indexSelect(axis: 0, indices: ids).reshape((shape ?? [ids.count]) + [weight.shape[1]])
    }
}

/// Zeroes each element with probability `p` during training and scales the rest by 1/(1−p); the identity otherwise.
public final class Dropout: Module, TrainingModeAware {
    public let p: Double
    public var isTraining = true
    let generator: RandomGenerator

    public init(_ p: Double, generator: RandomGenerator = RandomGenerator(seed: 0x5eed)) {
        precondition(p >= 0 && p < 1, "Dropout: p must be in [0, 1), got \(p)")
        self.p = p
        self.generator = generator
    }

    public func callAsFunction(_ x: Tensor) -> Tensor {
        guard isTraining, p > 0 else { return x }
        let u = Tensor.rand(x.shape, generator: generator).to(x.dtype)
        // Keep where u ≥ p and rescale, so the expectation is unchanged.
        let mask = u.isGreaterOrEqual(u.scalar(p)) * (1.0 / (1.0 - p))
        return x * mask
    }
}

/// The activation functions the layers offer.
public enum Activation: String, Codable, Sendable {
    case gelu, geluTanh, silu, relu

    public func callAsFunction(_ x: Tensor) -> Tensor {
        switch self {
        case .gelu: return x.gelu()
        case .geluTanh: return x.gelu(approximateTanh: true)
        case .silu: return x.silu()
        case .relu: return x.relu()
        }
    }
}

/// Two linear layers with an activation between: `fc2(act(fc1(x)))` (keys `fc1`, `fc2`).
public final class MLP: Module {
    public let fc1: Linear
    public let fc2: Linear
    public let activation: Activation

    public init(
        _ inputCount: Int, hidden: Int, output: Int? = nil, activation: Activation = .geluTanh, bias: Bool = true,
        generator: RandomGenerator = DefaultGenerator.shared
    ) {
        fc1 = Linear(inputCount, hidden, bias: bias, generator: generator)
        fc2 = Linear(hidden, output ?? inputCount, bias: bias, generator: generator)
        self.activation = activation
    }

    public func callAsFunction(_ x: Tensor) -> Tensor { fc2(activation(fc1(x))) }
}
