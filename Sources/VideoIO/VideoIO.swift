import Foundation
import TensorCore

/// Video files through FFmpeg's libraries: probe, decode at a chosen rate and size, cut and re-encode to H.264 MP4,
/// and the (3, T, H, W) tensor bridge used by the rest of the project.
public enum VideoIO {
    /// Reads duration, frame rate, size, bit rate and codec of `url` (opens the decoder too, so an unsupported codec
    /// fails here, as the paper's "FFmpeg Error" stage).
    public static func probe(_ url: URL) throws -> VideoInfo {
        try VideoInput(path: url.path, threads: 1).info()
    }

    /// Decodes `url` in order, calling `body` with each kept frame; `body` returns false to stop early.
    public static func decode(_ url: URL, options: DecodeOptions = DecodeOptions(), _ body: (RGBFrame) throws -> Bool)
        throws
    {
        try VideoInput(path: url.path, threads: options.threads).decode(options, body)
    }

    /// Every kept frame of `url` (see `DecodeOptions`).
    public static func decodeFrames(_ url: URL, options: DecodeOptions = DecodeOptions()) throws -> [RGBFrame] {
        var frames: [RGBFrame] = []
        try decode(url, options: options) {
            frames.append($0); return true
        }
        return frames
    }

    /// Re-encodes [start, end) of `url` to an H.264 MP4 at `destination`, at the source rate (or `framesPerSecond`)
    /// and the source size (or `width`/`height`). Returns the number of frames written.
    @discardableResult
    public static func cut(
        _ url: URL, start: Double, end: Double, to destination: URL, framesPerSecond: Double? = nil, width: Int? = nil,
        height: Int? = nil, crf: Int = 23
    ) throws -> Int {
        let input = try VideoInput(path: url.path, threads: 1)
        let info = input.info()
        let rate = framesPerSecond ?? (info.framesPerSecond > 0 ? info.framesPerSecond : 25)
        let size = outputSize(sourceWidth: info.width, sourceHeight: info.height, width: width, height: height)
        let writer = try MP4Writer(
            url: destination, width: size.width, height: size.height, framesPerSecond: rate, crf: crf)
        var count = 0
        try input.decode(
            DecodeOptions(
                framesPerSecond: framesPerSecond, width: size.width, height: size.height, start: start, end: end)
        ) {
            try writer.append($0)
            count += 1
            return true
        }
        guard count > 0 else {
            throw VideoIOError(path: url.path, operation: "decode", reason: "no frame in [\(start), \(end)) s")
        }
        try writer.finish()
        return count
    }

    /// Reads a whole video as a tensor (3, T, H, W), float32 in [-1, 1] (byte / 127.5 − 1), optionally resampled.
    public static func readVideo(
        _ url: URL, framesPerSecond: Double? = nil, width: Int? = nil, height: Int? = nil
    ) throws -> Tensor {
        let frames = try decodeFrames(
            url, options: DecodeOptions(framesPerSecond: framesPerSecond, width: width, height: height))
        return tensor(from: frames)
    }

    /// Frames (all of one size) as a tensor (3, T, H, W) in [-1, 1].
    public static func tensor(from frames: [RGBFrame]) -> Tensor {
        precondition(!frames.isEmpty, "VideoIO.tensor: no frames")
        let width = frames[0].width
        let height = frames[0].height
        let plane = width * height
        let count = frames.count
        var scalars = [Float](repeating: 0, count: 3 * count * plane)
        for (t, frame) in frames.enumerated() {
            precondition(frame.width == width && frame.height == height, "VideoIO.tensor: frames differ in size")
            for p in 0..<plane {
                for c in 0..<3 {
                    scalars[(c * count + t) * plane + p] = Float(frame.pixels[p * 3 + c]) / 127.5 - 1
                }
            }
        }
        return Tensor(shape: [3, count, height, width], scalars: scalars)
    }

    /// Frames from a tensor (3, T, H, W) in [-1, 1]; values outside are clamped, then rounded to bytes.
    public static func frames(from video: Tensor, framesPerSecond: Double = 1) -> [RGBFrame] {
        precondition(
            video.shape.count == 4 && video.shape[0] == 3, "VideoIO.frames: expected (3, T, H, W), got \(video.shape)")
        let (count, height, width) = (video.shape[1], video.shape[2], video.shape[3])
        let plane = width * height
        let scalars = video.scalars
        return (0..<count).map { t in
            var pixels = [UInt8](repeating: 0, count: plane * 3)
            for p in 0..<plane {
                for c in 0..<3 {
                    let value = (scalars[(c * count + t) * plane + p] + 1) * 127.5
                    pixels[p * 3 + c] = UInt8(max(0, min(255, value.rounded())))
                }
            }
            return RGBFrame(width: width, height: height, time: Double(t) / framesPerSecond, pixels: pixels)
        }
    }

    /// Writes a tensor (3, T, H, W) in [-1, 1] as an H.264 MP4 (atomically; odd sizes lose one pixel, see `MP4Writer`).
    public static func writeMP4(_ video: Tensor, to url: URL, framesPerSecond: Double, crf: Int = 18) throws {
        let frames = frames(from: video, framesPerSecond: framesPerSecond)
        guard let first = frames.first else {
            throw VideoIOError(path: url.path, operation: "encode", reason: "no frames")
        }
        let writer = try MP4Writer(
            url: url, width: first.width, height: first.height, framesPerSecond: framesPerSecond, crf: crf)
        for frame in frames { try writer.append(frame) }
        try writer.finish()
    }

    /// The output size for a decode: the source size, or the one requested, or the other side from the aspect ratio.
    static func outputSize(sourceWidth: Int, sourceHeight: Int, width: Int?, height: Int?) -> (width: Int, height: Int)
    {
        switch (width, height) {
        case let (w?, h?): return (max(1, w), max(1, h))
        case let (w?, nil):
            return (max(1, w), max(1, Int((Double(sourceHeight) * Double(w) / Double(sourceWidth)).rounded())))
        case let (nil, h?):
            return (max(1, Int((Double(sourceWidth) * Double(h) / Double(sourceHeight)).rounded())), max(1, h))
        case (nil, nil): return (sourceWidth, sourceHeight)
        }
    }
}
