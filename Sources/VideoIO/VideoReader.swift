import CFFmpeg
import Foundation

/// How `VideoIO.decode` samples and scales frames.
public struct DecodeOptions: Sendable {
    /// Frames per second to keep (nil: every decoded frame). A frame is kept when its time reaches the next sampling
    /// instant (start, start + 1/rate, …) within half a source frame, so 1 fps on a 30 fps file keeps frames 0, 30, 60….
    public var framesPerSecond: Double?
    /// Output width (nil: the source's, or from `height` keeping the aspect ratio).
    public var width: Int?
    /// Output height (nil: the source's, or from `width` keeping the aspect ratio).
    public var height: Int?
    /// First time to keep, seconds.
    public var start: Double
    /// Time to stop before, seconds (nil: the end of the stream).
    public var end: Double?
    /// Stop after this many frames (nil: no limit).
    public var maxFrames: Int?
    /// Decoder threads. 1 by default: curation runs one file per worker, so the workers already fill the cores.
    public var threads: Int

    /// Options; every field defaults to "all of it, as stored".
    public init(
        framesPerSecond: Double? = nil, width: Int? = nil, height: Int? = nil, start: Double = 0, end: Double? = nil,
        maxFrames: Int? = nil, threads: Int = 1
    ) {
        self.framesPerSecond = framesPerSecond
        self.width = width
        self.height = height
        self.start = start
        self.end = end
        self.maxFrames = maxFrames
        self.threads = threads
    }
}

/// An opened input file with its video decoder (owned; freed on deinit).
final class VideoInput {
    let path: String
    var format: UnsafeMutablePointer<AVFormatContext>?
    var decoder: UnsafeMutablePointer<AVCodecContext>?
    let streamIndex: Int32
    let stream: UnsafeMutablePointer<AVStream>

    init(path: String, threads: Int) throws {
        _ = ffmpegQuietOnce
        self.path = path
        var context: UnsafeMutablePointer<AVFormatContext>? = nil
        var code = avformat_open_input(&context, path, nil, nil)
        guard code >= 0, let context else {
            throw VideoIOError(path: path, operation: "open", reason: ffmpegMessage(code))
        }
        format = context
        code = avformat_find_stream_info(context, nil)
        guard code >= 0 else {
            avformat_close_input(&format)
            throw VideoIOError(path: path, operation: "probe", reason: ffmpegMessage(code))
        }
        let index = av_find_best_stream(context, AVMEDIA_TYPE_VIDEO, -1, -1, nil, 0)
        guard index >= 0, let found = context.pointee.streams[Int(index)] else {
            avformat_close_input(&format)
            throw VideoIOError(path: path, operation: "probe", reason: "no video stream")
        }
        streamIndex = index
        stream = found
        guard let parameters = found.pointee.codecpar, let codec = avcodec_find_decoder(parameters.pointee.codec_id),
            let decoderContext = avcodec_alloc_context3(codec)
        else {
            avformat_close_input(&format)
            throw VideoIOError(path: path, operation: "open", reason: "no decoder for the video stream")
        }
        decoder = decoderContext
        avcodec_parameters_to_context(decoderContext, parameters)
        decoderContext.pointee.thread_count = Int32(max(1, threads))
        code = avcodec_open2(decoderContext, codec, nil)
        guard code >= 0 else {
            avcodec_free_context(&decoder)
            avformat_close_input(&format)
            throw VideoIOError(path: path, operation: "open", reason: ffmpegMessage(code))
        }
    }

    deinit {
        avcodec_free_context(&decoder)
        avformat_close_input(&format)
    }

    /// Stream facts without decoding.
    func info() -> VideoInfo {
        let context = format!
        let parameters = stream.pointee.codecpar!.pointee
        var rate = av_q2d(stream.pointee.avg_frame_rate)
        if !rate.isFinite || rate <= 0 { rate = av_q2d(stream.pointee.r_frame_rate) }
        if !rate.isFinite || rate <= 0 { rate = 0 }
        var duration = 0.0
        if context.pointee.duration > 0 {
            duration = Double(context.pointee.duration) / Double(AV_TIME_BASE)
        } else if stream.pointee.duration > 0 {
            duration = Double(stream.pointee.duration) * av_q2d(stream.pointee.time_base)
        }
        var bitRate = Int(parameters.bit_rate)
        if bitRate <= 0 { bitRate = Int(context.pointee.bit_rate) }
        if bitRate <= 0, duration > 0,
            let size = try? FileManager.default.attributesOfItem(atPath: path)[.size] as? Int
        {
            bitRate = Int(Double(size * 8) / duration)
        }
        let codec = avcodec_get_name(parameters.codec_id).map { String(cString: $0) } ?? "unknown"
        return VideoInfo(
            duration: duration, framesPerSecond: rate, width: Int(parameters.width), height: Int(parameters.height),
            bitRate: bitRate, codec: codec)
    }

    /// Decodes frames in order, converted to RGB24 at the requested size and rate; `body` returns false to stop.
    func decode(_ options: DecodeOptions, _ body: (RGBFrame) throws -> Bool) throws {
        let context = format!
        let decoderContext = decoder!
        let timeBase = av_q2d(stream.pointee.time_base)
        let startTime = stream.pointee.start_time == cffmpeg_nopts_value() ? 0 : stream.pointee.start_time
        let sourceRate = info().framesPerSecond
        let halfFrame = sourceRate > 0 ? 0.5 / sourceRate : 0.0
        if options.start > 0 {
            let target = startTime + Int64(options.start / timeBase)
            if av_seek_frame(context, streamIndex, target, AVSEEK_FLAG_BACKWARD) >= 0 {
                avcodec_flush_buffers(decoderContext)
            }
        }
        guard let packet = av_packet_alloc() else {
            throw VideoIOError(path: path, operation: "decode", reason: "out of memory")
        }
        guard let frame = av_frame_alloc() else {
            throw VideoIOError(path: path, operation: "decode", reason: "out of memory")
        }
        var packetBox: UnsafeMutablePointer<AVPacket>? = packet
        var frameBox: UnsafeMutablePointer<AVFrame>? = frame
        defer {
            av_packet_free(&packetBox)
            av_frame_free(&frameBox)
        }
        var scaler: OpaquePointer? = nil
        defer { sws_freeContext(scaler) }
        var nextTime = options.start
        var emitted = 0
        var decoded = 0
        var errors = 0
        var lastError: Int32 = 0
        var finished = false
        var frameIndex = 0

        // Receives every frame the decoder has ready; returns false when the caller wants no more.
        func drain() throws -> Bool {
            while true {
                let code = avcodec_receive_frame(decoderContext, frame)
                if code == cffmpeg_error_eagain() || code == cffmpeg_error_eof() { return true }
                if code < 0 {
                    errors += 1
                    lastError = code
                    return true
                }
                defer { av_frame_unref(frame) }
                decoded += 1
                var stamp = frame.pointee.best_effort_timestamp
                if stamp == cffmpeg_nopts_value() { stamp = frame.pointee.pts }
                let time =
                    stamp == cffmpeg_nopts_value()
                    ? Double(frameIndex) / max(sourceRate, 1) : Double(stamp - startTime) * timeBase
                frameIndex += 1
                if let end = options.end, time >= end - 1e-9 { return false }
                if time + halfFrame < nextTime { continue }
                if let rate = options.framesPerSecond {
                    while nextTime <= time + halfFrame { nextTime += 1 / rate }
                }
                let rgb = try convert(frame, time: time, options: options, scaler: &scaler)
                emitted += 1
                if try !body(rgb) { return false }
                if let limit = options.maxFrames, emitted >= limit { return false }
            }
        }

        while !finished, av_read_frame(context, packet) >= 0 {
            defer { av_packet_unref(packet) }
            guard packet.pointee.stream_index == streamIndex else { continue }
            let code = avcodec_send_packet(decoderContext, packet)
            if code < 0 && code != cffmpeg_error_eagain() {
                errors += 1
                lastError = code
            }
            if try !drain() { finished = true }
        }
        if !finished {
            avcodec_send_packet(decoderContext, nil)
            _ = try drain()
        }
        if decoded == 0 && errors > 0 {
            throw VideoIOError(path: path, operation: "decode", reason: ffmpegMessage(lastError))
        }
        if decoded == 0 && options.start == 0 {
            throw VideoIOError(path: path, operation: "decode", reason: "no frame could be decoded")
        }
    }

    /// Scales one decoded frame to packed RGB24.
    private func convert(
        _ frame: UnsafeMutablePointer<AVFrame>, time: Double, options: DecodeOptions, scaler: inout OpaquePointer?
    ) throws -> RGBFrame {
        let sourceWidth = Int(frame.pointee.width)
        let sourceHeight = Int(frame.pointee.height)
        let (width, height) = VideoIO.outputSize(
            sourceWidth: sourceWidth, sourceHeight: sourceHeight, width: options.width, height: options.height)
        scaler = sws_getCachedContext(
            scaler, Int32(sourceWidth), Int32(sourceHeight), AVPixelFormat(rawValue: frame.pointee.format),
            Int32(width), Int32(height), AV_PIX_FMT_RGB24, SWS_AREA, nil, nil, nil)
        guard let scaler else {
            throw VideoIOError(
                path: path, operation: "decode", reason: "cannot convert pixel format \(frame.pointee.format)")
        }
        var pixels = [UInt8](repeating: 0, count: width * height * 3)
        let sources: [UnsafePointer<UInt8>?] = [
            UnsafePointer(frame.pointee.data.0), UnsafePointer(frame.pointee.data.1),
            UnsafePointer(frame.pointee.data.2), UnsafePointer(frame.pointee.data.3),
        ]
        let strides: [Int32] = [
            frame.pointee.linesize.0, frame.pointee.linesize.1, frame.pointee.linesize.2, frame.pointee.linesize.3,
        ]
        pixels.withUnsafeMutableBufferPointer { out in
            var destinations: [UnsafeMutablePointer<UInt8>?] = [out.baseAddress, nil, nil, nil]
            var destinationStrides: [Int32] = [Int32(width * 3), 0, 0, 0]
            _ = sws_scale(scaler, sources, strides, 0, Int32(sourceHeight), &destinations, &destinationStrides)
        }
        return RGBFrame(width: width, height: height, time: time, pixels: pixels)
    }
}
