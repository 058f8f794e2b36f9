import NN
import TensorCore
import TestSupport
import XCTest

final class AttentionModuleTests: XCTestCase {
    /// The module equals the same maths written with matmul and softmax, for cross-attention with key padding,
    /// whole-width QK RMSNorm and RoPE on the queries only (the Goku cross-attention).
    func testCrossAttentionMatchesComposedReference() {
        let g = RandomGenerator(seed: 21)
        let attn = Attention(8, headCount: 2, contextDimension: 6, qkNorm: true, generator: g)
        let x = Tensor.randn([2, 5, 8], generator: g), context = Tensor.randn([2, 3, 6], generator: g)
        let rope = Tensor.ropeTables(positions: (0..<5).map { [$0] }, axisDims: [4])
        let mask = AttentionMask(keyLengths: [3, 2], keyCount: 3)
        let out = attn(x, context: context, mask: mask, rope: rope, ropeOnKeys: false)

        let q = Tensor.applyRoPE(attn.queryNorm!(attn.queryProjection(x)).reshape([2, 5, 2, 4]), cos: rope.cos, sin: rope.sin)
        let k = attn.keyNorm!(attn.keyProjection(context)).reshape([2, 3, 2, 4])
        let v = attn.valueProjection(context).reshape([2, 3, 2, 4])
        // Scores (B, Nh, Lq, Lk), with −1e9 on the padded key of batch 1.
        var scores = Tensor.matmul(q.permute([0, 2, 1, 3]), k.permute([0, 2, 1, 3]), transposeB: true) * (1 / 2.0)
        let bias = Tensor(shape: [2, 1, 1, 3], scalars: [0, 0, 0, 0, 0, -1e9] as [Float])
        scores = scores + bias
        let composed = Tensor.matmul(scores.softmax(axis: -1), v.permute([0, 2, 1, 3])).permute([0, 2, 1, 3])
        let expected = attn.outputProjection(composed.reshape([2, 5, 8]))
        expectClose(out, expected, rtol: 1e-5, atol: 1e-6, "cross-attention")
        XCTAssertEqual(
            attn.namedParameters().map(\.key),
            ["q_proj.weight", "k_proj.weight", "v_proj.weight", "o_proj.weight", "q_norm.weight", "k_norm.weight"])
    }

    /// Packed self-attention equals attending to each sample separately.
    func testPackedSelfAttentionEqualsPerSample() {
        let g = RandomGenerator(seed: 22)
        let attn = Attention(8, headCount: 2, qkNorm: true, perHead: true, generator: g)
        let a = Tensor.randn([1, 4, 8], generator: g), b = Tensor.randn([1, 6, 8], generator: g)
        let packed = attn(Tensor.concat([a, b], axis: 1), mask: AttentionMask(segments: [0, 4, 10]))
        expectClose(packed.slice(axis: 1, 0, 4), attn(a), rtol: 1e-5, atol: 1e-6, "sample a")
        expectClose(packed.slice(axis: 1, 4, 10), attn(b), rtol: 1e-5, atol: 1e-6, "sample b")
    }
}
