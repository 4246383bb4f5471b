import Foundation
import Synchronization

/// Writes files so that a crash at any moment leaves either the old file or the complete new one:
/// data goes to a temporary file in the same folder, is flushed with fsync, then renamed over the target.
/// A write that fails (a full disk) removes the temporary file and leaves the old file as it was.
public enum AtomicFile {
    public static func write(_ data: Data, to path: String) throws {
        let url = URL(fileURLWithPath: path)
        let dir = url.deletingLastPathComponent().path
        let tmp = dir + "/." + url.lastPathComponent + ".tmp-\(getpid())"
        let fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        guard fd >= 0 else {
            throw CheckpointError.io("\(path): cannot create \(tmp): \(String(cString: strerror(errno)))")
        }
        let injected = injectedError(path)
        var failure: Int32 = 0
        data.withUnsafeBytes { raw in
            // An injected failure writes half the data first, as a disk filling up mid-file does.
            let end = injected == 0 ? raw.count : raw.count / 2
            var off = 0
            while off < end {
                let n = Foundation.write(fd, raw.baseAddress! + off, end - off)
                if n < 0 && errno == EINTR { continue }
                if n <= 0 { failure = n < 0 ? errno : EIO; break }
                off += n
            }
            if failure == 0 && injected != 0 { failure = injected }
        }
        if failure == 0 && fsync(fd) != 0 { failure = errno }
        close(fd)
        guard failure == 0 else {
            unlink(tmp)
            throw CheckpointError.io("\(path): write failed: \(String(cString: strerror(failure)))")
        }
        guard rename(tmp, path) == 0 else {
            let e = String(cString: strerror(errno)); unlink(tmp)
            throw CheckpointError.io("\(path): cannot rename into place: \(e)")
        }
        let dfd = open(dir.isEmpty ? "." : dir, O_RDONLY)
        if dfd >= 0 { fsync(dfd); close(dfd) }
    }

    /// A test hook (internal: tests only, no user option): per path, the writes that succeed before the next one
    /// fails with an error number, after writing half its data, as on a full disk.
    static let injectedFailures = Mutex<[String: (succeeding: Int, error: Int32)]>([:])

    /// Makes the write of `path` after `succeeding` more fail with `error` (once).
    static func injectFailure(_ path: String, after succeeding: Int, error: Int32 = ENOSPC) {
        injectedFailures.withLock { $0[path] = (succeeding, error) }
    }

    /// The error number this write of `path` is to fail with (0: none), counting the writes down.
    static func injectedError(_ path: String) -> Int32 {
        injectedFailures.withLock { failures in
            guard let f = failures[path] else { return 0 }
            guard f.succeeding == 0 else {
                failures[path] = (f.succeeding - 1, f.error)
                return 0
            }
            failures[path] = nil
            return f.error
        }
    }
}
