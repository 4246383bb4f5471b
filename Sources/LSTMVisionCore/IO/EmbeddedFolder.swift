import Foundation

/// Where the folders shipped in the repository (data/mnist, data/photos, models) are found: the same relative path
/// under the working directory, then beside the executable and up to five folders above it (`.build/release/…`).
public enum EmbeddedFolder {
    /// The places looked in for `relative`, in order.
    public static func candidates(_ relative: String) -> [String] {
        var candidates = [relative]
        var dir = URL(fileURLWithPath: CommandLine.arguments.first ?? ".").resolvingSymlinksInPath()
            .deletingLastPathComponent()
        for _ in 0..<5 {
            candidates.append(dir.appendingPathComponent(relative).path)
            dir = dir.deletingLastPathComponent()
        }
        return candidates
    }

    /// The first candidate that exists, or `relative` itself when none does (so that errors name it).
    public static func find(_ relative: String) -> String {
        candidates(relative).first { FileManager.default.fileExists(atPath: $0) } ?? relative
    }
}
