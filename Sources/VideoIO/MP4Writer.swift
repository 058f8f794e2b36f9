import CFFmpeg
import Foundation

/// Encodes RGB frames to an H.264 MP4 file through libavcodec/libavformat.
///
/// Encoder choice: libx264 (Debian's libavcodec is built with it) at `crf` and preset "veryfast", yuv420p; when the
/// libavcodec at hand lacks libx264, its default H.264 encoder, then MPEG-4 part 2, so a file is always written.
/// yuv420p needs even sizes, so odd widths and heights are scaled down by one pixel. The file is written beside its
/// destination and renamed at `finish()`, so a killed run never leaves a half-written MP4 under the final name.
public final class MP4Writer {
    /// The destination.
    public let url: URL
    /// Encoded width (even).
    public let width: Int
    /// Encoded height (even).
    public let height: Int
    /// The codec used, e.g. "libx264".
    public let encoderName: String
    private let temporaryURL: URL
    private var format: UnsafeMutablePointer<AVFormatContext>?
    private var encoder: UnsafeMutablePointer<AVCodecContext>?
    private var stream: UnsafeMutablePointer<AVStream>
    private var frame: UnsafeMutablePointer<AVFrame>?
    private var packet: UnsafeMutablePointer<AVPacket>?
    private var scaler: OpaquePointer?
    private var frameCount: Int64 = 0
    private var finished = false

    /// Opens `url` for writing frames of `width`×`height` at `framesPerSecond`.
    /// - Parameters:
    ///   - crf: x264 constant rate factor (18 near lossless, 23 default, 28 small).
    ///   - threads: encoder threads (1 when several files are written in parallel).
    public init(url: URL, width: Int, height: Int, framesPerSecond: Double, crf: Int = 23, threads: Int = 1) throws {
        _ = ffmpegQuietOnce
        self.url = url
        self.width = max(2, width & ~1)
        self.height = max(2, height & ~1)
        let path = url.path
        guard framesPerSecond > 0, framesPerSecond.isFinite else {
            throw VideoIOError(path: path, operation: "encode", reason: "frame rate \(framesPerSecond) is not positive")
        }
        temporaryURL = url.deletingLastPathComponent().appendingPathComponent(
            ".\(url.lastPathComponent).\(ProcessInfo.processInfo.processIdentifier).partial")
        var context: UnsafeMutablePointer<AVFormatContext>? = nil
        guard avformat_alloc_output_context2(&context, nil, "mp4", temporaryURL.path) >= 0, let context else {
            throw VideoIOError(path: path, operation: "encode", reason: "mp4 muxer unavailable")
        }
        format = context
        let codec =
            avcodec_find_encoder_by_name("libx264") ?? avcodec_find_encoder(AV_CODEC_ID_H264)
            ?? avcodec_find_encoder(AV_CODEC_ID_MPEG4)
        guard let codec, let newStream = avformat_new_stream(context, nil),
            let codecContext = avcodec_alloc_context3(codec)
        else {
            avformat_free_context(context)
            throw VideoIOError(path: path, operation: "encode", reason: "no H.264 or MPEG-4 encoder in libavcodec")
        }
        encoderName = String(cString: codec.pointee.name)
        stream = newStream
        encoder = codecContext
        let rate = av_d2q(framesPerSecond, 100_000)
        codecContext.pointee.width = Int32(self.width)
        codecContext.pointee.height = Int32(self.height)
        codecContext.pointee.pix_fmt = AV_PIX_FMT_YUV420P
        codecContext.pointee.framerate = rate
        codecContext.pointee.time_base = AVRational(num: rate.den, den: rate.num)
        codecContext.pointee.gop_size = 12
        codecContext.pointee.thread_count = Int32(max(1, threads))
        if encoderName == "libx264" {
            av_opt_set(codecContext.pointee.priv_data, "crf", "\(crf)", 0)
            av_opt_set(codecContext.pointee.priv_data, "preset", "veryfast", 0)
        } else {
            codecContext.pointee.bit_rate = Int64(self.width * self.height) * 4
        }
        if (context.pointee.oformat.pointee.flags & AVFMT_GLOBALHEADER) != 0 {
            codecContext.pointee.flags |= Int32(AV_CODEC_FLAG_GLOBAL_HEADER)
        }
        var code = avcodec_open2(codecContext, codec, nil)
        guard code >= 0 else {
            close()
            throw VideoIOError(path: path, operation: "encode", reason: ffmpegMessage(code))
        }
        avcodec_parameters_from_context(newStream.pointee.codecpar, codecContext)
        newStream.pointee.time_base = codecContext.pointee.time_base
        newStream.pointee.avg_frame_rate = rate
        code = avio_open(&context.pointee.pb, temporaryURL.path, AVIO_FLAG_WRITE)
        guard code >= 0 else {
            close()
            throw VideoIOError(path: path, operation: "encode", reason: ffmpegMessage(code))
        }
        code = avformat_write_header(context, nil)
        guard code >= 0 else {
            close()
            throw VideoIOError(path: path, operation: "encode", reason: ffmpegMessage(code))
        }
        frame = av_frame_alloc()
        packet = av_packet_alloc()
        guard let frame else { close(); throw VideoIOError(path: path, operation: "encode", reason: "out of memory") }
        frame.pointee.format = AV_PIX_FMT_YUV420P.rawValue
        frame.pointee.width = Int32(self.width)
        frame.pointee.height = Int32(self.height)
        guard av_frame_get_buffer(frame, 0) >= 0 else {
            close()
            throw VideoIOError(path: path, operation: "encode", reason: "out of memory")
        }
    }

    deinit { close() }

    /// Encodes one frame (any size: it is scaled to the writer's size).
    public func append(_ image: RGBFrame) throws {
        guard !finished, let frame, let encoder else {
            throw VideoIOError(path: url.path, operation: "encode", reason: "frame appended after finish")
        }
        scaler = sws_getCachedContext(
            scaler, Int32(image.width), Int32(image.height), AV_PIX_FMT_RGB24, Int32(width), Int32(height),
            AV_PIX_FMT_YUV420P, SWS_BICUBIC, nil, nil, nil)
        guard let scaler else { throw VideoIOError(path: url.path, operation: "encode", reason: "no scaler") }
        guard av_frame_make_writable(frame) >= 0 else {
            throw VideoIOError(path: url.path, operation: "encode", reason: "frame not writable")
        }
        image.pixels.withUnsafeBufferPointer { input in
            let sources: [UnsafePointer<UInt8>?] = [input.baseAddress, nil, nil, nil]
            let strides: [Int32] = [Int32(image.width * 3), 0, 0, 0]
            var destinations: [UnsafeMutablePointer<UInt8>?] = [
                frame.pointee.data.0, frame.pointee.data.1, frame.pointee.data.2, nil,
            ]
            var destinationStrides: [Int32] = [
                frame.pointee.linesize.0, frame.pointee.linesize.1, frame.pointee.linesize.2, 0,
            ]
            _ = sws_scale(scaler, sources, strides, 0, Int32(image.height), &destinations, &destinationStrides)
        }
        frame.pointee.pts = frameCount
        frameCount += 1
        try send(frame, encoder)
    }

    /// Flushes the encoder, writes the trailer and moves the file to `url`. Throws if no frame was appended.
    public func finish() throws {
        guard !finished, let encoder, let format else { return }
        finished = true
        try send(nil, encoder)
        let code = av_write_trailer(format)
        close()
        guard code >= 0 else {
            try? FileManager.default.removeItem(at: temporaryURL)
            throw VideoIOError(path: url.path, operation: "encode", reason: ffmpegMessage(code))
        }
        guard frameCount > 0 else {
            try? FileManager.default.removeItem(at: temporaryURL)
            throw VideoIOError(path: url.path, operation: "encode", reason: "no frames")
        }
        if rename(temporaryURL.path, url.path) != 0 {
            throw VideoIOError(path: url.path, operation: "encode", reason: "rename failed: errno \(errno)")
        }
    }

    private func send(_ frame: UnsafeMutablePointer<AVFrame>?, _ encoder: UnsafeMutablePointer<AVCodecContext>) throws {
        var code = avcodec_send_frame(encoder, frame)
        guard code >= 0 else { throw VideoIOError(path: url.path, operation: "encode", reason: ffmpegMessage(code)) }
        guard let packet, let format else { return }
        while true {
            code = avcodec_receive_packet(encoder, packet)
            if code == cffmpeg_error_eagain() || code == cffmpeg_error_eof() { return }
            guard code >= 0 else {
                throw VideoIOError(path: url.path, operation: "encode", reason: ffmpegMessage(code))
            }
            av_packet_rescale_ts(packet, encoder.pointee.time_base, stream.pointee.time_base)
            packet.pointee.stream_index = stream.pointee.index
            code = av_interleaved_write_frame(format, packet)
            av_packet_unref(packet)
            guard code >= 0 else {
                throw VideoIOError(path: url.path, operation: "encode", reason: ffmpegMessage(code))
            }
        }
    }

    private func close() {
        sws_freeContext(scaler)
        scaler = nil
        av_frame_free(&frame)
        av_packet_free(&packet)
        avcodec_free_context(&encoder)
        if let format {
            if format.pointee.pb != nil { avio_closep(&format.pointee.pb) }
            avformat_free_context(format)
            self.format = nil
        }
        if !finished { try? FileManager.default.removeItem(at: temporaryURL) }
    }
}
