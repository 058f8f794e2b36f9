import Foundation
import TensorCore

/// Reads and writes still images as tensors `(3, H, W)` with values in [-1, 1].
///
/// PNG only (see `PNGCodec` for what is read: every colour type, alpha composited over black; interlaced files are
/// rejected with a clear error). Writes are atomic (temporary file, then rename).
public enum ImageFile {
    /// Reads a PNG file as a float32 tensor `(3, H, W)` in [-1, 1].
    ///
    /// Throws `MediaError` naming the file when it cannot be read, is not a PNG, or is corrupt or truncated.
    public static func read(_ url: URL) throws -> Tensor {
        try readRGB(url).tensor()
    }

    /// Reads a PNG file as 8-bit RGB.
    public static func readRGB(_ url: URL) throws -> RGBImage {
        let bytes = try MediaIO.readBytes(url)
        return try PNGCodec.decode(bytes, file: url.path)
    }

    /// Writes `image`, a tensor `(3, H, W)` in [-1, 1] (rounded and clamped to 8 bits), as an RGB PNG.
    ///
    /// Throws `MediaError.invalidInput` for another shape or an extension other than `.png`.
    public static func write(_ image: Tensor, to url: URL) throws {
        try write(try RGBImage(image, file: url.path), to: url)
    }

    /// Writes 8-bit RGB as a PNG file.
    public static func write(_ image: RGBImage, to url: URL) throws {
        guard url.pathExtension.lowercased() == "png" else {
            throw MediaError.invalidInput(file: url.path, reason: "images are written as .png, not .\(url.pathExtension)")
        }
        guard image.width > 0, image.height > 0 else {
            throw MediaError.invalidInput(file: url.path, reason: "empty image \(image.width)×\(image.height)")
        }
        try MediaIO.writeAtomically(try PNGCodec.encode(image), to: url)
    }
}
