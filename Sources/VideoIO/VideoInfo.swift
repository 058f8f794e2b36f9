import Foundation

/// What `VideoIO.probe` reads from a container without decoding: the paper's "Read Video Info" step.
public struct VideoInfo: Codable, Sendable, Equatable {
    /// Duration in seconds (container duration, else the video stream's).
    public var duration: Double
    /// Average frame rate of the video stream (frames per second), e.g. 23.976 or 30.
    public var framesPerSecond: Double
    /// Frame width in pixels.
    public var width: Int
    /// Frame height in pixels.
    public var height: Int
    /// Bit rate in bits per second: the video stream's when the container states it, else the container's, else
    /// file size × 8 / duration.
    public var bitRate: Int
    /// Short codec name, e.g. "h264".
    public var codec: String

    /// The shorter side in pixels (the paper's resolution criterion is min(height, width)).
    public var shorterSide: Int { min(width, height) }

    /// A probe result from its fields.
    public init(duration: Double, framesPerSecond: Double, width: Int, height: Int, bitRate: Int, codec: String) {
        self.duration = duration
        self.framesPerSecond = framesPerSecond
        self.width = width
        self.height = height
        self.bitRate = bitRate
        self.codec = codec
    }
}

/// A failure of the video libraries on one file. Curation records it per file (the paper's "FFmpeg Error" stage) and
/// goes on with the next file.
public struct VideoIOError: Error, CustomStringConvertible, Sendable {
    /// The file concerned.
    public var path: String
    /// What was being done: "open", "probe", "decode", "encode".
    public var operation: String
    /// FFmpeg's message or ours.
    public var reason: String

    /// An error on `path` during `operation`.
    public init(path: String, operation: String, reason: String) {
        self.path = path
        self.operation = operation
        self.reason = reason
    }

    /// "<path>: <operation> failed: <reason>".
    public var description: String { "\(path): \(operation) failed: \(reason)" }
}

/// One decoded frame, packed RGB24 rows (3 bytes a pixel, no padding).
public struct RGBFrame: Sendable {
    /// Width in pixels.
    public var width: Int
    /// Height in pixels.
    public var height: Int
    /// Presentation time in seconds from the start of the stream.
    public var time: Double
    /// `height * width * 3` bytes, row-major, R G B.
    public var pixels: [UInt8]

    /// A frame from packed RGB24 bytes.
    public init(width: Int, height: Int, time: Double, pixels: [UInt8]) {
        precondition(pixels.count == width * height * 3, "RGBFrame: \(pixels.count) bytes for \(width)x\(height)")
        self.width = width
        self.height = height
        self.time = time
        self.pixels = pixels
    }
}
