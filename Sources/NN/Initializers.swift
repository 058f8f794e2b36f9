import Foundation
import TensorCore

/// Weight initialisers. Each draws from a `RandomGenerator` so that models are reproducible from one seed.
public enum Initializer {
    /// Xavier/Glorot uniform: U(−a, a), a = gain·√(6 / (fanIn + fanOut)). Fans count receptive fields for convolutions.
    public static func xavierUniform(_ shape: [Int], gain: Double = 1, generator: RandomGenerator) -> Tensor {
        let (fanIn, fanOut) = fans(shape)
        let a = gain * (6.0 / Double(fanIn + fanOut)).squareRoot()
        return Tensor.rand(shape, low: Float(-a), high: Float(a), generator: generator)
    }

    /// PyTorch's default for Linear and Conv weights: kaiming-uniform with a = √5, i.e. U(−1/√fanIn, 1/√fanIn).
    public static func torchDefault(_ shape: [Int], generator: RandomGenerator) -> Tensor {
        let bound = 1.0 / Double(fans(shape).fanIn).squareRoot()
        return Tensor.rand(shape, low: Float(-bound), high: Float(bound), generator: generator)
    }

    /// PyTorch's default bias: U(−1/√fanIn, 1/√fanIn) with the layer's fan-in.
    public static func torchDefaultBias(_ count: Int, fanIn: Int, generator: RandomGenerator) -> Tensor {
        let bound = 1.0 / Double(Swift.max(fanIn, 1)).squareRoot()
        return Tensor.rand([count], low: Float(-bound), high: Float(bound), generator: generator)
    }

    /// N(0, std²).
    public static func normal(_ shape: [Int], std: Double = 1, generator: RandomGenerator) -> Tensor {
        Tensor.randn(shape, std: Float(std), generator: generator)
    }

    /// Zeros (adaLN-Zero modulation and output layers start here so that blocks begin as the identity).
    public static func zeros(_ shape: [Int]) -> Tensor { Tensor.zeros(shape) }

    /// (fanIn, fanOut) of a weight laid out (out, in, *kernel).
    public static func fans(_ shape: [Int]) -> (fanIn: Int, fanOut: Int) {
        precondition(shape.count >= 2, "initializer: weight shape \(shape) needs at least two axes")
        let receptive = shape.dropFirst(2).reduce(1, *)
        return (shape[1] * receptive, shape[0] * receptive)
    }
}

/// A process-wide default generator for initialisers when a module is built without one.
public enum DefaultGenerator {
    nonisolated(unsafe) public static var shared = RandomGenerator(seed: 0)
}

extension Tensor {
    /// Marks the tensor as a trainable parameter and returns it.
    public func asParameter() -> Tensor {
        requiresGrad = true
        return self
    }
}
