import Annals
import AnnalsTestSupport
import Foundation
import Logging

@testable import AnnalsFileStore

/// An append the store acknowledged (or was asked to make), to check against the store after a crash.
struct Attempt: Sendable {
    var stream: StreamName
    var events: [EventData]
    var result: AppendResult?
}

enum Durability {
    /// Appends `count` random batches (1–4 events, 0–300 bytes each) to random streams, one at a time,
    /// until the first failure; returns every attempt, acknowledged or not, and the failure.
    static func workload(
        _ store: FileEventStore,
        count: Int,
        seed: UInt64
    ) async -> (attempts: [Attempt], failure: (any Error)?) {
        var random = SeededRandom(seed: seed)
        var attempts: [Attempt] = []
        for _ in 0..<count {
            var attempt = Attempt(
                stream: try! StreamName("durable-\(random.next() % 5)"), events: randomEvents(&random))
            do {
                attempt.result = try await store.append(attempt.events, to: attempt.stream, expecting: .any)
                attempts.append(attempt)
            } catch {
                attempts.append(attempt)
                return (attempts, error)
            }
        }
        return (attempts, nil)
    }

    static func randomEvents(_ random: inout SeededRandom) -> [EventData] {
        (0..<Int(random.next() % 4 + 1)).map { _ in
            let size = Int(random.next() % 300)
            let bytes = (0..<size).map { _ in UInt8(truncatingIfNeeded: random.next()) }
            return EventData(
                type: "Durable\(random.next() % 3)",
                data: Data(bytes),
                contentType: .binary,
                metadata: Data("{\"n\":\(random.next() % 1000)}".utf8)
            )
        }
    }

    /// Checks that every acknowledged event is present, byte-identical, at its revision and position;
    /// that no batch is partly present; and that positions are contiguous.
    static func verify(_ store: FileEventStore, _ attempts: [Attempt]) async throws {
        let log = try await store.readAll(from: nil, direction: .forwards, filter: .all, limit: .max)
        guard log.map(\.position.value) == Array(0..<UInt64(log.count)) else {
            throw DurabilityFailure("positions are not contiguous after reopening")
        }
        let byID = Dictionary(log.map { ($0.id, $0) }, uniquingKeysWith: { first, _ in first })
        guard byID.count == log.count else { throw DurabilityFailure("an event id appears twice in the log") }
        for attempt in attempts {
            let present = attempt.events.filter { byID[$0.id] != nil }
            guard present.isEmpty || present.count == attempt.events.count else {
                throw DurabilityFailure("a batch of \(attempt.events.count) is partly visible (\(present.count))")
            }
            guard let result = attempt.result else { continue }
            guard present.count == attempt.events.count else {
                throw DurabilityFailure("an acknowledged batch at position \(result.firstPosition) is missing")
            }
            for (index, sent) in attempt.events.enumerated() {
                let stored = byID[sent.id]!
                guard stored.eventData == sent, stored.stream == attempt.stream,
                    stored.revision.value == result.firstRevision.value + UInt64(index),
                    stored.position.value == result.firstPosition.value + UInt64(index)
                else {
                    throw DurabilityFailure("acknowledged event \(sent.id) came back changed or moved")
                }
            }
        }
    }

    /// Appends one more event and reads it back: the store works after recovery.
    static func appendWorks(_ store: FileEventStore) async throws {
        let stream = try StreamName("after-recovery")
        let event = EventData(type: "Recovered", data: Data("{}".utf8))
        let result = try await store.append([event], to: stream, expecting: .any)
        let read = try await store.read(stream, from: result.nextExpectedRevision, direction: .forwards, limit: 1)
        guard read.first?.id == event.id else { throw DurabilityFailure("the append after recovery is not readable") }
    }

    /// Removes the index checkpoint that a clean close writes, as if the process had been killed.
    static func forgetCheckpoint(_ directory: String) {
        try? FileManager.default.removeItem(atPath: directory + "/index")
    }

    /// Copies a store directory.
    static func copy(_ source: String, to destination: String) throws {
        try FileManager.default.copyItem(atPath: source, toPath: destination)
    }

    /// The segment files of a store, in order.
    static func segments(_ directory: String) throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: directory + "/segments").filter { $0.hasSuffix(".seg") }
            .sorted().map { directory + "/segments/" + $0 }
    }

    /// The byte ranges of the records in a segment file.
    static func recordRanges(_ path: String) throws -> [Range<Int64>] {
        let bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: path)))
        var ranges: [Range<Int64>] = []
        var offset = SegmentHeader.size
        while offset + RecordFormat.headerSize <= bytes.count {
            let length = bytes.withUnsafeBytes { Int(ByteReader.u32($0, at: offset + 4)) }
            guard length > 0, bytes.withUnsafeBytes({ ByteReader.u32($0, at: offset) }) == RecordFormat.magic else {
                break
            }
            ranges.append(Int64(offset)..<Int64(offset + length))
            offset += length
        }
        return ranges
    }
}

struct DurabilityFailure: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

extension FileEventStore.Configuration {
    /// 4 KiB segments and an index flushed every 64 events, so that rollover and index runs happen in
    /// every test.
    static func tiny() -> Self {
        var configuration = Self(
            segmentSize: 4_096, logger: Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() }))
        configuration.index = .tiny
        return configuration
    }

    /// ``tiny()`` with the index's default memtable: small tests write no index runs, so a test that
    /// reopens hundreds of copies does not pay a rebuild's flushes each time.
    static func tinyUnflushed() -> Self {
        var configuration = tiny()
        configuration.index = IndexConfiguration()
        return configuration
    }

    /// ``tiny()`` with the whole index in memory and a checkpoint at close (the older mode).
    static func tinyInMemory() -> Self {
        var configuration = tiny()
        configuration.keepsIndexInMemory = true
        return configuration
    }
}
