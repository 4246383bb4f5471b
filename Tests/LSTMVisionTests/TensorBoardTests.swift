import Foundation
import LSTMVisionProtos
import SwiftProtobuf
import Testing
@testable import LSTMVision
@testable import LSTMVisionCore

/// TensorBoard event files: CRC-32C against published vectors, TFRecord framing and events byte for byte against a
/// file TensorBoard's own writer made (tools/make_tensorboard_fixture.py), events decoded back, and the trainer's
/// logs (per step, per epoch as log.csv, resumed without repeated steps). tools/tensorboard-check.sh reads a real
/// run's files with TensorBoard's EventAccumulator.
@Suite(.serialized) struct TensorBoardTests {
    func tempDir(_ name: String) -> String { freshTemporaryPath("tensorboard-\(name)") }

    func eventFiles(_ dir: String) throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: dir).filter { $0.hasPrefix("events.out.tfevents.") }
            .sorted().map { dir + "/" + $0 }
    }

    /// RFC 3720 B.4's vectors and the common check value of "123456789".
    @Test func crc32cPublishedVectors() {
        #expect(CRC32C.checksum(Array("123456789".utf8)) == 0xE306_9283)
        #expect(CRC32C.checksum([UInt8]()) == 0)
        #expect(CRC32C.checksum([UInt8](repeating: 0, count: 32)) == 0x8A91_36AA)
        #expect(CRC32C.checksum([UInt8](repeating: 0xFF, count: 32)) == 0x62A8_AB43)
        #expect(CRC32C.checksum((0..<32).map { UInt8($0) }) == 0x46DD_794E)
        #expect(CRC32C.checksum((0..<32).reversed().map { UInt8($0) }) == 0x113F_DB5C)
        let pdu: [UInt8] = [0x01, 0xC0, 0, 0] + [UInt8](repeating: 0, count: 12) + [0x14, 0, 0, 0, 0, 0, 0x04, 0,
                            0, 0, 0, 0x14, 0, 0, 0, 0x18, 0x28, 0, 0, 0, 0, 0, 0, 0, 0x02, 0, 0, 0, 0, 0, 0, 0]
        #expect(pdu.count == 48)
        #expect(CRC32C.checksum(pdu) == 0xD996_3A56)
    }

    /// The mask as TensorBoard computes it (masked_crc32c(b"123456789") in tensorboard 2.21 is 0xc78ab0e5), and its
    /// inverse.
    @Test func masking() {
        #expect(CRC32C.masked(Array("123456789".utf8)) == 0xC78A_B0E5)
        #expect(CRC32C.mask(0xE306_9283) == 0xC78A_B0E5)
        for crc: UInt32 in [0, 1, 0xE306_9283, 0xFFFF_FFFF, 0x8000_0000] {
            #expect(CRC32C.unmask(CRC32C.mask(crc)) == crc)
            #expect(CRC32C.mask(crc) != crc)
        }
    }

    func fixtureBytes() throws -> [UInt8] {
        let url = try #require(Bundle.module.url(forResource: "events.tfrecord", withExtension: nil,
                                                 subdirectory: "Fixtures/tensorboard"))
        return [UInt8](try Data(contentsOf: url))
    }

    /// A record's bytes: length, its masked CRC, data, its masked CRC, as TensorBoard's RecordWriter frames them.
    @Test func recordBytesMatchTensorBoard() throws {
        let bytes = try fixtureBytes()
        var first = Tensorboard_Event()
        first.wallTime = 1_700_000_000.25
        first.fileVersion = "brain.Event:2"
        let data: [UInt8] = try first.serializedBytes()
        #expect(data.count == 24)
        let record = TFRecord.frame(data)
        #expect(record.count == 8 + 4 + 24 + 4)
        #expect(Array(record[0..<8]) == [24, 0, 0, 0, 0, 0, 0, 0])
        #expect(record == Array(bytes[0..<record.count]))
        let parsed = try TFRecord.records(in: bytes, source: "fixture")
        #expect(parsed.records.count == 3 && !parsed.truncated)
        #expect(parsed.records.first == data)
    }

    /// TensorBoardLog writes the fixture's events (at the same times) to the byte, and they decode back.
    @Test func eventFileMatchesTensorBoardAndDecodes() throws {
        let dir = tempDir("bytes")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let log = try TensorBoardLog(directory: dir, now: Date(timeIntervalSince1970: 1_700_000_000.25))
        try log.write([("step/loss", 0.6931472), ("step/learning_rate", 0.002)], step: 7,
                      wallTime: Date(timeIntervalSince1970: 1_700_000_001.5))
        try log.write([("epoch/val_accuracy", 0.9875)], step: 8,
                      wallTime: Date(timeIntervalSince1970: 1_700_000_002.75))
        try log.flush()
        let name = (log.path as NSString).lastPathComponent
        #expect(name == "events.out.tfevents.1700000000.\(TensorBoardLog.hostname()).\(getpid()).0")
        let written = [UInt8](try Data(contentsOf: URL(fileURLWithPath: log.path)))
        #expect(written == (try fixtureBytes()))

        let records = try TFRecord.read(log.path).records
        let events = try records.map { try Tensorboard_Event(serializedBytes: $0) }
        #expect(events.count == 3)
        #expect(events[0].fileVersion == "brain.Event:2" && events[0].wallTime == 1_700_000_000.25)
        #expect(events[1].step == 7 && events[1].wallTime == 1_700_000_001.5)
        #expect(events[1].summary.value.map(\.tag) == ["step/loss", "step/learning_rate"])
        #expect(events[1].summary.value.map(\.simpleValue) == [Float(0.6931472), Float(0.002)])
        #expect(events[2].step == 8 && events[2].summary.value.first?.simpleValue == Float(0.9875))
        // A second log in the same second gets the next name.
        let second = try TensorBoardLog(directory: dir, now: Date(timeIntervalSince1970: 1_700_000_000.25))
        #expect(second.path.hasSuffix(".\(getpid()).1") && second.earlierFiles == [log.path])
    }

    /// A truncated last record (a writer killed mid-record) is left out; a damaged checksum is an error naming it.
    @Test func readerStopsAtTruncationAndRefusesDamage() throws {
        let bytes = try fixtureBytes()
        for cut in [1, 5, 13, 40] {
            let r = try TFRecord.records(in: Array(bytes.dropLast(cut)), source: "cut")
            #expect(r.truncated && r.records.count == 2)
        }
        var damaged = bytes
        damaged[20] ^= 1   // inside the first record's data
        #expect(throws: DataError.invalid("damaged: the data of the record at byte 0 fails its CRC-32C")) {
            try TFRecord.records(in: damaged, source: "damaged")
        }
        damaged = bytes
        damaged[2] ^= 1    // the first record's length
        #expect(throws: DataError.invalid("damaged: the length of the record at byte 0 fails its CRC-32C")) {
            try TFRecord.records(in: damaged, source: "damaged")
        }
    }

    /// A folder that cannot be made (here: under a plain file) is one error naming it, before any training.
    @Test func unusableFolderIsOneClearError() throws {
        let file = tempDir("file")
        try Data().write(to: URL(fileURLWithPath: file))
        defer { try? FileManager.default.removeItem(atPath: file) }
        do {
            _ = try TensorBoardLog(directory: file + "/tensorboard")
            Issue.record("no error thrown")
        } catch let error as CheckpointError {
            #expect("\(error)".hasPrefix("\(file)/tensorboard: cannot create or list the TensorBoard folder"))
        }
    }

    static let config = ModelConfig(kind: .row, height: 8, width: 8, hidden: 6, classes: 4)

    func options(epochs: Int) -> TrainingOptions {
        var o = TrainingOptions()
        o.epochs = epochs
        o.batchSize = 16
        o.warmupSteps = 2
        return o
    }

    func trainer(_ dir: String, epochs: Int) throws -> Trainer<ClassificationTask> {
        let t = try Trainer<ClassificationTask>(model: try makeClassifier(Self.config, seed: 2),
                                                options: options(epochs: epochs),
                                                train: TrainingTests.bars(64, seed: 1),
                                                validation: TrainingTests.bars(32, seed: 3), directory: dir)
        t.quiet = true
        return t
    }

    /// All scalars of a folder's event files, in file order.
    func scalars(_ dir: String) throws -> [(step: Int64, tag: String, value: Float)] {
        try eventFiles(dir).flatMap { try TensorBoardLog.scalars(in: $0) }
    }

    /// A run's events: every step's loss and rate (the schedule's), and each epoch's log.csv columns, equal.
    @Test func trainerLogsStepsAndEpochsAsLogCSV() throws {
        let dir = tempDir("trainer")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let t = try trainer(dir, epochs: 2)
        let history = try t.run()
        let files = try eventFiles(dir + "/tensorboard")
        #expect(files.count == 1)
        let all = try scalars(dir + "/tensorboard")
        let losses = all.filter { $0.tag == "step/loss" }, rates = all.filter { $0.tag == "step/learning_rate" }
        #expect(losses.map(\.step) == Array(0..<8) && rates.map(\.step) == Array(0..<8))
        let schedule = t.options.makeSchedule(stepsPerEpoch: 4)
        #expect(rates.map(\.value) == (0..<8).map { schedule.rate(base: t.options.learningRate, step: $0) })
        #expect(rates[0].value == t.options.learningRate / 2)   // warm-up: step 1 of 2
        let csv = try String(contentsOfFile: dir + "/log.csv", encoding: .utf8).split(separator: "\n")
        let header = csv[0].split(separator: ",").map(String.init)
        #expect(header == ClassificationTask.Record.csvHeader && csv.count == 3)
        for (row, line) in csv.dropFirst().enumerated() {
            let values = line.split(separator: ",").map(String.init)
            for (column, text) in zip(header, values) where column != "epoch" {
                let logged = all.filter { $0.tag == "epoch/" + column }
                #expect(logged.count == 2, "epoch/\(column)")
                #expect(logged[row].step == Int64(4 * (row + 1)))
                #expect(logged[row].value == Float(try #require(Double(text))), "epoch/\(column) row \(row)")
            }
        }
        // The epoch's training loss is the mean of its steps' losses (equal batches of 16).
        for e in 0..<2 {
            let mean = losses[(4 * e)..<(4 * e + 4)].map { Double($0.value) }.reduce(0, +) / 4
            #expect(abs(mean - history[e].trainLoss) < 1e-6 * max(1, abs(mean)))
        }
        #expect(all.filter { $0.tag == "epoch/val_accuracy" }.map(\.value)
                == history.map { Float($0.validationAccuracy) })
    }

    /// A resumed run writes a second file in the folder and repeats no step, even those an interrupted run logged
    /// after its last checkpoint; `tensorBoard = nil` writes none.
    @Test func resumeContinuesInNewFileWithoutRepeats() throws {
        let dir = tempDir("resume")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try trainer(dir, epochs: 1).run()
        let first = try #require(try eventFiles(dir + "/tensorboard").first)
        // What an interrupted run leaves: step 4 logged after the checkpoint at step 4, then a cut-off record.
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: first))
        handle.seekToEndOfFile()
        var event = Tensorboard_Event()
        event.step = 4
        var value = Tensorboard_Summary.Value()
        value.tag = "step/loss"
        value.simpleValue = 123
        event.summary.value = [value]
        let record = TFRecord.frame(try event.serializedBytes() as [UInt8])
        handle.write(Data(record + record.prefix(7)))
        handle.closeFile()

        let resumed = try trainer(dir, epochs: 2)
        try resumed.resume()
        try resumed.run()
        let files = try eventFiles(dir + "/tensorboard")
        #expect(files.count == 2 && files[0] == first)
        let all = try scalars(dir + "/tensorboard")
        let losses = all.filter { $0.tag == "step/loss" }
        #expect(losses.map(\.step) == Array(0..<8))
        #expect(losses[4].value == 123)   // the earlier file's, not written again
        #expect(all.filter { $0.tag == "step/learning_rate" }.map(\.step) == Array(0..<8))
        #expect(all.filter { $0.tag == "epoch/val_accuracy" }.map(\.step) == [4, 8])

        let off = tempDir("off")
        defer { try? FileManager.default.removeItem(atPath: off) }
        let quiet = try trainer(off, epochs: 1)
        quiet.tensorBoard = nil
        try quiet.run()
        #expect(!FileManager.default.fileExists(atPath: off + "/tensorboard"))
    }
}
