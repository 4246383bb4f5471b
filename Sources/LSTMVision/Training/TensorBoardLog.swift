import Foundation
import LSTMVisionProtos
import SwiftProtobuf

/// A TensorBoard event file: scalar summaries (`Tensorboard_Event` records in TFRecord framing) that TensorBoard
/// reads while they are written. The file is named as TensorBoard's own writers name theirs,
/// `events.out.tfevents.<unix seconds>.<hostname>.<pid>.<n>`, and starts with the record "brain.Event:2".
///
/// Records are appended and reach the file at once (TensorBoard follows a file by its growing end, so it cannot be
/// replaced atomically); `flush()` makes them durable. A process killed mid-record leaves a truncated last record,
/// which TensorBoard's readers, and `TFRecord.records(in:)`, stop at.
public final class TensorBoardLog {
    /// The event file.
    public let path: String
    /// The event files already in the folder when this one was opened, in name (time) order.
    public let earlierFiles: [String]
    private let fd: Int32
    /// Per tag, the last step the earlier files hold: a resumed run writes only later steps of a tag, so that steps
    /// logged before an interruption, and run again from the last checkpoint, are not repeated.
    private var lastStep: [String: Int64]

    /// The prefix of TensorBoard's event file names.
    public static let filePrefix = "events.out.tfevents."

    /// Opens a new event file in `directory` (created when missing). With `continuing`, the earlier event files
    /// there are read (within `limits`) for the steps they hold; otherwise they are left as they are and not read.
    public init(directory: String, continuing: Bool = false, limits: InputLimits = .default,
                now: Date = Date()) throws {
        let names: [String]
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            names = try FileManager.default.contentsOfDirectory(atPath: directory)
        } catch {
            throw CheckpointError.io("\(directory): cannot create or list the TensorBoard folder"
                                     + " (\(error.localizedDescription))")
        }
        earlierFiles = names.filter { $0.hasPrefix(Self.filePrefix) }.sorted().map { directory + "/" + $0 }
        var last: [String: Int64] = [:]
        if continuing {
            for file in earlierFiles { try Self.lastSteps(in: file, limits: limits, into: &last) }
        }
        lastStep = last
        let seconds = String(Int(now.timeIntervalSince1970.rounded(.down)))
        let stem = directory + "/" + Self.filePrefix + String(repeating: "0", count: max(0, 10 - seconds.count))
            + seconds + "." + Self.hostname() + "." + String(getpid())
        // A counter as TensorBoard's writers add: the first free one, so that two logs never share a file.
        var n = 0, opened: (String, Int32)?
        while opened == nil {
            let candidate = stem + "." + String(n)
            let fd = open(candidate, O_WRONLY | O_CREAT | O_EXCL | O_APPEND, 0o644)
            if fd >= 0 {
                opened = (candidate, fd)
            } else if errno != EEXIST || n >= 1000 {
                throw CheckpointError.io("\(candidate): cannot create: \(String(cString: strerror(errno)))")
            }
            n += 1
        }
        (path, fd) = opened!
        var first = Tensorboard_Event()
        first.wallTime = now.timeIntervalSince1970
        first.fileVersion = "brain.Event:2"
        try append(first)
        try flush()
    }

    deinit { close(fd) }

    /// Writes one event at `step` holding the scalars `values` (tag, value) as 32-bit floats, as TensorBoard keeps
    /// them; tags an earlier file holds at this step or later are left out, and nothing is written when none remain.
    public func write(_ values: [(tag: String, value: Double)], step: Int, wallTime: Date = Date()) throws {
        let step = Int64(step)
        let kept = values.filter { lastStep[$0.tag].map { step > $0 } ?? true }
        guard !kept.isEmpty else { return }
        var summary = Tensorboard_Summary()
        summary.value = kept.map { tag, value in
            var v = Tensorboard_Summary.Value()
            v.tag = tag
            v.simpleValue = Float(value)
            return v
        }
        var event = Tensorboard_Event()
        event.wallTime = wallTime.timeIntervalSince1970
        event.step = step
        event.summary = summary
        try append(event)
    }

    /// Makes what was written durable (fsync).
    public func flush() throws {
        guard fsync(fd) == 0 else {
            throw CheckpointError.io("\(path): fsync failed: \(String(cString: strerror(errno)))")
        }
    }

    /// Appends one event as a TFRecord.
    private func append(_ event: Tensorboard_Event) throws {
        let bytes = TFRecord.frame(try event.serializedBytes() as [UInt8])
        try bytes.withUnsafeBytes { raw in
            var off = 0
            while off < raw.count {
                let n = Foundation.write(fd, raw.baseAddress! + off, raw.count - off)
                guard n > 0 else {
                    throw CheckpointError.io("\(path): write failed: \(String(cString: strerror(errno)))")
                }
                off += n
            }
        }
    }

    /// The scalar events of an event file, in order: (step, tag, value). A truncated last record is left out.
    public static func scalars(in file: String, limits: InputLimits = .default) throws
        -> [(step: Int64, tag: String, value: Float)] {
        try scalars(decoding: [UInt8](try limits.readFile(file)), source: file)
    }

    /// The scalar events of an event file's bytes (`source` names it in errors), as `scalars(in:)`.
    public static func scalars(decoding bytes: [UInt8], source: String) throws
        -> [(step: Int64, tag: String, value: Float)] {
        var out: [(step: Int64, tag: String, value: Float)] = []
        for (i, record) in try TFRecord.records(in: bytes, source: source).records.enumerated() {
            let event: Tensorboard_Event
            do {
                event = try Tensorboard_Event(serializedBytes: record)
            } catch {
                throw DataError.invalid("\(source): record \(i + 1) is not a TensorBoard event (\(error))")
            }
            guard case let .summary(summary)? = event.what else { continue }
            for v in summary.value {
                if case let .simpleValue(x)? = v.value { out.append((event.step, v.tag, x)) }
            }
        }
        return out
    }

    /// Adds each tag's last step in `file` to `last`.
    static func lastSteps(in file: String, limits: InputLimits, into last: inout [String: Int64]) throws {
        for s in try scalars(in: file, limits: limits) { last[s.tag] = max(last[s.tag] ?? s.step, s.step) }
    }

    /// The machine's name, as TensorBoard's writers put it in file names ("localhost" when it has none).
    static func hostname() -> String {
        var buffer = [CChar](repeating: 0, count: 256)
        guard gethostname(&buffer, buffer.count - 1) == 0 else { return "localhost" }
        let name = String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        return name.isEmpty || name.contains("/") ? "localhost" : name
    }
}
