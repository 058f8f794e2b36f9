import Foundation

/// Settings of the convolution kernels.
///
/// Convolutions run as vol2col (im2col in 3-D) followed by one GEMM per chunk of output rows. The column matrix of a
/// whole clip is large (Cin·kT·kH·kW × T·H·W: 128 channels, a 3×3×3 kernel and a 17×256×256 clip make 14 GiB in
/// Float32), so it is never built at once: the output rows are processed in chunks whose column buffer stays within
/// `columnBufferLimitBytes`.
public enum Convolution {
    /// Upper bound, in bytes, of the column buffer a convolution allocates (16 MiB by default).
    ///
    /// Why 16 MiB: a chunk that stays in the last-level cache is read by the GEMM right after vol2col wrote it. On the
    /// development machine (2 cores, 32 MiB L3) a 128→128-channel 3×3×3 convolution of a (1, 128, 5, 64, 64) clip ran
    /// forward + backward about 15 % faster with 8–16 MiB chunks than with 64 MiB ones; narrower chunks than that
    /// start to make the GEMMs too thin. Tests lower it to force many chunks.
    ///
    /// A chunk always holds at least one output row (Cin·kT·kH·kW × Wout elements), so a limit below one row's size
    /// is exceeded by that one row. The limit changes speed, not results, up to rounding: BLAS may round a product
    /// differently when the GEMM is narrower, and the weight gradient is summed chunk by chunk.
    nonisolated(unsafe) public static var columnBufferLimitBytes: Int = 16 << 20

    /// Whether Float32 convolutions run through oneDNN's direct convolution primitives (`DNNLConvolution`) when
    /// oneDNN is present; Float64 always uses the vol2col kernels. On by default (set GOKU_CONV_DNNL=0 to turn it
    /// off): the VAE's convolutions train about 3× faster that way. Tests turn it off to compare the two paths.
    nonisolated(unsafe) public static var usesDNNL: Bool = ProcessInfo.processInfo.environment["GOKU_CONV_DNNL"] != "0"

    /// Whether oneDNN created a CPU engine for the convolutions (false: every convolution uses vol2col).
    public static var isDNNLAvailable: Bool { DNNLConvolution.isAvailable }

    /// Forward and backward convolutions completed by oneDNN so far (tests check that the fast path really ran).
    public internal(set) nonisolated(unsafe) static var dnnlCallCount = 0
}

/// The index arithmetic of one 3-D convolution; 2-D convolutions are the case T = kT = 1.
///
/// Every extent is of a single batch element: x (Cin, T, H, W), weight (Cout, Cin, kT, kH, kW),
/// output (Cout, Tout, Hout, Wout). The column matrix has one row per weight column
/// k = ((ci·kT + kt)·kH + kh)·kW + kw, and one column per output position.
struct ConvGeometry: Sendable {
    let batch: Int, inChannels: Int, outChannels: Int
    /// Input extents.
    let t: Int, h: Int, w: Int
    /// Kernel extents.
    let kt: Int, kh: Int, kw: Int
    /// Strides.
    let st: Int, sh: Int, sw: Int
    /// Zeros added before the first element of each axis (those after only shorten the output).
    let pt: Int, ph: Int, pw: Int
    /// Output extents.
    let ot: Int, oh: Int, ow: Int

    /// - Parameters:
    ///   - input: (N, Cin, T, H, W).
    ///   - weight: (Cout, Cin, kT, kH, kW).
    ///   - stride: 3 strides; padding: 3 (before, after) pairs. Both already validated by the op.
    init(input: [Int], weight: [Int], stride: [Int], padding: [(Int, Int)]) {
        batch = input[0]
        inChannels = input[1]
        outChannels = weight[0]
        (t, h, w) = (input[2], input[3], input[4])
        (kt, kh, kw) = (weight[2], weight[3], weight[4])
        (st, sh, sw) = (stride[0], stride[1], stride[2])
        (pt, ph, pw) = (padding[0].0, padding[1].0, padding[2].0)
        ot = (t + padding[0].0 + padding[0].1 - kt) / st + 1
        oh = (h + padding[1].0 + padding[1].1 - kh) / sh + 1
        ow = (w + padding[2].0 + padding[2].1 - kw) / sw + 1
    }

    /// Rows of the column matrix (Cin·kT·kH·kW).
    var columnRows: Int { inChannels * kt * kh * kw }
    /// Elements of one input channel (T·H·W).
    var inputVolume: Int { t * h * w }
    /// Output positions per channel (Tout·Hout·Wout).
    var outputPositions: Int { ot * oh * ow }
    /// Output rows (Tout·Hout) of Wout positions each: the unit the column buffer is chunked in.
    var outputRows: Int { ot * oh }
    /// A 1×1×1 kernel with stride 1 and no padding: the convolution is a plain matrix product per batch element.
    var isPointwise: Bool {
        kt == 1 && kh == 1 && kw == 1 && st == 1 && sh == 1 && sw == 1 && pt == 0 && ph == 0 && pw == 0
            && ot == t && oh == h && ow == w
    }

    /// The output columns `wo` whose input column wo·sW + kw − pW lies inside the input (the rest read padding).
    func validOutputColumns(kw k: Int) -> Range<Int> {
        let offset = k - pw  // input column = wo·sW + offset
        let first = offset >= 0 ? 0 : (-offset + sw - 1) / sw
        let lastInput = w - 1 - offset
        let end = lastInput < 0 ? 0 : Swift.min(ow, lastInput / sw + 1)
        return Swift.min(first, end)..<end
    }

    /// Output rows per chunk so that a column buffer of `Swift.max(1, rows)` × Wout × `columnRows` elements of
    /// `elementSize` bytes stays within `Convolution.columnBufferLimitBytes`.
    func rowsPerChunk(elementSize: Int) -> Int {
        let rowBytes = Swift.max(1, columnRows * ow * elementSize)
        return Swift.max(1, Swift.min(outputRows, Convolution.columnBufferLimitBytes / rowBytes))
    }
}
