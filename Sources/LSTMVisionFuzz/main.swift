// Fuzzing of every parser that reads outside bytes: IDX (plain or gzip), safetensors, images
// (PNG/JPEG/PGM/PPM) and COCO JSON. Each must return or throw its error type, never trap, hang or
// allocate without bound.
//
// Two ways to run it (see docs/limits.md and `make fuzz`):
//
//   libFuzzer (coverage-guided, with AddressSanitizer), built with
//     swift build -c release --scratch-path .build-fuzz --product lstmvision-fuzz \
//       -Xswiftc -sanitize=fuzzer,address -Xswiftc -DLIBFUZZER -Xcc -fsanitize=fuzzer-no-link,address
//   (one -sanitize= list: given as two flags, swiftc keeps only the last and the code gets no coverage), then
//     FUZZ_TARGET=idx .build-fuzz/release/lstmvision-fuzz -max_total_time=600 CORPUS_DIR Tests/Fuzz/corpus/idx
//   FUZZ_TARGET selects the parser; every other argument goes to libFuzzer. With -DLIBFUZZER the Swift `main`
//   below hands over to libFuzzer's driver; without it, the same executable is the harness below.
//
//   a seeded mutation harness (any build, no libFuzzer needed):
//     lstmvision-fuzz idx [--iterations N] [--seed S] [--corpus DIR]... [--max-memory-mib M]
//   mutates the seeds under Tests/Fuzz/corpus/<target> and Tests/Fuzz/regressions/<target> (bit flips,
//   byte insertions and deletions, length-field tweaks, splices) deterministically from the seed.
//   An input that traps is written to fuzz-crash-<target>.bin; one slower than 2 s is reported as a hang;
//   with --max-memory-mib the run fails (exit status 3) when the process's peak memory went over M MiB.

import Foundation
import LSTMVision

// MARK: - libFuzzer entry point

nonisolated(unsafe) var selectedTarget: FuzzTarget?

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzTestOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    let target = selectedTarget ?? .idx
    let bytes = data.map { [UInt8](UnsafeBufferPointer(start: $0, count: size)) } ?? []
    target.run(bytes)
    return 0
}

#if LIBFUZZER
typealias FuzzCallback = @convention(c) (UnsafePointer<UInt8>?, Int) -> Int32

/// libFuzzer's driver (LLVM >= 11); the Swift `main` below replaces libFuzzer's own, which the linker
/// then leaves out of its archive.
@_silgen_name("LLVMFuzzerRunDriver")
func LLVMFuzzerRunDriver(_ argc: UnsafeMutablePointer<Int32>,
                         _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
                         _ callback: FuzzCallback) -> Int32
#endif

// MARK: - Seeded mutation harness

/// The input being parsed, for the crash handler.
nonisolated(unsafe) var currentInput: [UInt8] = []
nonisolated(unsafe) var crashPath: [CChar] = []

func installCrashHandler() {
    for sig in [SIGILL, SIGTRAP, SIGSEGV, SIGBUS, SIGABRT, SIGFPE] {
        signal(sig) { sig in
            let fd = open(crashPath, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
            if fd >= 0 {
                currentInput.withUnsafeBytes { _ = write(fd, $0.baseAddress, $0.count) }
                close(fd)
            }
            let note = "lstmvision-fuzz: a signal while parsing; the input is in "
            _ = note.withCString { write(2, $0, strlen($0)) }
            _ = write(2, crashPath, strlen(crashPath))
            _ = write(2, "\n", 1)
            _exit(128 + sig)
        }
    }
}

func loadCorpus(_ dirs: [String]) -> [[UInt8]] {
    var out: [[UInt8]] = []
    for dir in dirs {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: dir) else { continue }
        for name in names.sorted() where !name.hasPrefix(".") {
            if let d = FileManager.default.contents(atPath: dir + "/" + name) { out.append([UInt8](d)) }
        }
    }
    return out
}

/// This process's peak resident memory (VmHWM), in MiB. Unlike getrusage's ru_maxrss, it does not count the
/// parent's memory that a spawned child shared before it exec'd this program.
func peakMemoryMiB() -> Int {
    guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
          let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmHWM:") }),
          let kb = Int(line.split(separator: " ").dropFirst().first ?? "") else { return 0 }
    return kb / 1024
}

func harness(_ args: [String]) -> Int32 {
    let usage = "usage: lstmvision-fuzz \(FuzzTarget.allCases.map(\.rawValue).joined(separator: "|"))"
        + " [--iterations N] [--seed S] [--corpus DIR]... [--max-memory-mib M]"
    guard let name = args.first, let target = FuzzTarget(rawValue: name) else {
        print(usage)
        return 2
    }
    var iterations = 100_000, seed: UInt64 = 1, dirs: [String] = [], maxMemory = Int.max
    var k = 1
    while k < args.count {
        let value = k + 1 < args.count ? args[k + 1] : ""
        switch args[k] {
        case "--iterations": iterations = Int(value) ?? iterations
        case "--seed": seed = UInt64(value) ?? seed
        case "--corpus": dirs.append(value)
        case "--max-memory-mib": maxMemory = Int(value) ?? maxMemory
        default: print(usage); return 2
        }
        k += 2
    }
    if dirs.isEmpty { dirs = ["Tests/Fuzz/corpus/\(target.rawValue)", "Tests/Fuzz/regressions/\(target.rawValue)"] }
    let corpus = loadCorpus(dirs)
    guard !corpus.isEmpty else { print("no seeds in \(dirs)"); return 2 }
    crashPath = Array("fuzz-crash-\(target.rawValue).bin".utf8CString)
    installCrashHandler()
    for seedInput in corpus { currentInput = seedInput; target.run(seedInput) }
    var mutator = Mutator(state: seed)
    let start = Date()
    var slowest = 0.0, accepted = 0
    for i in 0..<iterations {
        // Mostly mutate a seed; sometimes keep mutating the previous input for deeper changes.
        let base = i > 0 && mutator.below(4) == 0 ? currentInput : corpus[mutator.below(corpus.count)]
        let input = mutator.mutate(base, corpus: corpus)
        currentInput = input
        let t0 = Date()
        if target.run(input) { accepted += 1 }
        let dt = Date().timeIntervalSince(t0)
        if dt > slowest { slowest = dt }
        if dt > 2 {
            let path = "fuzz-slow-\(target.rawValue)-\(i).bin"
            _ = FileManager.default.createFile(atPath: path, contents: Data(input))
            print("iteration \(i): \(String(format: "%.1f", dt)) s for \(input.count) bytes (written to \(path))")
        }
        if (i + 1) % 100_000 == 0 {
            print("\(target.rawValue): \(i + 1) executions, \(Int(Date().timeIntervalSince(start))) s")
        }
    }
    let seconds = Date().timeIntervalSince(start)
    print("\(target.rawValue): \(iterations) executions (\(accepted) parsed, the rest refused) over \(corpus.count)"
          + " seeds in \(String(format: "%.1f", seconds)) s,"
          + " slowest \(String(format: "%.3f", slowest)) s, peak memory \(peakMemoryMiB()) MiB, no crash")
    guard peakMemoryMiB() <= maxMemory else {
        print("peak memory \(peakMemoryMiB()) MiB is over --max-memory-mib \(maxMemory)")
        return 3
    }
    return 0
}

// MARK: - main

#if LIBFUZZER
guard let name = ProcessInfo.processInfo.environment["FUZZ_TARGET"], let target = FuzzTarget(rawValue: name) else {
    print("set FUZZ_TARGET to one of \(FuzzTarget.allCases.map(\.rawValue).joined(separator: ", "))")
    exit(2)
}
selectedTarget = target
var argc = CommandLine.argc
var argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = CommandLine.unsafeArgv
exit(LLVMFuzzerRunDriver(&argc, &argv, fuzzTestOneInput))
#else
exit(harness(Array(CommandLine.arguments.dropFirst())))
#endif
