import Annals
import AnnalsTestSupport
import Foundation
import Testing

@testable import AnnalsFileStore

#if canImport(Glibc)
    import Glibc
#endif

@Suite("File store under I/O faults", .serialized)
struct FaultInjectionTests {
    static let workloadSize = 30

    /// How many writes and flushes a clean run of the workload makes (store creation included).
    static func cleanCounts() async throws -> (writes: Int, syncs: Int) {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        let io = FaultyFileIO()
        let store = try FileEventStore.open(at: directory.path, configuration: .tiny(), io: io)
        let (_, failure) = await Durability.workload(store, count: workloadSize, seed: 21)
        #expect(failure == nil)
        await store.close()
        return (io.writeCount, io.syncCount)
    }

    /// Runs the workload on a faulty disk, then checks the failure and recovery.
    func run(_ plan: FaultyFileIO.Plan, label: String) async throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        let io = FaultyFileIO(plan)
        let store: FileEventStore
        do {
            store = try FileEventStore.open(at: directory.path, configuration: .tiny(), io: io)
        } catch {
            // The fault hit store creation: nothing was acknowledged; a clean open must work.
            let reopened = try FileEventStore.open(at: directory.path, configuration: .tiny())
            try await Durability.appendWorks(reopened)
            await reopened.close()
            return
        }
        let (attempts, failure) = await Durability.workload(store, count: Self.workloadSize, seed: 21)
        if let failure {
            let error = try #require(failure as? EventStoreError, "\(label): \(failure)")
            #expect(error.code == .storeFailed, "\(label): \(error)")
            // The failed state holds: nothing after the failure is acknowledged.
            await #expect(throws: EventStoreError.self, "\(label)") {
                try await store.append([EventData(type: "Late", data: Data("{}".utf8))], to: try StreamName("late"))
            }
        }
        await store.close()
        let reopened = try FileEventStore.open(at: directory.path, configuration: .tiny())
        try await Durability.verify(reopened, attempts)
        try await Durability.appendWorks(reopened)
        await reopened.close()
    }

    @Test("EIO on the k-th write, for every k of a workload, then reopening", .timeLimit(.minutes(3)))
    func failedWrites() async throws {
        let counts = try await Self.cleanCounts()
        for k in 1...(counts.writes + 1) {
            try await run(FaultyFileIO.Plan(failWrite: k), label: "write \(k)")
        }
    }

    @Test("EIO on the k-th flush, for every k of a workload, then reopening", .timeLimit(.minutes(3)))
    func failedFlushes() async throws {
        let counts = try await Self.cleanCounts()
        for k in 1...(counts.syncs + 1) {
            try await run(FaultyFileIO.Plan(failSync: k), label: "flush \(k)")
        }
    }

    @Test("ENOSPC in the middle of an append (a short write), then reopening", .timeLimit(.minutes(3)))
    func noSpaceMidAppend() async throws {
        let counts = try await Self.cleanCounts()
        for k in 1...counts.writes {
            try await run(
                FaultyFileIO.Plan(failWrite: k, writeError: ENOSPC, shortWrite: true), label: "short write \(k)")
        }
    }

    @Test("ENOSPC when creating a segment, then reopening with no manual steps", .timeLimit(.minutes(1)))
    func noSpaceAtSegmentCreation() async throws {
        for k in 1...4 {
            try await run(FaultyFileIO.Plan(failPreallocate: k), label: "preallocate \(k)")
        }
    }

    @Test(
        "power loss: unflushed writes dropped, kept or torn at 512 bytes; every acknowledged event survives",
        .timeLimit(.minutes(3)))
    func powerLoss() async throws {
        for seed in UInt64(1)...20 {
            let directory = TemporaryDirectory()
            defer { directory.remove() }
            let io = FaultyFileIO()
            let store = try FileEventStore.open(at: directory.path, configuration: .tiny(), io: io)
            var random = SeededRandom(seed: seed)
            let crashAfter = Int(random.next() % 40) + 1
            // Four concurrent writers; the machine stops after a random number of acknowledgements.
            let attempts = try await withThrowingTaskGroup(of: [Attempt].self) { group in
                for writer in 0..<4 {
                    group.addTask {
                        var random = SeededRandom(seed: seed &* 31 &+ UInt64(writer))
                        var attempts: [Attempt] = []
                        for _ in 0..<30 {
                            var attempt = Attempt(
                                stream: try StreamName("power-\(writer)-\(random.next() % 3)"),
                                events: Durability.randomEvents(&random)
                            )
                            do {
                                attempt.result = try await store.append(attempt.events, to: attempt.stream)
                                attempts.append(attempt)
                                if attempts.count == crashAfter { io.crash() }
                            } catch {
                                attempts.append(attempt)
                                break
                            }
                        }
                        return attempts
                    }
                }
                return try await group.reduce(into: [Attempt]()) { $0 += $1 }
            }
            io.crash()
            try io.simulatePowerLoss(seed: seed)
            await store.close()
            let reopened = try FileEventStore.open(at: directory.path, configuration: .tiny())
            try await Durability.verify(reopened, attempts)
            try await Durability.appendWorks(reopened)
            await reopened.close()
        }
    }
}
