// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "LSTMVision",
    products: [
        .library(name: "LSTMVision", targets: ["LSTMVision"]),
        .executable(name: "lstmvision", targets: ["lstmvision"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
    ],
    targets: [
        .systemLibrary(name: "COpenBLAS", pkgConfig: "openblas", providers: [.apt(["libopenblas-dev"])]),
        .systemLibrary(name: "CZlib", pkgConfig: "zlib", providers: [.apt(["zlib1g-dev"])]),
        .systemLibrary(name: "CPNG", pkgConfig: "libpng", providers: [.apt(["libpng-dev"])]),
        .systemLibrary(name: "CJPEG", pkgConfig: "libjpeg", providers: [.apt(["libjpeg-dev"])]),
        .target(
            name: "LSTMVision",
            dependencies: ["COpenBLAS", "CZlib", "CPNG", "CJPEG"]
        ),
        .executableTarget(
            name: "lstmvision",
            dependencies: ["LSTMVision", .product(name: "ArgumentParser", package: "swift-argument-parser")]
        ),
        .testTarget(
            name: "LSTMVisionTests",
            dependencies: ["LSTMVision"],
            resources: [.copy("Fixtures")]
        ),
    ]
)
