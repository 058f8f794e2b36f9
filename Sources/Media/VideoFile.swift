import Foundation
import TensorCore
import VideoIO

/// Reads and writes videos as tensors `(3, T, H, W)` with values in [-1, 1], choosing the format by extension.
///
/// - `.png`: a one-frame video (an image is a one-frame clip, as for the VAE);
/// - `.gif`: an animated GIF (see `GIFCodec`: frames composed onto the full canvas; written looping forever);
/// - `.mp4` (also `.mov`, `.webm`, `.mkv`, `.avi` for reading): through FFmpeg's libraries (`VideoIO`); written as
///   H.264 in an MP4 container.
/// Writes are atomic (temporary file, then rename).
public enum VideoFile {
    /// Reads a `.png` (one frame) or `.gif` file as a float32 tensor `(3, T, H, W)` in [-1, 1].
    ///
    /// Throws `MediaError` naming the file for an unknown or unsupported extension, or a corrupt or truncated file.
    public static func read(_ url: URL) throws -> Tensor {
        if case .ffmpeg = try Format(url) { return try VideoIO.readVideo(url) }
        return RGBImage.video(try readFrames(url))
    }

    /// Reads the frames of a `.png` or `.gif` file as 8-bit RGB.
    public static func readFrames(_ url: URL) throws -> [RGBImage] {
        switch try Format(url) {
        case .png: return [try ImageFile.readRGB(url)]
        case .gif: return try GIFCodec.decode(try MediaIO.readBytes(url), file: url.path).frames
        case .ffmpeg: return try RGBImage.frames(of: try VideoIO.readVideo(url), file: url.path)
        }
    }

    /// Writes `video`, a tensor `(3, T, H, W)` in [-1, 1], as `.gif` (any T) or `.png` (T = 1).
    ///
    /// - Parameters:
    ///   - framesPerSecond: the playback rate; GIF stores a delay in centiseconds, `GIFCodec.delay(framesPerSecond:)`.
    ///   - palette: GIF colour choice; exact colours when the clip has at most 256, else a dithered colour cube.
    public static func write(
        _ video: Tensor, to url: URL, framesPerSecond: Double,
        palette: GIFCodec.Palette = .automatic(dithering: true)
    ) throws {
        if case .ffmpeg = try Format(url) {
            guard url.pathExtension.lowercased() == "mp4" else {
                throw MediaError.unsupported(file: url.path, reason: "videos are written as .mp4, .gif or .png")
            }
            guard framesPerSecond.isFinite, framesPerSecond > 0 else {
                throw MediaError.invalidInput(file: url.path, reason: "frames per second \(framesPerSecond)")
            }
            try VideoIO.writeMP4(video, to: url, framesPerSecond: framesPerSecond)
            return
        }
        let frames = try RGBImage.frames(of: video, file: url.path)
        try write(frames, to: url, framesPerSecond: framesPerSecond, palette: palette)
    }

    /// Writes 8-bit RGB frames as `.gif` (any count) or `.png` (one frame).
    public static func write(
        _ frames: [RGBImage], to url: URL, framesPerSecond: Double,
        palette: GIFCodec.Palette = .automatic(dithering: true)
    ) throws {
        guard let first = frames.first, first.width > 0, first.height > 0,
            frames.allSatisfy({ $0.width == first.width && $0.height == first.height })
        else { throw MediaError.invalidInput(file: url.path, reason: "no frames, an empty frame or unequal sizes") }
        guard framesPerSecond.isFinite, framesPerSecond > 0 else {
            throw MediaError.invalidInput(file: url.path, reason: "frames per second \(framesPerSecond)")
        }
        switch try Format(url) {
        case .png:
            guard frames.count == 1 else {
                throw MediaError.invalidInput(
                    file: url.path, reason: "a .png holds one frame, the video has \(frames.count); use .gif")
            }
            try ImageFile.write(first, to: url)
        case .gif:
            guard first.width <= 65535, first.height <= 65535 else {
                throw MediaError.invalidInput(file: url.path, reason: "GIF frames are at most 65535×65535")
            }
            let delay = GIFCodec.delay(framesPerSecond: framesPerSecond)
            try MediaIO.writeAtomically(GIFCodec.encode(frames, delay: delay, palette: palette), to: url)
        case .ffmpeg:
            try write(RGBImage.video(frames), to: url, framesPerSecond: framesPerSecond)
        }
    }

    /// The formats handled here.
    enum Format {
        case png, gif, ffmpeg

        init(_ url: URL) throws {
            switch url.pathExtension.lowercased() {
            case "png": self = .png
            case "gif": self = .gif
            case "mp4", "mov", "webm", "mkv", "avi": self = .ffmpeg
            default:
                throw MediaError.unsupported(
                    file: url.path, reason: "unknown extension \".\(url.pathExtension)\" (expected .png, .gif or .mp4)")
            }
        }
    }
}
