import CTesseract
import Foundation
import VideoIO

/// OCR text coverage with Tesseract (the paper uses an internal OCR model): the area of the largest text line found
/// on a frame over the frame area. A line counts when Tesseract's confidence is at least `minimumConfidence` and it
/// holds at least two letters or digits, so texture that Tesseract reads as noise does not count as text.
/// One instance per worker thread (a Tesseract handle is not thread-safe).
public final class TextCoverage {
    private var handle: OpaquePointer?
    /// Lowest mean word confidence (0–100) of a counted line.
    public var minimumConfidence: Float = 60

    /// Loads Tesseract's English model from the default data path (Debian tesseract-ocr-eng), or `dataPath`.
    public init(dataPath: String? = nil) throws {
        guard let api = TessBaseAPICreate() else {
            throw CurationError.file(path: "libtesseract", reason: "cannot create")
        }
        handle = api
        if TessBaseAPIInit3(api, dataPath, "eng") != 0 {
            TessBaseAPIDelete(api)
            handle = nil
            throw CurationError.file(
                path: dataPath ?? "tessdata", reason: "cannot load the 'eng' model (tesseract-ocr-eng)")
        }
        TessBaseAPISetPageSegMode(api, PSM_SPARSE_TEXT)
        // Quiet: no debug output on stderr.
        TessBaseAPISetVariable(api, "debug_file", "/dev/null")
    }

    deinit {
        if let handle {
            TessBaseAPIEnd(handle)
            TessBaseAPIDelete(handle)
        }
    }

    /// Largest text-line area / frame area on one frame, in [0, 1].
    public func coverage(_ frame: RGBFrame) -> Double {
        guard let api = handle else { return 0 }
        frame.pixels.withUnsafeBufferPointer { p in
            TessBaseAPISetImage(api, p.baseAddress, Int32(frame.width), Int32(frame.height), 3, Int32(frame.width * 3))
        }
        // Video frames carry no resolution; state one (screen-like 96 dpi) so Tesseract does not guess and log it.
        TessBaseAPISetSourceResolution(api, 96)
        defer { TessBaseAPIClear(api) }
        guard TessBaseAPIRecognize(api, nil) == 0, let results = TessBaseAPIGetIterator(api) else { return 0 }
        defer { TessResultIteratorDelete(results) }
        var largest = 0
        let level = RIL_TEXTLINE
        repeat {
            guard let textPointer = TessResultIteratorGetUTF8Text(results, level) else { continue }
            let text = String(cString: textPointer)
            TessDeleteText(textPointer)
            let alphanumerics = text.unicodeScalars.filter { CharacterSet.alphanumerics.contains($0) }.count
            let confidence = TessResultIteratorConfidence(results, level)
            guard alphanumerics >= 2, confidence >= minimumConfidence else { continue }
            var left: Int32 = 0, top: Int32 = 0, right: Int32 = 0, bottom: Int32 = 0
            let page = TessResultIteratorGetPageIterator(results)
            if TessPageIteratorBoundingBox(page, level, &left, &top, &right, &bottom) != 0 {
                largest = max(largest, Int(right - left) * Int(bottom - top))
            }
        } while TessResultIteratorNext(results, level) != 0
        return Double(largest) / Double(max(1, frame.width * frame.height))
    }
}
