import CFFmpeg
import Foundation

/// Still-image encoding through libavcodec's PNG and MJPEG encoders (for caption requests and report charts).
public enum ImageCodec {
    /// An image file format.
    public enum Format: Sendable {
        /// Lossless PNG (rgb24).
        case png
        /// Baseline JPEG (yuvj420p) at a quality scale 2 (best) … 31 (worst).
        case jpeg(quality: Int)
    }

    /// Encodes one frame; throws `VideoIOError` when libavcodec lacks the encoder.
    public static func encode(_ frame: RGBFrame, as format: Format) throws -> Data {
        _ = ffmpegQuietOnce
        let isPNG: Bool
        if case .png = format { isPNG = true } else { isPNG = false }
        let name = isPNG ? "png" : "mjpeg"
        let pixelFormat = isPNG ? AV_PIX_FMT_RGB24 : AV_PIX_FMT_YUVJ420P
        guard let codec = avcodec_find_encoder_by_name(name), var context = Optional(avcodec_alloc_context3(codec)),
            let c = context
        else { throw VideoIOError(path: "<\(name)>", operation: "encode", reason: "no \(name) encoder") }
        defer { avcodec_free_context(&context) }
        let width = isPNG ? frame.width : max(2, frame.width & ~1)
        let height = isPNG ? frame.height : max(2, frame.height & ~1)
        c.pointee.width = Int32(width)
        c.pointee.height = Int32(height)
        c.pointee.pix_fmt = pixelFormat
        c.pointee.time_base = AVRational(num: 1, den: 25)
        if case let .jpeg(quality) = format {
            c.pointee.flags |= Int32(AV_CODEC_FLAG_QSCALE)
            c.pointee.global_quality = Int32(max(2, min(31, quality))) * FF_QP2LAMBDA
        }
        var code = avcodec_open2(c, codec, nil)
        guard code >= 0 else { throw VideoIOError(path: "<\(name)>", operation: "encode", reason: ffmpegMessage(code)) }
        var picture = av_frame_alloc()
        var packet = av_packet_alloc()
        defer {
            av_frame_free(&picture)
            av_packet_free(&packet)
        }
        guard let picture, let packet else {
            throw VideoIOError(path: "<\(name)>", operation: "encode", reason: "out of memory")
        }
        picture.pointee.format = pixelFormat.rawValue
        picture.pointee.width = Int32(width)
        picture.pointee.height = Int32(height)
        picture.pointee.quality = c.pointee.global_quality
        guard av_frame_get_buffer(picture, 0) >= 0 else {
            throw VideoIOError(path: "<\(name)>", operation: "encode", reason: "out of memory")
        }
        let scaler = sws_getContext(
            Int32(frame.width), Int32(frame.height), AV_PIX_FMT_RGB24, Int32(width), Int32(height), pixelFormat,
            SWS_BICUBIC, nil, nil, nil)
        defer { sws_freeContext(scaler) }
        frame.pixels.withUnsafeBufferPointer { input in
            let sources: [UnsafePointer<UInt8>?] = [input.baseAddress, nil, nil, nil]
            let strides: [Int32] = [Int32(frame.width * 3), 0, 0, 0]
            var destinations: [UnsafeMutablePointer<UInt8>?] = [
                picture.pointee.data.0, picture.pointee.data.1, picture.pointee.data.2, nil,
            ]
            var destinationStrides: [Int32] = [
                picture.pointee.linesize.0, picture.pointee.linesize.1, picture.pointee.linesize.2, 0,
            ]
            _ = sws_scale(scaler, sources, strides, 0, Int32(frame.height), &destinations, &destinationStrides)
        }
        code = avcodec_send_frame(c, picture)
        guard code >= 0 else { throw VideoIOError(path: "<\(name)>", operation: "encode", reason: ffmpegMessage(code)) }
        avcodec_send_frame(c, nil)
        var data = Data()
        while avcodec_receive_packet(c, packet) >= 0 {
            data.append(packet.pointee.data, count: Int(packet.pointee.size))
            av_packet_unref(packet)
        }
        guard !data.isEmpty else { throw VideoIOError(path: "<\(name)>", operation: "encode", reason: "empty output") }
        return data
    }
}
