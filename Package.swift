// swift-tools-version:6.2
import Foundation
import PackageDescription

/// Vector kernels are compiled for the building machine's vector unit (as `-march=native` would):
/// AVX-512 (skylake-avx512) or AVX2+FMA (haswell) when /proc/cpuinfo lists them. Set
/// LSTMVISION_PORTABLE=1 for a baseline x86-64 build that runs on any machine. Without a target that has fused
/// multiply-adds, LSTMVISION_NO_FMA makes the kernels multiply and add instead (a software fma per lane, which the
/// baseline would otherwise call, made such a build 100–200× slower).
/// The flags are unsafeFlags; SwiftPM accepts them from a dependency named by version only when its manifest's
/// tools version is 6.2 or later, hence the first line (Tests/Consumer builds such a dependent package).
func vectorFlags() -> [SwiftSetting] {
    let baseline: [SwiftSetting] = [.define("LSTMVISION_NO_FMA")]
    guard ProcessInfo.processInfo.environment["LSTMVISION_PORTABLE"] == nil,
          let info = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8),
          let line = info.split(separator: "\n").first(where: { $0.hasPrefix("flags") }) else { return baseline }
    let flags = Set(line.split(separator: " ").map(String.init))
    if flags.isSuperset(of: ["avx512f", "avx512bw", "avx512vl", "avx512dq", "avx2", "fma"]) {
        return [.unsafeFlags(["-target-cpu", "skylake-avx512"])]
    }
    if flags.isSuperset(of: ["avx2", "fma", "bmi2"]) { return [.unsafeFlags(["-target-cpu", "haswell"])] }
    return baseline
}

let package = Package(
    name: "LSTMVision",
    products: [
        .library(name: "LSTMVision", targets: ["LSTMVision"]),
        .executable(name: "lstmvision", targets: ["lstmvision"]),
        .executable(name: "lstmvision-fuzz", targets: ["LSTMVisionFuzz"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        // `swift package generate-documentation` (API reference and articles; Sources/LSTMVision/LSTMVision.docc).
        .package(url: "https://github.com/swiftlang/swift-docc-plugin", from: "1.5.0"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.2.2"),
    ],
    targets: [
        .systemLibrary(name: "COpenBLAS", pkgConfig: "openblas", providers: [.apt(["libopenblas-dev"])]),
        .systemLibrary(name: "CZlib", pkgConfig: "zlib", providers: [.apt(["zlib1g-dev"])]),
        .systemLibrary(name: "CPNG", pkgConfig: "libpng", providers: [.apt(["libpng-dev"])]),
        .systemLibrary(name: "CJPEG", pkgConfig: "libjpeg", providers: [.apt(["libjpeg-dev"])]),
        .systemLibrary(name: "CWebP", pkgConfig: "libwebp", providers: [.apt(["libwebp-dev"])]),
        .target(name: "CImageShim", linkerSettings: [.linkedLibrary("jpeg")]),
        .systemLibrary(name: "CVectorMath"),
        // Threads and CPU start-up (Runtime/), the compute kernels (Kernels/): below everything else.
        .target(
            name: "LSTMVisionKernels",
            dependencies: ["COpenBLAS", "CVectorMath"],
            swiftSettings: vectorFlags()
        ),
        // Tensor, autodiff, layers, losses, optimisers, models, the detector, IO, data and evaluation.
        .target(
            name: "LSTMVisionCore",
            dependencies: ["LSTMVisionKernels", "COpenBLAS", "CZlib", "CPNG", "CJPEG", "CImageShim", "CVectorMath",
                           "CWebP", .product(name: "Yams", package: "Yams")],
            swiftSettings: vectorFlags()
        ),
        // Training on top: the module users import (it re-exports the layers below).
        .target(
            name: "LSTMVision",
            dependencies: ["LSTMVisionCore"],
            swiftSettings: vectorFlags()
        ),
        .executableTarget(
            name: "lstmvision",
            dependencies: ["LSTMVision", .product(name: "ArgumentParser", package: "swift-argument-parser")]
        ),
        // Fuzzing of the file parsers: a seeded mutation harness in a plain build, a libFuzzer target when built
        // with `-Xswiftc -sanitize=fuzzer,address -Xswiftc -DLIBFUZZER` (`make fuzz`; see
        // Sources/LSTMVisionFuzz/main.swift).
        .executableTarget(name: "LSTMVisionFuzz", dependencies: ["LSTMVision"]),
        .testTarget(
            name: "LSTMVisionTests",
            dependencies: ["LSTMVision", "LSTMVisionCore", "LSTMVisionKernels", "LSTMVisionFuzz"],
            resources: [.copy("Fixtures")]
        ),
    ]
)
