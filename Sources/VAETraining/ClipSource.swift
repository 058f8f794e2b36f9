import Foundation
import TensorCore

/// Where training clips come from: sample `index` of the video stream or of the image stream, deterministically, so
/// a resumed run sees exactly the clips an uninterrupted one would.
public protocol ClipSource {
    /// Video `index`: (3, T, H, W) in [−1, 1], T = 1 + 4k.
    func video(at index: Int) throws -> Tensor
    /// Image `index`: (3, 1, H, W) in [−1, 1].
    func image(at index: Int) throws -> Tensor
}

extension ClipSource {
    /// `count` videos (or images) from `start`, stacked: (count, 3, T, H, W).
    func batch(start: Int, count: Int, images: Bool) throws -> Tensor {
        let clips = try (0..<count).map { try images ? image(at: start + $0) : video(at: start + $0) }
        return Tensor.concat(clips.map { $0.unsqueeze(0) }, axis: 0)
    }
}

/// Training crops: every clip of `source` cut to `size`×`size` pixels, and videos optionally to a window of `frames`
/// consecutive frames, at positions drawn from the clip's index, so a resumed run sees the same crops.
///
/// The VAE is convolutional and causal in time, so it learns the same local features from crops as from whole clips
/// at a fraction of the cost per step: a window's first frame is coded as an image frame, as any clip's is, and
/// 1 + 4k frames exercise the same temporal compression as longer clips. Its GroupNorms are not local, though: they
/// normalise by statistics over the whole input, which differ between a busy crop and a whole frame, so a run ends
/// on whole clips (`VAETrainingConfig.wholeFrameSteps`). Evaluation always runs on whole clips.
public struct CroppedClipSource: ClipSource {
    let source: ClipSource
    let size: Int?
    let frames: Int?
    let candidates: Int
    let seed: UInt64

    /// - Parameters: source: the whole clips; size: the crop side (a multiple of 8), nil for whole frames; frames:
    ///   the video window (1 + 4k), nil for whole clips; candidates: spatial windows drawn per clip, of which the one
    ///   with the most variance is kept (1: a uniform draw); seed: the position stream.
    public init(_ source: ClipSource, size: Int?, frames: Int? = nil, candidates: Int = 1, seed: UInt64) {
        self.source = source
        self.size = size
        self.frames = frames
        self.candidates = max(1, candidates)
        self.seed = seed
    }

    public func video(at index: Int) throws -> Tensor { try crop(source.video(at: index), index: index, stream: 0) }
    public func image(at index: Int) throws -> Tensor { try crop(source.image(at: index), index: index, stream: 1) }

    /// (3, T, H, W) → (3, T′, size, size); offsets uniform over the valid range (all frames of an image or of a
    /// clip no longer than the window); with several candidates, the spatial window of highest variance among them.
    func crop(_ clip: Tensor, index: Int, stream: UInt64) throws -> Tensor {
        let length = clip.shape[1], height = clip.shape[2], width = clip.shape[3]
        let size = self.size ?? 0
        guard size <= height && size <= width else {
            throw VAETrainingError.invalidConfig(field: "cropSize", reason: "\(size) exceeds the \(width)x\(height) frames")
        }
        var state = seed &+ stream &* 0x9E37_79B9_7F4A_7C15 &+ UInt64(index) &* 0xBF58_476D_1CE4_E5B9
        func next(below n: Int) -> Int {  // splitmix64
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return Int((z ^ (z >> 31)) % UInt64(n))
        }
        var out = clip
        if self.size != nil {
            var best = -1.0
            for _ in 0..<candidates {
                let top = next(below: height - size + 1), left = next(below: width - size + 1)
                let window = clip.slice(axis: 2, top, top + size).slice(axis: 3, left, left + size)
                let spread = candidates == 1 ? 0 : Self.variance(window)
                if spread > best {
                    best = spread
                    out = window
                }
            }
        }
        if let frames, length > frames {
            let start = next(below: length - frames + 1)
            out = out.slice(axis: 1, start, start + frames)
        }
        return out
    }

    /// The variance of all values of a window: how much content (edges, colour) it holds. Summed in Double (unlike
    /// `Tensor.variance`), so that which candidate wins does not hinge on Float32 rounding.
    public static func variance(_ t: Tensor) -> Double {
        var sum = 0.0, squares = 0.0
        for v in t.scalars {
            sum += Double(v)
            squares += Double(v) * Double(v)
        }
        let n = Double(t.count)
        return squares / n - (sum / n) * (sum / n)
    }
}
