import Foundation
import TensorCore

/// Reads and writes videos as tensors `(3, T, H, W)` with values in [-1, 1], choosing the format by extension.
///
/// - `.png`: a one-frame video (an image is a one-frame clip, as for the VAE);
/// - `.gif`: an animated GIF (see `GIFCodec`: frames composed onto the full canvas; written looping forever);
/// - `.mp4`: not handled here: MP4 needs FFmpeg, which lives in its own target; these functions throw
///   `MediaError.unsupported` saying so.
/// Writes are atomic (temporary file, then rename).
public enum VideoFile {
    /// Reads a `.png` (one frame) or `.gif` file as a float32 tensor `(3, T, H, W)` in [-1, 1].
    ///
    /// Throws `MediaError` naming the file for an unknown or unsupported extension, or a corrupt or truncated file.
    public static func read(_ url: URL) throws -> Tensor {
        RGBImage.video(try readFrames(url))
    }

    /// Reads the frames of a `.png` or `.gif` file as 8-bit RGB.
    public static func readFrames(_ url: URL) throws -> [RGBImage] {
        switch try Format(url) {
        case .png: return [try ImageFile.readRGB(url)]
        case .gif: return try GIFCodec.decode(try MediaIO.readBytes(url), file: url.path).frames
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
        }
    }

    /// The formats handled here.
    enum Format {
        case png, gif

        init(_ url: URL) throws {
            switch url.pathExtension.lowercased() {
            case "png": self = .png
            case "gif": self = .gif
            case "mp4", "mov", "webm", "mkv", "avi":
                throw MediaError.unsupported(
                    file: url.path, reason: ".\(url.pathExtension) video needs FFmpeg, which this build does not have; "
                        + "use .gif or .png")
            default:
                throw MediaError.unsupported(
                    file: url.path, reason: "unknown extension \".\(url.pathExtension)\" (expected .png or .gif)")
            }
        }
    }
}
