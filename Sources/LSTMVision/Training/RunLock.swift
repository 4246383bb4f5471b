import Foundation

/// The lock of a run folder (`RunFolder.lockFile`), so that two runs never train into one folder: an exclusive
/// `flock` on the file, which holds the owner's process id, host and start time for the refusal message. The kernel
/// drops the lock when its process ends, however it ends, so a lock file left by a dead run is stale: it is taken
/// over, never trusted. Where the file system has no `flock`, a lock file naming a live process of this host is
/// respected instead. The file is removed on release.
public final class RunLock {
    public let path: String
    private var fd: Int32 = -1

    /// Takes the lock at `path`, or throws `TrainingError.inUse` naming the run that holds it.
    public init(_ path: String) throws {
        self.path = path
        for _ in 0..<100 {
            let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
            guard fd >= 0 else {
                throw TrainingError.inUse("\(path): cannot create the run's lock file:"
                                          + " \(String(cString: strerror(errno)))")
            }
            if flock(fd, LOCK_EX | LOCK_NB) != 0 {
                let e = errno, holder = Self.read(fd)
                if e == EWOULDBLOCK || (holder.map(Self.isAlive) ?? false) {
                    close(fd)
                    throw TrainingError.inUse(Self.refusal(path, holder))
                }
                // No flock here (ENOLCK, EOPNOTSUPP) and no live holder: taken unguarded.
            }
            // The holder may have released (removed) the file between our open and flock: lock the file at `path`.
            var opened = stat(), current = stat()
            guard fstat(fd, &opened) == 0, stat(path, &current) == 0,
                  opened.st_ino == current.st_ino, opened.st_dev == current.st_dev else {
                close(fd)
                continue
            }
            let text = "pid \(getpid())\nhost \(Self.hostname())\nstarted \(Self.now())\n"
            ftruncate(fd, 0)
            _ = text.withCString { pwrite(fd, $0, strlen($0), 0) }
            fsync(fd)
            self.fd = fd
            return
        }
        throw TrainingError.inUse("\(path): the lock file keeps changing; is another run starting in this folder?")
    }

    deinit { release() }

    /// Removes the lock file and drops the lock (once; later calls do nothing).
    public func release() {
        guard fd >= 0 else { return }
        unlink(path)
        close(fd)
        fd = -1
    }

    /// The holder's entries (pid, host, started) in the file open as `fd`, when it has a pid.
    static func read(_ fd: Int32) -> [String: String]? {
        var bytes = [UInt8](repeating: 0, count: 1024)
        let n = pread(fd, &bytes, bytes.count, 0)
        guard n > 0 else { return nil }
        var entries: [String: String] = [:]
        for line in String(decoding: bytes[0..<n], as: UTF8.self).split(separator: "\n") {
            guard let space = line.firstIndex(of: " ") else { continue }
            entries[String(line[..<space])] = String(line[line.index(after: space)...])
        }
        return entries["pid"].flatMap(Int32.init) == nil ? nil : entries
    }

    /// Whether the holder is a live process of this host other than this one.
    static func isAlive(_ holder: [String: String]) -> Bool {
        guard let pid = holder["pid"].flatMap(Int32.init), pid > 0, pid != getpid(),
              holder["host"] == hostname() else { return false }
        return kill(pid, 0) == 0 || errno == EPERM
    }

    /// The refusal: the folder, and the run holding it.
    static func refusal(_ path: String, _ holder: [String: String]?) -> String {
        let folder = (path as NSString).deletingLastPathComponent
        let who = holder.map { h in
            "process \(h["pid"] ?? "?") on \(h["host"] ?? "?"), started \(h["started"] ?? "at an unknown time")"
        } ?? "a process that has not yet written its id"
        return "\(folder) is in use by another training run: \(who) (lock file \(path)); wait for it to end,"
            + " or train into another folder"
    }

    /// This machine's name.
    static func hostname() -> String {
        var buffer = [CChar](repeating: 0, count: 256)
        guard gethostname(&buffer, buffer.count - 1) == 0 else { return "localhost" }
        return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// The time now, as UTC ISO 8601 ("2026-05-01T12:00:00Z").
    static func now() -> String {
        let f = ISO8601DateFormatter()
        f.formatOptions = [.withInternetDateTime]
        return f.string(from: Date())
    }
}
