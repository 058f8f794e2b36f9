// swift-tools-version: 6.0
//
// Goku: rectified-flow Transformers for joint image and video generation.
//
// The targets are the architecture, bottom up; every dependency points down:
//   CBLAS (OpenBLAS), CDNNL (oneDNN) → TensorCore → NN, Optim, Checkpoint, Distributed (CMPI) → Training → … →
//   Benchmarks → goku (CLI), goku-bench
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
        .library(name: "Distributed", targets: ["Distributed"]),
        .library(name: "Training", targets: ["Training"]),
        .library(name: "GokuModel", targets: ["GokuModel"]),
        .library(name: "RectifiedFlow", targets: ["RectifiedFlow"]),
        .library(name: "TextEncoder", targets: ["TextEncoder"]),
        .library(name: "VideoIO", targets: ["VideoIO"]),
        .library(name: "Datasets", targets: ["Datasets"]),
        .library(name: "Curation", targets: ["Curation"]),
        .library(name: "VideoVAE", targets: ["VideoVAE"]),
        .library(name: "VAETraining", targets: ["VAETraining"]),
        .library(name: "GokuPipeline", targets: ["GokuPipeline"]),
        .library(name: "ShapesRecipe", targets: ["ShapesRecipe"]),
        .executable(name: "goku", targets: ["goku"]),
        .executable(name: "goku-bench", targets: ["goku-bench"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.0.0"),
    ],
    targets: [
        .systemLibrary(
            name: "CBLAS", path: "Sources/CBLAS", pkgConfig: "openblas",
            providers: [.apt(["libopenblas-dev"])]),
        .target(name: "CKernels", path: "Sources/CKernels", cSettings: [.unsafeFlags(["-O3"])]),
        .target(name: "TensorCore", dependencies: ["CBLAS", "CDNNL", "CKernels"], swiftSettings: kernelFlags),
        .target(name: "NN", dependencies: ["TensorCore"], swiftSettings: kernelFlags),
        .target(name: "Optim", dependencies: ["TensorCore", "NN"], swiftSettings: kernelFlags),
        .target(name: "Checkpoint", dependencies: ["TensorCore", "NN"], swiftSettings: kernelFlags),
        // Open MPI (Debian libopenmpi-dev): the transport of multi-process training, behind `ProcessGroup`.
        .systemLibrary(
            name: "CMPI", path: "Sources/CMPI", pkgConfig: "ompi-c", providers: [.apt(["libopenmpi-dev", "openmpi-bin"])]),
        // Process groups and their collectives; data-parallel sharding of the optimizer state; the cost model of a
        // distributed run (`goku plan`).
        .target(name: "Distributed", dependencies: ["TensorCore", "NN", "Optim", "CMPI"], swiftSettings: kernelFlags),
        .testTarget(
            name: "DistributedTests",
            dependencies: ["Distributed", "Optim", "TensorCore", "TestSupport", "GokuModel", "GokuPipeline"]),
        .target(
            name: "Training", dependencies: ["TensorCore", "NN", "Optim", "Checkpoint", "Distributed"],
            swiftSettings: kernelFlags),
        .executableTarget(
            name: "goku",
            dependencies: [
                "CBLAS", "TensorCore", "NN", "Optim", "Checkpoint", "Benchmarks",
                "GokuModel",
                "TextEncoder",
                "Media",
                "ShapesDataset",
                "VideoIO",
                "Curation",
                "Datasets",
                "VideoVAE",
                "VAETraining",
                "GokuPipeline",
                "ShapesRecipe",
                "Training",
                "Distributed",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: kernelFlags),
        // The engine benchmarks (`goku bench block|ops|model`), also built alone as `goku-bench`, which links no
        // media libraries and so runs on a host that has only OpenBLAS and oneDNN.
        .target(
            name: "Benchmarks",
            dependencies: [
                "CBLAS", "TensorCore", "NN", "GokuModel", .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: kernelFlags),
        .executableTarget(name: "goku-bench", dependencies: ["Benchmarks"]),
        .target(name: "TestSupport", dependencies: ["TensorCore", "Checkpoint", "Distributed"], path: "Tests/TestSupport"),
        .testTarget(
            name: "TensorCoreTests", dependencies: ["TensorCore", "CKernels", "TestSupport"], exclude: ["Fixtures"]),
        .testTarget(name: "NNTests", dependencies: ["NN", "TestSupport"]),
        .testTarget(name: "OptimTests", dependencies: ["Optim", "NN", "TestSupport"], exclude: ["Fixtures"]),
        .testTarget(
            name: "CheckpointTests", dependencies: ["Checkpoint", "TestSupport"],
            exclude: ["Fixtures"]),
        .testTarget(name: "TrainingTests", dependencies: ["Training", "NN", "Optim", "TestSupport"]),
        .target(name: "GokuModel", dependencies: ["TensorCore", "NN", "Checkpoint"], swiftSettings: kernelFlags),
        .target(name: "RectifiedFlow", dependencies: ["TensorCore"], swiftSettings: kernelFlags),
        .testTarget(
            name: "GokuModelTests",
            dependencies: ["GokuModel", "RectifiedFlow", "Optim", "NN", "Checkpoint", "TestSupport"],
            exclude: ["Fixtures"]),
        .testTarget(name: "RectifiedFlowTests", dependencies: ["RectifiedFlow", "TestSupport"]),
        .target(name: "TextEncoder", dependencies: ["TensorCore", "NN", "Checkpoint"], swiftSettings: kernelFlags),
        .testTarget(
            name: "TextEncoderTests", dependencies: ["TextEncoder", "TestSupport"], exclude: ["Fixtures"]),
        .systemLibrary(
            name: "CZlib", path: "Sources/CZlib", pkgConfig: "zlib",
            providers: [.apt(["zlib1g-dev"])]),
        .target(name: "Media", dependencies: ["TensorCore", "CZlib", "VideoIO"]),
        .testTarget(name: "MediaTests", dependencies: ["Media", "TestSupport"], exclude: ["Fixtures"]),
        .target(name: "ShapesDataset", dependencies: ["TensorCore", "Media", "Datasets"]),
        .testTarget(name: "ShapesDatasetTests", dependencies: ["ShapesDataset", "Media", "Datasets", "TestSupport"]),
        .systemLibrary(
            name: "CFFmpeg", path: "Sources/CFFmpeg", pkgConfig: "libavformat",
            providers: [.apt(["libavformat-dev", "libavcodec-dev", "libswscale-dev", "libavutil-dev"])]),
        .systemLibrary(
            name: "CTesseract", path: "Sources/CTesseract", pkgConfig: "tesseract",
            providers: [.apt(["libtesseract-dev", "tesseract-ocr-eng"])]),
        .target(name: "VideoIO", dependencies: ["CFFmpeg", "TensorCore"], swiftSettings: kernelFlags),
        // Dataset folders (manifest.jsonl + media), the framing policy, prepared shards and the packing sampler.
        .target(name: "Datasets", dependencies: ["TensorCore", "Checkpoint", "VideoIO"], swiftSettings: kernelFlags),
        .testTarget(name: "DatasetsTests", dependencies: ["Datasets", "VideoIO", "TensorCore", "TestSupport"]),
        .target(
            name: "Curation",
            dependencies: [
                "VideoIO", "TensorCore", "Checkpoint", "Datasets", "CTesseract", .product(name: "GRDB", package: "GRDB.swift"),
            ],
            swiftSettings: kernelFlags),
        .testTarget(name: "VideoIOTests", dependencies: ["VideoIO", "TensorCore", "TestSupport"]),
        .testTarget(name: "CurationTests", dependencies: [
                "Curation", "Datasets", "VideoIO", "TensorCore", "TestSupport", .product(name: "GRDB", package: "GRDB.swift"),
            ], exclude: ["Fixtures"]),
        // oneDNN (Debian libdnnl-dev, no pkg-config file): bfloat16 matrix products for MixedPrecision.
        .systemLibrary(name: "CDNNL", path: "Sources/CDNNL", providers: [.apt(["libdnnl-dev"])]),
        .target(name: "VideoVAE", dependencies: ["TensorCore", "NN", "Checkpoint"], swiftSettings: kernelFlags),
        .testTarget(name: "VideoVAETests", dependencies: ["VideoVAE", "TestSupport"], exclude: ["Fixtures"]),
        .target(
            name: "VAETraining",
            dependencies: ["TensorCore", "NN", "Optim", "Checkpoint", "Training", "VideoVAE", "Datasets"],
            swiftSettings: kernelFlags),
        .testTarget(
            name: "VAETrainingTests",
            dependencies: [
                "VAETraining", "ShapesRecipe", "VideoVAE", "Training", "Datasets", "VideoIO", "Media", "TensorCore",
                "TestSupport",
            ]),
        .target(
            name: "GokuPipeline",
            dependencies: [
                "TensorCore", "NN", "Optim", "Checkpoint", "Distributed", "Training", "GokuModel", "RectifiedFlow",
                "TextEncoder", "VideoVAE", "Media", "Datasets",
            ],
            swiftSettings: kernelFlags),
        // The procedural Shapes world's training recipe, evaluation and text probes, on top of the core pipeline.
        .target(
            name: "ShapesRecipe",
            dependencies: [
                "TensorCore", "NN", "Optim", "Checkpoint", "Training", "TextEncoder", "VideoVAE", "GokuPipeline",
                "ShapesDataset", "VAETraining",
            ],
            swiftSettings: kernelFlags),
        .testTarget(
            name: "ShapesRecipeTests",
            dependencies: [
                "ShapesRecipe", "GokuPipeline", "ShapesDataset", "TextEncoder", "NN", "Optim", "TensorCore", "Training", "TestSupport",
            ]),
        .testTarget(
            name: "GokuPipelineTests",
            dependencies: [
                "GokuPipeline", "ShapesRecipe", "GokuModel", "TextEncoder", "VideoVAE", "VAETraining", "ShapesDataset", "Datasets",
                "VideoIO", "Curation", "Media", "Training", "TestSupport",
            ]),
    ],
    swiftLanguageModes: [.v5]
)
