import Foundation
import TensorCore
import XCTest

/// Compares two tensors elementwise: |a − e| ≤ atol + rtol·|e|. On failure, reports the worst element, its index, and
/// the first pairs, so a mismatch says where and by how much.
public func expectClose(
    _ actual: Tensor, _ expected: Tensor, rtol: Double = 1e-5, atol: Double = 1e-6, _ message: String = "",
    file: StaticString = #filePath, line: UInt = #line
) {
    guard actual.shape == expected.shape else {
        XCTFail("\(message): shape \(actual.shape) ≠ expected \(expected.shape)", file: file, line: line)
        return
    }
    expectClose(actual.doubleScalars, expected.doubleScalars, rtol: rtol, atol: atol, message, file: file, line: line)
}

/// Array form of `expectClose`.
public func expectClose(
    _ actual: [Double], _ expected: [Double], rtol: Double = 1e-5, atol: Double = 1e-6, _ message: String = "",
    file: StaticString = #filePath, line: UInt = #line
) {
    guard actual.count == expected.count else {
        XCTFail("\(message): \(actual.count) values ≠ expected \(expected.count)", file: file, line: line)
        return
    }
    var worst = -1.0, worstIndex = -1, failures = 0
    for i in actual.indices {
        let diff = Swift.abs(actual[i] - expected[i])
        let excess = diff - (atol + rtol * Swift.abs(expected[i]))
        if excess > 0 || actual[i].isNaN != expected[i].isNaN {
            failures += 1
            if excess > worst || actual[i].isNaN { worst = excess; worstIndex = i }
        }
    }
    if failures > 0 {
        let pairs = (0..<Swift.min(6, actual.count)).map { "(\(actual[$0]), \(expected[$0]))" }.joined(separator: " ")
        XCTFail(
            "\(message): \(failures)/\(actual.count) values out of tolerance (rtol \(rtol), atol \(atol)); worst at index "
                + "\(worstIndex): \(actual[worstIndex]) vs \(expected[worstIndex]); first pairs: \(pairs)",
            file: file, line: line)
    }
}

/// Float64 finite-difference check of every gradient an op produces.
///
/// The scalar checked is L = Σ f(x)·w with a fixed random w, so every output element contributes. Analytic
/// gradients come from `backward()`; numeric ones from central differences with step `eps` in Float64.
public enum GradientCheck {
    /// Float64 inputs with values drawn from N(0, 1) (seeded), marked as requiring gradients.
    public static func inputs(_ shapes: [[Int]], seed: UInt64 = 1) -> [Tensor] {
        let g = RandomGenerator(seed: seed)
        return shapes.map { s in
            let t = Tensor.randn(s, generator: g).to(.float64)
            t.requiresGrad = true
            return t
        }
    }

    /// Checks d/dx Σ f(x)·w for each input in `inputs` that requires a gradient.
    public static func check(
        _ inputs: [Tensor], rtol: Double = 1e-6, atol: Double = 1e-8, eps: Double = 1e-6, _ name: String,
        file: StaticString = #filePath, line: UInt = #line, _ f: ([Tensor]) -> Tensor
    ) {
        let probe = Autograd.inference { f(inputs) }
        let weights = Tensor.randn(probe.shape, generator: RandomGenerator(seed: 99)).to(.float64)
        func loss() -> Double { Autograd.inference { (f(inputs) * weights).sum().doubleScalars[0] } }
        for x in inputs { x.grad = nil }
        (f(inputs) * weights).sum().backward()
        for (k, x) in inputs.enumerated() where x.requiresGrad {
            guard let analytic = x.grad else {
                XCTFail("\(name): input \(k) received no gradient", file: file, line: line)
                continue
            }
            let p = x.storage.pointer(as: Double.self)
            var numeric = [Double](repeating: 0, count: x.count)
            for i in 0..<x.count {
                let saved = p[i]
                p[i] = saved + eps
                let up = loss()
                p[i] = saved - eps
                let down = loss()
                p[i] = saved
                numeric[i] = (up - down) / (2 * eps)
            }
            expectClose(
                analytic.doubleScalars, numeric, rtol: rtol, atol: atol, "\(name): gradient of input \(k)", file: file,
                line: line)
        }
    }
}
