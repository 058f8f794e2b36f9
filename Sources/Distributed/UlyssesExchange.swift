import Foundation
import NN
import TensorCore

/// Ulysses sequence parallelism over a process group (DeepSpeed-Ulysses): the P ranks of `group` each hold a
/// contiguous range of a packed sequence's tokens (rank r the rows `RowSharding.rows(L, r, P)`), and one all-to-all
/// before self-attention gives each rank every token of Nh/P heads (rank r the heads r·Nh/P ..< (r+1)·Nh/P), one
/// after gives the tokens back. Everything else in a block works token by token and needs no exchange.
///
/// Uneven ranges are allowed (the all-to-all carries each rank's own count), so any sequence length works. Both
/// exchanges are recorded for autograd, the gradient of each being the other one. A failing collective inside the
/// model (forward or backward) stops the process with its error, which ends the job; `goku launch` restarts it.
public final class UlyssesExchange: SequenceParallelExchange {
    /// The sequence-parallel group.
    public let group: ProcessGroup
    /// Tokens of each rank, in rank order.
    public let tokenCounts: [Int]

    /// An exchange for a sequence of `tokens` tokens split over `group`.
    public init(group: ProcessGroup, tokens: Int) {
        self.group = group
        tokenCounts = (0..<group.size).map { RowSharding.rows(tokens, rank: $0, of: group.size).count }
    }

    public var degree: Int { group.size }

    public func toHeads(_ x: Tensor) -> Tensor {
        let out = Autograd.inference { headsFromTokens(x) }
        return Autograd.record(out, op: "ulysses_to_heads", inputs: [x], rule: { [self] g in [tokensFromHeads(g)] })
    }

    public func toTokens(_ x: Tensor) -> Tensor {
        let out = Autograd.inference { tokensFromHeads(x) }
        return Autograd.record(out, op: "ulysses_to_tokens", inputs: [x], rule: { [self] g in [headsFromTokens(g)] })
    }

    /// (1, Lr, Nh, Dh) → (1, L, Nh/P, Dh).
    func headsFromTokens(_ x: Tensor) -> Tensor {
        let p = group.size, r = group.rank
        precondition(x.rank == 4 && x.shape[0] == 1 && x.shape[1] == tokenCounts[r] && x.shape[2] % p == 0,
            "Ulysses: \(x.shape) is not (1, \(tokenCounts[r]), Nh, Dh) with Nh divisible by \(p)")
        let lr = x.shape[1], width = x.shape[2] / p * x.shape[3]  // elements of one token's heads for one rank
        let input = x.dtype == .float32 ? x : x.to(.float32)
        // Send buffer (P, Lr, width): the block of heads rank s takes, for each of this rank's tokens.
        var send = [Float](repeating: 0, count: lr * p * width)
        let src = input.storage.pointer(as: Float.self)
        send.withUnsafeMutableBufferPointer { dst in
            for s in 0..<p {
                for t in 0..<lr {
                    (dst.baseAddress! + (s * lr + t) * width).update(from: src + (t * p + s) * width, count: width)
                }
            }
        }
        let total = tokenCounts.reduce(0, +)
        let out = Tensor(uninitializedShape: [1, total, x.shape[2] / p, x.shape[3]])
        exchange(send, sendCounts: [Int](repeating: lr * width, count: p), into: out, receiveCounts: tokenCounts.map { $0 * width })
        return x.dtype == .float32 ? out : out.to(x.dtype)
    }

    /// (1, L, Nh/P, Dh) → (1, Lr, Nh, Dh).
    func tokensFromHeads(_ x: Tensor) -> Tensor {
        let p = group.size, r = group.rank, total = tokenCounts.reduce(0, +)
        precondition(x.rank == 4 && x.shape[0] == 1 && x.shape[1] == total, "Ulysses: \(x.shape) is not (1, \(total), Nh/P, Dh)")
        let lr = tokenCounts[r], width = x.shape[2] * x.shape[3]
        let input = x.dtype == .float32 ? x : x.to(.float32)
        // The tokens of each rank are consecutive rows: send them as they lie.
        let send = Array(UnsafeBufferPointer(start: input.storage.pointer(as: Float.self), count: input.count))
        let received = Tensor(uninitializedShape: [p, lr, width])
        exchange(send, sendCounts: tokenCounts.map { $0 * width }, into: received, receiveCounts: [Int](repeating: lr * width, count: p))
        // (P, Lr, width) → (Lr, P, width): each token's heads in order.
        let out = Tensor(uninitializedShape: [1, lr, x.shape[2] * p, x.shape[3]])
        let from = received.storage.pointer(as: Float.self), to = out.storage.pointer(as: Float.self)
        for s in 0..<p {
            for t in 0..<lr { (to + (t * p + s) * width).update(from: from + (s * lr + t) * width, count: width) }
        }
        return x.dtype == .float32 ? out : out.to(x.dtype)
    }

    private func exchange(_ send: [Float], sendCounts: [Int], into output: Tensor, receiveCounts: [Int]) {
        do {
            try send.withUnsafeBufferPointer { s in
                try group.allToAll(
                    s, sendCounts: sendCounts,
                    into: UnsafeMutableBufferPointer(start: output.storage.pointer(as: Float.self), count: output.count),
                    receiveCounts: receiveCounts)
            }
        } catch {
            fatalError("Ulysses sequence parallelism: \(error)")
        }
    }
}
