import COpenBLAS
import Foundation

/// What the program does once at start-up: pick OpenBLAS's kernels for this CPU and keep freed memory.
public enum CPUStartup {
    /// The kernel family OpenBLAS picked for this CPU (e.g. "SkylakeX", "Haswell", "Prescott").
    public static var blasCoreName: String { String(cString: openblas_get_corename()) }

    /// The kernel family this CPU should use when OpenBLAS fell back to a generic one: OpenBLAS 0.3.21
    /// (Debian 12) does not know recent Xeons and picks the SSE3 "Prescott" kernels, several times slower than the
    /// AVX ones.
    /// Returns nil when the choice is already good or the user set `OPENBLAS_CORETYPE`.
    public static func betterCoreType() -> String? {
        guard ProcessInfo.processInfo.environment["OPENBLAS_CORETYPE"] == nil else { return nil }
        guard ["Prescott", "Core2", "Nehalem", "Atom", "Katmai", "Coppermine", "Northwood", "Banias"]
            .contains(blasCoreName) else { return nil }
        guard let cpuinfo = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8),
              let flagsLine = cpuinfo.split(separator: "\n").first(where: { $0.hasPrefix("flags") }) else { return nil }
        let flags = Set(flagsLine.split(separator: " ").map(String.init))
        if flags.isSuperset(of: ["avx512f", "avx512bw", "avx512vl", "avx512dq"]) { return "SkylakeX" }
        if flags.isSuperset(of: ["avx2", "fma"]) { return "Haswell" }
        return nil
    }

    /// Keeps freed tensor buffers in the heap for reuse instead of returning them to the kernel: without
    /// this, every multi-megabyte buffer is a fresh mmap whose pages fault in and get zeroed again.
    public static func keepFreedMemory() {
        _ = glibcMallopt(-3, 1 << 30)   // M_MMAP_THRESHOLD
        _ = glibcMallopt(-1, 1 << 30)   // M_TRIM_THRESHOLD
    }

    /// Restarts the current program with `OPENBLAS_CORETYPE` set when `betterCoreType()` names a better
    /// kernel family (OpenBLAS reads it only when it loads). Returns normally when no restart is needed.
    public static func restartWithBetterKernelsIfNeeded() {
        guard let core = betterCoreType() else { return }
        setenv("OPENBLAS_CORETYPE", core, 1)
        let args = CommandLine.arguments
        var cargs: [UnsafeMutablePointer<CChar>?] = args.map { strdup($0) }
        cargs.append(nil)
        execv("/proc/self/exe", &cargs)
        // execv returned: keep going with the generic kernels.
    }
}

/// glibc's `mallopt` (malloc.h is not part of Swift's Glibc module).
@_silgen_name("mallopt")
private func glibcMallopt(_ parameter: Int32, _ value: Int32) -> Int32
