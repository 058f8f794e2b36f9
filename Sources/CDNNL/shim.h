// oneDNN's C API (Debian libdnnl-dev, oneDNN 2.x). Debian ships no pkg-config file for it, so the module map links
// "dnnl" by name. The execution-argument macros are re-exported as constants (Swift does not import macros defined
// in terms of other macros).
#include <dnnl.h>

static const int GOKU_DNNL_ARG_SRC = DNNL_ARG_SRC;
static const int GOKU_DNNL_ARG_WEIGHTS = DNNL_ARG_WEIGHTS;
static const int GOKU_DNNL_ARG_DST = DNNL_ARG_DST;
static const int GOKU_DNNL_ARG_FROM = DNNL_ARG_FROM;
static const int GOKU_DNNL_ARG_TO = DNNL_ARG_TO;
static const int GOKU_DNNL_ARG_BIAS = DNNL_ARG_BIAS;
static const int GOKU_DNNL_ARG_DIFF_SRC = DNNL_ARG_DIFF_SRC;
static const int GOKU_DNNL_ARG_DIFF_DST = DNNL_ARG_DIFF_DST;
static const int GOKU_DNNL_ARG_DIFF_WEIGHTS = DNNL_ARG_DIFF_WEIGHTS;
static const int GOKU_DNNL_ARG_DIFF_BIAS = DNNL_ARG_DIFF_BIAS;
