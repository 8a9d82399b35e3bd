import Annals
import Foundation
import Testing

@testable import AnnalsFileStore

#if canImport(Glibc)
    import Glibc
#endif

@Suite("File store index checkpoint", .serialized)
struct IndexCheckpointTests {
    @Test("after a clean close, opening reads the index and scans only the log after it", .timeLimit(.minutes(1)))
    func usesCheckpoint() async throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        let store = try FileEventStore.open(at: directory.path, configuration: .tinyInMemory())
        let (attempts, _) = await Durability.workload(store, count: 100, seed: 17)
        try await store.setMetadata(StreamMetadata(maxCount: 3), for: try StreamName("durable-4"))
        try await store.delete(try StreamName("durable-0"))
        await store.close()
        let reopened = try FileEventStore.open(at: directory.path, configuration: .tinyInMemory())
        #expect(reopened.recovery.usedCheckpoint)
        #expect(reopened.recovery.scannedRecords == 0)
        try await Durability.verify(reopened, attempts)
        #expect(try await reopened.streamInfo(try StreamName("durable-4"))?.metadata.maxCount == 3)
        #expect(try await reopened.streamInfo(try StreamName("durable-0"))?.isDeleted == true)
        let first = try #require(attempts.first { $0.result != nil })
        #expect(try await reopened.append(first.events, to: first.stream, expecting: .any) == first.result)
        // Appends after the checkpoint, then a crash (no new checkpoint): only they are scanned.
        let (more, _) = await Durability.workload(reopened, count: 10, seed: 18)
        reopened.abandonWithoutCheckpoint()
        let third = try FileEventStore.open(at: directory.path, configuration: .tinyInMemory())
        #expect(third.recovery.usedCheckpoint)
        #expect(third.recovery.scannedRecords == 10)
        try await Durability.verify(third, attempts + more)
        await third.close()
        let healthy = try FileEventStore.verify(at: directory.path)
        #expect(healthy.isHealthy, "\(healthy.findings.map(\.description))")
    }

    @Test("a checkpoint that no longer matches the log, or is damaged, is ignored", .timeLimit(.minutes(1)))
    func staleOrDamaged() async throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        let store = try FileEventStore.open(at: directory.path, configuration: .tinyInMemory())
        _ = await Durability.workload(store, count: 60, seed: 19)
        await store.close()
        // Damaged: one flipped byte.
        let damaged = TemporaryDirectory("annals-index")
        defer { damaged.remove() }
        try Durability.copy(directory.path, to: damaged.path)
        try flip(damaged.path + "/index/checkpoint.idx", at: 100)
        let fromScan = try FileEventStore.open(at: damaged.path, configuration: .tinyInMemory())
        #expect(!fromScan.recovery.usedCheckpoint)
        #expect(try await fromScan.headPosition() > 0)
        await fromScan.close()
        // Stale: the log was cut inside its last record after the checkpoint was written.
        let stale = TemporaryDirectory("annals-index")
        defer { stale.remove() }
        try Durability.copy(directory.path, to: stale.path)
        let last = try #require(try Durability.segments(stale.path).last)
        let lastRecord = try #require(try Durability.recordRanges(last).last)
        #expect(truncate(last, off_t(lastRecord.lowerBound + 10)) == 0)
        let rescanned = try FileEventStore.open(at: stale.path, configuration: .tinyInMemory())
        #expect(!rescanned.recovery.usedCheckpoint)
        try await Durability.appendWorks(rescanned)
        await rescanned.close()
    }

    @Test(
        "with an index, a flipped bit in a sealed segment fails only the reads of the damaged record",
        .timeLimit(.minutes(1)))
    func damageFoundOnRead() async throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        let store = try FileEventStore.open(at: directory.path, configuration: .tinyInMemory())
        _ = await Durability.workload(store, count: 60, seed: 23)
        await store.close()
        let segment = try Durability.segments(directory.path)[1]
        let record = try #require(try Durability.recordRanges(segment).dropFirst().first)
        try flip(segment, at: record.lowerBound + 60)
        let reopened = try FileEventStore.open(at: directory.path, configuration: .tinyInMemory())
        let head = try await reopened.headPosition().value
        var failed: [UInt64] = []
        for position in 0..<head {
            do {
                _ = try await reopened.readAll(from: Position(position), direction: .forwards, filter: .all, limit: 1)
            } catch let error as EventStoreError {
                #expect(error.code == .corruptedStorage)
                #expect(error.message.contains(URL(fileURLWithPath: segment).lastPathComponent))
                #expect(error.message.contains("offset \(record.lowerBound)"))
                failed.append(position)
            }
        }
        #expect(!failed.isEmpty)
        #expect(failed == Array(failed[0]...failed[failed.count - 1]), "only one record's events fail")
        #expect(failed.count <= 4)
        await reopened.close()
        let report = try FileEventStore.verify(at: directory.path)
        #expect(report.findings.filter(\.isDamage).first?.offset == record.lowerBound)
    }

    private func flip(_ path: String, at offset: Int64) throws {
        let handle = try FileHandle(forUpdating: URL(fileURLWithPath: path))
        defer { try? handle.close() }
        try handle.seek(toOffset: UInt64(offset))
        let byte = try #require(try handle.read(upToCount: 1)?.first)
        try handle.seek(toOffset: UInt64(offset))
        try handle.write(contentsOf: [byte ^ 0x10])
    }
}
