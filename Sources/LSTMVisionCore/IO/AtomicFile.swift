import Foundation

/// Writes files so that a crash at any moment leaves either the old file or the complete new one:
/// data goes to a temporary file in the same folder, is flushed with fsync, then renamed over the target.
public enum AtomicFile {
    public static func write(_ data: Data, to path: String) throws {
        let url = URL(fileURLWithPath: path)
        let dir = url.deletingLastPathComponent().path
        let tmp = dir + "/." + url.lastPathComponent + ".tmp-\(getpid())"
        let fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        guard fd >= 0 else {
            throw CheckpointError.io("\(path): cannot create \(tmp): \(String(cString: strerror(errno)))")
        }
        var ok = true
        data.withUnsafeBytes { raw in
            var off = 0
            while off < raw.count {
                let n = Foundation.write(fd, raw.baseAddress! + off, raw.count - off)
                if n <= 0 { ok = false; break }
                off += n
            }
        }
        if ok && fsync(fd) != 0 { ok = false }
        let err = String(cString: strerror(errno))
        close(fd)
        guard ok else { unlink(tmp); throw CheckpointError.io("\(path): write failed: \(err)") }
        guard rename(tmp, path) == 0 else {
            let e = String(cString: strerror(errno)); unlink(tmp)
            throw CheckpointError.io("\(path): cannot rename into place: \(e)")
        }
        let dfd = open(dir.isEmpty ? "." : dir, O_RDONLY)
        if dfd >= 0 { fsync(dfd); close(dfd) }
    }
}
