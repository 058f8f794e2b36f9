// zlib's deflate/inflate and CRC-32, for PNG (Debian: zlib1g-dev).
#include <zlib.h>
