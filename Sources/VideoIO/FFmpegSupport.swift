import CFFmpeg

/// FFmpeg's message for an error code.
func ffmpegMessage(_ code: Int32) -> String {
    var buffer = [CChar](repeating: 0, count: 256)
    cffmpeg_error_string(code, &buffer, buffer.count)
    return String(cString: buffer)
}

/// Silences FFmpeg's own logging once: errors reach callers as thrown `VideoIOError`s instead of stderr noise.
let ffmpegQuietOnce: Void = { cffmpeg_quiet() }()
