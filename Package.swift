// swift-tools-version: 6.0
//
// Goku: rectified-flow Transformers for joint image and video generation.
//
// The targets are the architecture, bottom up; every dependency points down:
//   CBLAS (OpenBLAS) → TensorCore → NN, Optim, Checkpoint → goku (CLI)
//
// Build flags. The numeric kernels are only fast when the compiler may use the CPU's vector units
// (see docs/performance.md). The target CPU is chosen when the package is built:
//   GOKU_TARGET_CPU=<llvm cpu name>   force one (e.g. `haswell` for AVX2-only machines, `x86-64` for any x86-64);
//   unset                              read /proc/cpuinfo: AVX-512 → skylake-avx512, AVX2+FMA → haswell, else baseline.
import Foundation
import PackageDescription

/// The `-target-cpu` for the kernels, from GOKU_TARGET_CPU or the building machine's CPU flags.
func kernelTargetCPU() -> String? {
    if let forced = ProcessInfo.processInfo.environment["GOKU_TARGET_CPU"], !forced.isEmpty {
        return forced == "baseline" ? nil : forced
    }
    guard let cpuinfo = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8),
        let flagsLine = cpuinfo.split(separator: "\n").first(where: { $0.hasPrefix("flags") })
    else { return nil }
    let flags = Set(flagsLine.split(separator: " ").map(String.init))
    if flags.contains("avx512f") && flags.contains("avx512bw") && flags.contains("avx512vl") { return "skylake-avx512" }
    if flags.contains("avx2") && flags.contains("fma") { return "haswell" }
    return nil
}

let kernelFlags: [SwiftSetting] = {
    var flags = ["-enforce-exclusivity=unchecked"]
    let cpu = kernelTargetCPU()
    if let cpu { flags += ["-target-cpu", cpu] }
    // Tell the code what it was built for (reported by `goku info`).
    let isa: SwiftSetting =
        switch cpu {
        case "skylake-avx512", "cascadelake", "cooperlake", "icelake-server", "sapphirerapids", "znver4":
            .define("KERNELS_AVX512")
        case .some: .define("KERNELS_AVX2")
        case .none: .define("KERNELS_BASELINE")
        }
    return [.unsafeFlags(flags), isa]
}()

let package = Package(
    name: "Goku",
    platforms: [.macOS(.v14)],
    products: [
        .library(name: "TensorCore", targets: ["TensorCore"]),
        .library(name: "NN", targets: ["NN"]),
        .library(name: "Optim", targets: ["Optim"]),
        .library(name: "Checkpoint", targets: ["Checkpoint"]),
        .library(name: "VideoVAE", targets: ["VideoVAE"]),
        .executable(name: "goku", targets: ["goku"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0")
    ],
    targets: [
        .systemLibrary(
            name: "CBLAS", path: "Sources/CBLAS", pkgConfig: "openblas",
            providers: [.apt(["libopenblas-dev"])]),
        .target(name: "TensorCore", dependencies: ["CBLAS"], swiftSettings: kernelFlags),
        .target(name: "NN", dependencies: ["TensorCore"], swiftSettings: kernelFlags),
        .target(name: "Optim", dependencies: ["TensorCore", "NN"], swiftSettings: kernelFlags),
        .target(name: "Checkpoint", dependencies: ["TensorCore", "NN"], swiftSettings: kernelFlags),
        .executableTarget(
            name: "goku",
            dependencies: [
                "CBLAS", "TensorCore", "NN", "Optim", "Checkpoint", "VideoVAE", "Media",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: kernelFlags),
        .target(name: "TestSupport", dependencies: ["TensorCore", "Checkpoint"], path: "Tests/TestSupport"),
        .testTarget(name: "TensorCoreTests", dependencies: ["TensorCore", "TestSupport"], exclude: ["Fixtures"]),
        .testTarget(name: "NNTests", dependencies: ["NN", "TestSupport"]),
        .testTarget(name: "OptimTests", dependencies: ["Optim", "NN", "TestSupport"], exclude: ["Fixtures"]),
        .testTarget(
            name: "CheckpointTests", dependencies: ["Checkpoint", "TestSupport"],
            exclude: ["Fixtures"]),
        .target(name: "VideoVAE", dependencies: ["TensorCore", "NN", "Checkpoint"], swiftSettings: kernelFlags),
        .testTarget(name: "VideoVAETests", dependencies: ["VideoVAE", "TestSupport"], exclude: ["Fixtures"]),
        .systemLibrary(
            name: "CZlib", path: "Sources/CZlib", pkgConfig: "zlib",
            providers: [.apt(["zlib1g-dev"])]),
        .target(name: "Media", dependencies: ["TensorCore", "CZlib"]),
        .testTarget(name: "MediaTests", dependencies: ["Media", "TestSupport"], exclude: ["Fixtures"]),
    ],
    swiftLanguageModes: [.v5]
)
