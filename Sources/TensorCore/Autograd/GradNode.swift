/// One recorded op: the tensors it read and the rule that turns the gradient of its result into theirs.
public final class GradNode {
    /// Name of the op, for error messages and graph dumps.
    public let op: String
    /// The op's inputs; `backward` returns one gradient (or nil) per input, in this order.
    public let inputs: [Tensor]
    /// The vector-Jacobian product: gradient of the result → gradients of the inputs.
    public let backward: (Tensor) -> [Tensor?]

    public init(op: String, inputs: [Tensor], backward: @escaping (Tensor) -> [Tensor?]) {
        self.op = op
        self.inputs = inputs
        self.backward = backward
    }
}
