import ArgumentParser
import Foundation
import TensorCore

/// `goku info`: version, BLAS in use, thread counts and the CPU features the kernels can use.
struct Info: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Show the version, BLAS, threads and CPU features.")

    func run() throws {
        print("goku \(GokuVersion.string)")
        print("BLAS: \(Parallel.blasDescription)")
        print("bf16 matmul (oneDNN): \(MixedPrecision.instructionSet ?? "unavailable, falls back to fp32")")
        let cores = ProcessInfo.processInfo.activeProcessorCount
        print("threads: \(Parallel.threadCount) (GOKU_NUM_THREADS overrides; cores online: \(cores))")
        let features = CPUFeatures.detected
        print("CPU: \(features.modelName)")
        print("CPU features: \(features.flags.isEmpty ? "none of interest" : features.flags.joined(separator: " "))")
        print("kernels built for: \(CPUFeatures.compiledTarget)")
    }
}

/// The vector and matrix extensions of this CPU that matter to the kernels, read from /proc/cpuinfo.
struct CPUFeatures {
    let modelName: String
    let flags: [String]

    static let interesting = [
        "sse4_2", "avx", "avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512vl", "avx512_bf16", "avx512_fp16",
        "amx_tile", "amx_bf16", "amx_int8",
    ]

    static var detected: CPUFeatures {
        guard let text = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8) else {
            return CPUFeatures(modelName: "unknown (no /proc/cpuinfo)", flags: [])
        }
        let lines = text.split(separator: "\n")
        let modelLine = lines.first { $0.hasPrefix("model name") }
        let model = modelLine.map { String($0.split(separator: ":", maxSplits: 1).last ?? "") }?
            .trimmingCharacters(in: .whitespaces) ?? "unknown"
        let flagSet = Set(lines.first { $0.hasPrefix("flags") }?.split(separator: " ").map(String.init) ?? [])
        return CPUFeatures(modelName: model, flags: interesting.filter(flagSet.contains))
    }

    /// The instruction set the Swift kernels were compiled for (chosen in Package.swift; GOKU_TARGET_CPU overrides).
    static var compiledTarget: String {
        #if KERNELS_AVX512
            return "AVX-512 (-target-cpu from the build machine or GOKU_TARGET_CPU)"
        #elseif KERNELS_AVX2
            return "AVX2 + FMA (-target-cpu from the build machine or GOKU_TARGET_CPU)"
        #else
            return "baseline x86-64 (no -target-cpu; vector kernels run slowly)"
        #endif
    }
}
