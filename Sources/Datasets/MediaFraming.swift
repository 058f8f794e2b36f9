import Foundation
import TensorCore
import VideoIO

/// How a media file of any size, aspect ratio and length becomes a training clip: the resize, crop and frame policy
/// of `goku data prepare`.
///
/// - **Size.** The frame is scaled (never up) so that its longest side is at most `maxSide`, keeping the aspect ratio,
///   then centre-cropped to the largest size whose sides are multiples of `multiple` (the VAE's 8× downsampling times
///   the transformer's 2×2 patch: 16), so every latent patchifies exactly. Scaling first keeps as much of the frame
///   as the cap allows; cropping the remainder (at most `multiple − 1` pixels a side) loses less than padding would
///   add, and padding would teach borders that are not in the data. A frame smaller than `multiple` on a side after
///   scaling is rejected.
/// - **Time.** A video is sampled at `framesPerSecond` (its own rate when nil or higher than the source's) from its
///   start, at most `maxFrames` frames, and cut to the longest 1 + 4k frames (the causal VAE's 4× temporal
///   compression maps 1 + 4k frames to 1 + k latent frames). A file of fewer than 5 kept frames becomes an image
///   (its first frame), and so does a still image.
public struct MediaFraming: Codable, Equatable, Hashable, Sendable {
    /// Longest side after scaling, pixels (the resolution cap of a training stage), e.g. 256.
    public var maxSide: Int
    /// Width and height are multiples of this, e.g. 16 (VAE 8× × patch 2).
    public var multiple: Int
    /// Frames kept per second of video (nil: the source rate), e.g. 8.
    public var framesPerSecond: Double?
    /// Most frames of a clip, 1 + 4k, e.g. 17.
    public var maxFrames: Int

    /// A policy; see the properties.
    public init(maxSide: Int = 256, multiple: Int = 16, framesPerSecond: Double? = 8, maxFrames: Int = 17) {
        self.maxSide = maxSide
        self.multiple = multiple
        self.framesPerSecond = framesPerSecond
        self.maxFrames = maxFrames
    }

    /// Throws `DatasetError.invalidOption` naming the first bad field.
    public func validate() throws {
        guard multiple >= 1 else { throw DatasetError.invalidOption(option: "multiple", reason: "must be positive") }
        guard maxSide >= multiple else {
            throw DatasetError.invalidOption(option: "maxSide", reason: "\(maxSide) is below the multiple \(multiple)")
        }
        guard maxFrames >= 1, (maxFrames - 1) % 4 == 0 else {
            throw DatasetError.invalidOption(option: "maxFrames", reason: "\(maxFrames) is not 1 + 4k")
        }
        if let framesPerSecond, !(framesPerSecond.isFinite && framesPerSecond > 0) {
            throw DatasetError.invalidOption(option: "framesPerSecond", reason: "must be positive")
        }
    }

    /// The scaled size (before cropping) and the cropped size of a `width` × `height` frame; nil when the crop would be
    /// empty.
    public func geometry(width: Int, height: Int) -> (scaledWidth: Int, scaledHeight: Int, width: Int, height: Int)? {
        guard width > 0, height > 0 else { return nil }
        let scale = min(1, Double(maxSide) / Double(max(width, height)))
        // Rounded to even sizes where possible: swscale and yuv420 sources prefer them; never above maxSide.
        let sw = min(maxSide, max(1, Int((Double(width) * scale).rounded())))
        let sh = min(maxSide, max(1, Int((Double(height) * scale).rounded())))
        let w = sw / multiple * multiple, h = sh / multiple * multiple
        guard w > 0, h > 0 else { return nil }
        return (sw, sh, w, h)
    }

    /// The frame count a clip of `available` kept frames is cut to: 1 + 4k ≤ min(available, maxFrames), 1 below 5.
    public func frameCount(available: Int) -> Int {
        let n = min(available, maxFrames)
        return n >= 5 ? 1 + (n - 1) / 4 * 4 : 1
    }

    /// Whether `url` is a still image by its extension (PNG, JPEG, WebP, BMP).
    public static func isStillImage(_ url: URL) -> Bool {
        ["png", "jpg", "jpeg", "webp", "bmp"].contains(url.pathExtension.lowercased())
    }

    /// Decodes `url` under this policy: a float32 clip (3, T, H, W) in [-1, 1], T = 1 + 4k.
    /// - Parameter info: the file's probe (`VideoIO.probe`), when already known.
    /// - Throws: `VideoIOError` for an unreadable file, `DatasetError.io` for one too small or with no frame.
    public func load(_ url: URL, info: VideoInfo? = nil) throws -> Tensor {
        let info = try info ?? VideoIO.probe(url)
        guard let g = geometry(width: info.width, height: info.height) else {
            throw DatasetError.io(
                path: url.path, reason: "\(info.width)×\(info.height) is smaller than \(multiple) pixels on a side")
        }
        let still = Self.isStillImage(url)
        let rate = still ? nil : framesPerSecond.flatMap { info.framesPerSecond > 0 && $0 >= info.framesPerSecond ? nil : $0 }
        let limit = still ? 1 : maxFrames
        var frames: [RGBFrame] = []
        try VideoIO.decode(
            url, options: DecodeOptions(framesPerSecond: rate, width: g.scaledWidth, height: g.scaledHeight, maxFrames: limit)
        ) { frame in
            frames.append(frame)
            return frames.count < limit
        }
        guard !frames.isEmpty else { throw DatasetError.io(path: url.path, reason: "no decodable frame") }
        frames.removeLast(frames.count - frameCount(available: frames.count))
        let clip = VideoIO.tensor(from: frames)  // (3, T, sh, sw)
        let x0 = (g.scaledWidth - g.width) / 2, y0 = (g.scaledHeight - g.height) / 2
        if x0 == 0 && y0 == 0 && g.width == g.scaledWidth && g.height == g.scaledHeight { return clip }
        return clip.slice(axis: 2, y0, y0 + g.height).slice(axis: 3, x0, x0 + g.width)
    }
}
