import TensorCore

/// An 8-bit RGB image: the interchange form between tensors and the file codecs.
///
/// Tensors hold pixel values in [-1, 1] (the range the VAE and the generators work in); bytes hold 0…255. The mapping
/// is `byte = round((value + 1) · 127.5)` clamped to 0…255 (NaN becomes 0), and back `value = byte / 127.5 − 1`, so
/// bytes survive a round trip through a tensor exactly and −1 and 1 map to 0 and 255.
public struct RGBImage: Equatable, Sendable {
    /// Width in pixels.
    public let width: Int
    /// Height in pixels.
    public let height: Int
    /// Interleaved R, G, B bytes, row by row from the top: `width · height · 3` of them.
    public var pixels: [UInt8]

    /// Wraps interleaved RGB bytes (`width · height · 3` of them).
    public init(width: Int, height: Int, pixels: [UInt8]) {
        precondition(width >= 0 && height >= 0, "RGBImage: negative size \(width)×\(height)")
        precondition(pixels.count == width * height * 3, "RGBImage: \(pixels.count) bytes for \(width)×\(height)×3")
        self.width = width
        self.height = height
        self.pixels = pixels
    }

    /// Converts an image tensor `(3, H, W)` with values in [-1, 1] to bytes (rounded, clamped).
    ///
    /// Throws `MediaError.invalidInput` (naming `file`, the destination, for messages) for another shape.
    public init(_ image: Tensor, file: String = "image") throws {
        guard image.rank == 3, image.shape[0] == 3 else {
            throw MediaError.invalidInput(file: file, reason: "expected an image tensor (3, H, W), got \(image.shape)")
        }
        let values = image.scalars
        self = RGBImage(planar: values, offset: 0, planeStride: image.shape[1] * image.shape[2],
                        width: image.shape[2], height: image.shape[1])
    }

    /// The frames of a video tensor `(3, T, H, W)` in [-1, 1], as bytes.
    ///
    /// Throws `MediaError.invalidInput` (naming `file`) for another shape or zero frames.
    public static func frames(of video: Tensor, file: String = "video") throws -> [RGBImage] {
        guard video.rank == 4, video.shape[0] == 3, video.shape[1] >= 1 else {
            throw MediaError.invalidInput(
                file: file, reason: "expected a video tensor (3, T, H, W) with T ≥ 1, got \(video.shape)")
        }
        let (t, h, w) = (video.shape[1], video.shape[2], video.shape[3])
        let values = video.scalars
        return (0..<t).map { frame in
            RGBImage(planar: values, offset: frame * h * w, planeStride: t * h * w, width: w, height: h)
        }
    }

    /// Gathers one frame from channel-planar values: channel c of pixel p is at `offset + c·planeStride + p`.
    private init(planar values: [Float], offset: Int, planeStride: Int, width: Int, height: Int) {
        let count = width * height
        var bytes = [UInt8](repeating: 0, count: count * 3)
        for c in 0..<3 {
            let base = offset + c * planeStride
            for p in 0..<count { bytes[p * 3 + c] = RGBImage.byte(values[base + p]) }
        }
        self.init(width: width, height: height, pixels: bytes)
    }

    /// One value in [-1, 1] as a byte: `round((value + 1) · 127.5)` clamped to 0…255; NaN gives 0.
    @inlinable
    public static func byte(_ value: Float) -> UInt8 {
        let scaled = ((value + 1) * 127.5).rounded()
        guard scaled > 0 else { return 0 }  // also catches NaN
        return scaled >= 255 ? 255 : UInt8(scaled)
    }

    /// One byte as a value in [-1, 1]: `byte / 127.5 − 1`.
    @inlinable
    public static func value(_ byte: UInt8) -> Float { Float(byte) / 127.5 - 1 }

    /// The image as a float32 tensor `(3, H, W)` in [-1, 1].
    public func tensor() -> Tensor {
        let count = width * height
        var values = [Float](repeating: 0, count: count * 3)
        for c in 0..<3 {
            for p in 0..<count { values[c * count + p] = RGBImage.value(pixels[p * 3 + c]) }
        }
        return Tensor(shape: [3, height, width], scalars: values)
    }

    /// Frames of equal size stacked into a float32 video tensor `(3, T, H, W)` in [-1, 1].
    public static func video(_ frames: [RGBImage]) -> Tensor {
        precondition(!frames.isEmpty, "RGBImage.video: no frames")
        let (w, h, t) = (frames[0].width, frames[0].height, frames.count)
        precondition(frames.allSatisfy { $0.width == w && $0.height == h }, "RGBImage.video: frames differ in size")
        let count = w * h
        var values = [Float](repeating: 0, count: 3 * t * count)
        for (f, frame) in frames.enumerated() {
            for c in 0..<3 {
                let base = (c * t + f) * count
                for p in 0..<count { values[base + p] = RGBImage.value(frame.pixels[p * 3 + c]) }
            }
        }
        return Tensor(shape: [3, t, h, w], scalars: values)
    }
}
