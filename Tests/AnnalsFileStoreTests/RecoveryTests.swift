import Annals
import Foundation
import Testing

@testable import AnnalsFileStore

#if canImport(Glibc)
    import Glibc
#endif

@Suite("File store recovery", .serialized)
struct RecoveryTests {
    @Test("acknowledged events survive closing, then reopening", .timeLimit(.minutes(1)))
    func reopen() async throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        let store = try FileEventStore.open(at: directory.path, configuration: .tiny())
        let (attempts, failure) = await Durability.workload(store, count: 200, seed: 7)
        #expect(failure == nil)
        try await store.setMetadata(
            StreamMetadata(maxCount: 2, custom: ["k": .string("v")]), for: try StreamName("durable-1"))
        try await store.delete(try StreamName("durable-2"))
        try await store.tombstone(try StreamName("durable-3"))
        await store.close()
        let segments = try Durability.segments(directory.path)
        #expect(segments.count > 3, "the workload must cross segment boundaries")
        let reopened = try FileEventStore.open(at: directory.path, configuration: .tiny())
        try await Durability.verify(reopened, attempts)
        let info1 = try #require(try await reopened.streamInfo(try StreamName("durable-1")))
        #expect(info1.metadata.maxCount == 2 && info1.metadata.custom["k"] == .string("v"))
        #expect(try await reopened.streamInfo(try StreamName("durable-2"))?.isDeleted == true)
        #expect(try await reopened.streamInfo(try StreamName("durable-3"))?.isTombstoned == true)
        // Duplicate detection survives the restart.
        let first = try #require(attempts.first { $0.result != nil })
        let again = try await reopened.append(first.events, to: first.stream, expecting: .noStream)
        #expect(again == first.result)
        try await Durability.appendWorks(reopened)
        await reopened.close()
    }

    @Test(
        "a second opener is refused with the owner's pid, and may open once the first closes", .timeLimit(.minutes(1)))
    func locked() async throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        let store = try FileEventStore.open(at: directory.path, configuration: .tiny())
        do {
            _ = try FileEventStore.open(at: directory.path, configuration: .tiny())
            Issue.record("a second open must fail")
        } catch let error as EventStoreError {
            #expect(error.code == .unavailable)
            #expect(error.message.contains("locked by pid \(getpid())"))
        }
        await store.close()
        let again = try FileEventStore.open(at: directory.path, configuration: .tiny())
        await again.close()
    }

    @Test(
        "a torn tail cut at every byte of the last two records is cut away, then reopening works",
        .timeLimit(.minutes(3)))
    func truncationAtEveryOffset() async throws {
        let original = TemporaryDirectory()
        defer { original.remove() }
        let store = try FileEventStore.open(at: original.path, configuration: .tiny())
        var (attempts, _) = await Durability.workload(store, count: 60, seed: 11)
        // Small appends until the last segment holds at least two records.
        while try Durability.recordRanges(try #require(try Durability.segments(original.path).last)).count < 2 {
            let events = [EventData(type: "Small", data: Data("{}".utf8))]
            let stream = try StreamName("durable-small")
            attempts.append(Attempt(stream: stream, events: events, result: try await store.append(events, to: stream)))
        }
        await store.close()
        Durability.forgetCheckpoint(original.path)
        let last = try #require(try Durability.segments(original.path).last)
        let ranges = try Durability.recordRanges(last)
        try #require(ranges.count >= 2, "the last segment must hold two records")
        let firstPositionOfLast = try #require(
            SegmentHeader.firstPosition(fromFileName: URL(fileURLWithPath: last).lastPathComponent))
        let cutStart = ranges[ranges.count - 2].lowerBound
        let end = ranges[ranges.count - 1].upperBound
        // Which acknowledged batches lie wholly before each cut: the attempts in order of position.
        let acknowledged = attempts.compactMap { attempt in attempt.result.map { (attempt, $0) } }
        for cut in cutStart...end {
            let copy = TemporaryDirectory("annals-cut")
            defer { copy.remove() }
            try Durability.copy(original.path, to: copy.path)
            let segment = copy.path + "/segments/" + URL(fileURLWithPath: last).lastPathComponent
            #expect(truncate(segment, off_t(cut)) == 0)
            let reopened = try FileEventStore.open(at: copy.path, configuration: .tinyUnflushed())
            let survivingRecords = ranges.filter { $0.upperBound <= cut }.count
            let head = try await reopened.headPosition().value
            // Records in the last segment hold one batch each; every event before the segment survives.
            let expectedHead = acknowledged.filter { $0.1.firstPosition.value < firstPositionOfLast }
                .reduce(firstPositionOfLast) { max($0, $1.1.lastPosition.value + 1) }
            let inLast = acknowledged.filter { $0.1.firstPosition.value >= firstPositionOfLast }
            let expected = inLast.prefix(survivingRecords).reduce(expectedHead) { $0 + UInt64($1.0.events.count) }
            #expect(head == expected, "cut at \(cut): head \(head), expected \(expected)")
            try await Durability.verify(
                reopened,
                acknowledged.filter { $0.1.lastPosition.value < head }.map { $0.0 }
            )
            try await Durability.appendWorks(reopened)
            await reopened.close()
        }
    }

    @Test("a zeroed or junk tail is cut away; junk before a valid record is refused", .timeLimit(.minutes(1)))
    func junkTail() async throws {
        let original = TemporaryDirectory()
        defer { original.remove() }
        let store = try FileEventStore.open(at: original.path, configuration: .tiny())
        let (attempts, _) = await Durability.workload(store, count: 40, seed: 5)
        await store.close()
        Durability.forgetCheckpoint(original.path)
        let last = try #require(try Durability.segments(original.path).last)
        let ranges = try Durability.recordRanges(last)
        let lastRecord = try #require(ranges.last)
        for junk in [[UInt8](repeating: 0, count: 100), (0..<100).map { UInt8(truncatingIfNeeded: $0 &* 37 &+ 1) }] {
            let copy = TemporaryDirectory("annals-junk")
            defer { copy.remove() }
            try Durability.copy(original.path, to: copy.path)
            let segment = copy.path + "/segments/" + URL(fileURLWithPath: last).lastPathComponent
            try overwrite(segment, at: lastRecord.lowerBound, with: junk)
            let reopened = try FileEventStore.open(at: copy.path, configuration: .tiny())
            #expect(
                try await reopened.headPosition().value < attempts.compactMap(\.result).last!.lastPosition.value + 1)
            try await Durability.appendWorks(reopened)
            await reopened.close()
        }
        // Junk over the second-to-last record, with a valid one after it: refused, not cut.
        let copy = TemporaryDirectory("annals-junk")
        defer { copy.remove() }
        try Durability.copy(original.path, to: copy.path)
        let segment = copy.path + "/segments/" + URL(fileURLWithPath: last).lastPathComponent
        try overwrite(segment, at: ranges[ranges.count - 2].lowerBound + 20, with: [0xFF, 0xFF, 0xFF])
        #expect(throws: EventStoreError.self) { try FileEventStore.open(at: copy.path, configuration: .tiny()) }
        let report = try FileEventStore.verify(at: copy.path)
        #expect(!report.isHealthy)
        #expect(report.findings.first?.offset == ranges[ranges.count - 2].lowerBound)
    }

    @Test("a flipped bit anywhere in a sealed segment is refused on open and named by verify", .timeLimit(.minutes(5)))
    func bitFlips() async throws {
        let original = TemporaryDirectory()
        defer { original.remove() }
        let store = try FileEventStore.open(at: original.path, configuration: .tiny())
        _ = await Durability.workload(store, count: 50, seed: 3)
        await store.close()
        Durability.forgetCheckpoint(original.path)
        let segments = try Durability.segments(original.path)
        try #require(segments.count >= 3)
        let healthy = try FileEventStore.verify(at: original.path)
        #expect(healthy.isHealthy, "\(healthy.findings)")
        for segment in segments.dropLast() {
            let name = URL(fileURLWithPath: segment).lastPathComponent
            let size = try FileManager.default.attributesOfItem(atPath: segment)[.size] as! NSNumber
            let ranges = try Durability.recordRanges(segment)
            for offset in stride(from: 0, to: size.int64Value, by: 29) {
                let copy = TemporaryDirectory("annals-flip")
                defer { copy.remove() }
                try Durability.copy(original.path, to: copy.path)
                let target = copy.path + "/segments/" + name
                try flip(target, at: offset)
                do {
                    let reopened = try FileEventStore.open(at: copy.path, configuration: .tiny())
                    await reopened.close()
                    Issue.record("a flip at \(name):\(offset) was not detected")
                } catch let error as EventStoreError {
                    #expect(error.code == .corruptedStorage)
                    #expect(error.message.contains(name), "the error must name \(name): \(error.message)")
                }
                let report = try FileEventStore.verify(at: copy.path)
                let damage = report.findings.filter(\.isDamage)
                #expect(
                    !damage.isEmpty && damage.allSatisfy { $0.file.hasSuffix(name) },
                    "\(name):\(offset) \(report.findings.map(\.description))")
                if let record = ranges.first(where: { $0.contains(offset) }) {
                    #expect(
                        damage.first?.offset == record.lowerBound,
                        "verify must name the damaged record at \(record.lowerBound)")
                    #expect(damage.count == 1, "only the damaged record fails: \(damage)")
                }
            }
        }
    }

    @Test("a segment of another store, a missing segment and an unknown version are refused", .timeLimit(.minutes(1)))
    func foreignAndMissing() async throws {
        let first = TemporaryDirectory()
        let second = TemporaryDirectory()
        defer {
            first.remove()
            second.remove()
        }
        for directory in [first, second] {
            let store = try FileEventStore.open(at: directory.path, configuration: .tiny())
            _ = await Durability.workload(store, count: 40, seed: 9)
            await store.close()
            Durability.forgetCheckpoint(directory.path)
        }
        let segments = try Durability.segments(first.path)
        // A middle segment removed.
        let missing = TemporaryDirectory("annals-missing")
        defer { missing.remove() }
        try Durability.copy(first.path, to: missing.path)
        try FileManager.default.removeItem(
            atPath: missing.path + "/segments/" + URL(fileURLWithPath: segments[1]).lastPathComponent)
        #expect(throws: EventStoreError.self) { try FileEventStore.open(at: missing.path, configuration: .tiny()) }
        // Another store's segment in its place.
        let foreign = TemporaryDirectory("annals-foreign")
        defer { foreign.remove() }
        try Durability.copy(first.path, to: foreign.path)
        try FileManager.default.removeItem(atPath: foreign.path + "/store.id")
        try Durability.copy(second.path + "/store.id", to: foreign.path + "/store.id")
        do {
            _ = try FileEventStore.open(at: foreign.path, configuration: .tiny())
            Issue.record("a foreign segment must be refused")
        } catch let error as EventStoreError {
            #expect(error.message.contains("another store"))
        }
        // An unknown format version in store.id.
        let future = TemporaryDirectory("annals-future")
        defer { future.remove() }
        try Durability.copy(first.path, to: future.path)
        let identity = StoreIdentity(storeID: UUID(), formatVersion: 99)
        try Data(identity.encoded()).write(to: URL(fileURLWithPath: future.path + "/store.id"))
        do {
            _ = try FileEventStore.open(at: future.path, configuration: .tiny())
            Issue.record("an unknown version must be refused")
        } catch let error as EventStoreError {
            #expect(error.message.contains("version 99"))
        }
    }

    private func overwrite(_ path: String, at offset: Int64, with bytes: [UInt8]) throws {
        let handle = try FileHandle(forUpdating: URL(fileURLWithPath: path))
        defer { try? handle.close() }
        try handle.seek(toOffset: UInt64(offset))
        try handle.write(contentsOf: bytes)
    }

    private func flip(_ path: String, at offset: Int64) throws {
        let handle = try FileHandle(forUpdating: URL(fileURLWithPath: path))
        defer { try? handle.close() }
        try handle.seek(toOffset: UInt64(offset))
        let byte = try #require(try handle.read(upToCount: 1)?.first)
        try handle.seek(toOffset: UInt64(offset))
        try handle.write(contentsOf: [byte ^ (1 << UInt8(offset % 8))])
    }
}
