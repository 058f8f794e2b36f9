// Tesseract's C API (libtesseract) for Swift.
#include <tesseract/capi.h>
