// FFmpeg's libraries (libavformat, libavcodec, libswscale, libavutil) for Swift.
// The helpers below wrap macros that Swift cannot import (error codes, AV_NOPTS_VALUE).
#include <libavformat/avformat.h>
#include <libavcodec/avcodec.h>
#include <libavutil/avutil.h>
#include <libavutil/imgutils.h>
#include <libavutil/opt.h>
#include <libswscale/swscale.h>
#include <errno.h>

static inline int cffmpeg_error_eagain(void) { return AVERROR(EAGAIN); }
static inline int cffmpeg_error_eof(void) { return AVERROR_EOF; }
static inline int64_t cffmpeg_nopts_value(void) { return AV_NOPTS_VALUE; }
static inline void cffmpeg_error_string(int code, char *buffer, size_t size) { av_strerror(code, buffer, size); }
static inline void cffmpeg_quiet(void) { av_log_set_level(AV_LOG_QUIET); }
