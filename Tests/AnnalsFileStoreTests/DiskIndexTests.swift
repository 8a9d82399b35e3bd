import Annals
import AnnalsTestSupport
import Foundation
import Logging
import Testing

@testable import AnnalsFileStore

/// The file store with its index on disk, against the in-memory store as the model (decision 0007's
/// model check): random appends, retries, reused ids, metadata, deletes and tombstones, with memtables
/// of 64 events so that runs are written all the time, and clean reopens and crashes at random points.
@Suite("File store, index on disk", .serialized)
struct DiskIndexTests {
    static let clock: @Sendable () -> Date = { Date(timeIntervalSince1970: 1_700_000_000) }

    static func configuration(_ settings: IndexConfiguration = .tiny) -> FileEventStore.Configuration {
        var configuration = FileEventStore.Configuration(
            limits: EventStoreLimits(maxEventsPerAppend: 200), segmentSize: 16 * 1024, clock: clock,
            logger: Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() }))
        configuration.index = settings
        return configuration
    }

    /// One random operation, done on both stores; their answers must agree.
    struct Operation: CustomStringConvertible {
        var description: String
        /// The batch an append tries, so a later step can retry it.
        var batch: (StreamName, [EventData])? = nil
        var run: @Sendable (any EventStore) async -> String
    }

    static func randomOperation(_ random: inout SeededRandom, history: [(StreamName, [EventData])]) throws -> Operation
    {
        let streams = 40
        let stream = try StreamName(
            ["order", "cart", "user"][Int.random(in: 0..<3, using: &random)]
                + "-\(Int.random(in: 0..<streams, using: &random))")
        let roll = Int.random(in: 0..<100, using: &random)
        func events(_ count: Int) -> [EventData] {
            (0..<count).map { _ in
                EventData(
                    type: ["Placed", "Paid", "Shipped"][Int.random(in: 0..<3, using: &random)],
                    data: Data("{\"n\":\(Int.random(in: 0..<1000, using: &random))}".utf8))
            }
        }
        @Sendable func describe(_ result: Result<AppendResult, any Error>) -> String {
            switch result {
            case .success(let value): "\(value)"
            case .failure(let error as EventStoreError): "error \(error.code)"
            case .failure(let error): "error \(error)"
            }
        }
        switch roll {
        case 0..<55:
            let batch = events(roll < 45 ? 1 : Int.random(in: 2...120, using: &random))
            let expected: ExpectedRevision = roll % 7 == 0 ? .noStream : .any
            return Operation(description: "append \(batch.count) to \(stream)", batch: (stream, batch)) { store in
                describe(await attemptAppend { try await store.append(batch, to: stream, expecting: expected) })
            }
        case 55..<68 where !history.isEmpty:
            // A retry of an earlier append (law 6), sometimes with one event changed.
            let (target, batch) = history[Int.random(in: 0..<history.count, using: &random)]
            var retried = batch
            let tamper = Int.random(in: 0..<4, using: &random) == 0
            if tamper { retried[retried.count - 1].data = Data("{\"tampered\":1}".utf8) }
            let other = Int.random(in: 0..<5, using: &random) == 0
            let destination = other ? stream : target
            let attempt = retried
            return Operation(description: "retry \(batch.count) to \(destination) (tampered: \(tamper))") { store in
                describe(await attemptAppend { try await store.append(attempt, to: destination, expecting: .any) })
            }
        case 68..<78:
            let metadata = StreamMetadata(
                maxCount: Int.random(in: 0..<3, using: &random) == 0 ? nil : Int.random(in: 1...5, using: &random),
                truncateBefore: Int.random(in: 0..<3, using: &random) == 0 ? StreamRevision(2) : nil)
            return Operation(description: "metadata of \(stream)") { store in
                do {
                    try await store.setMetadata(metadata, for: stream)
                    return "ok"
                } catch {
                    return "error \((error as? EventStoreError)?.code.rawValue ?? "\(error)")"
                }
            }
        case 78..<88:
            return Operation(description: "delete \(stream)") { store in
                do {
                    try await store.delete(stream, expecting: .any)
                    return "ok"
                } catch {
                    return "error \((error as? EventStoreError)?.code.rawValue ?? "\(error)")"
                }
            }
        case 88..<91:
            return Operation(description: "tombstone \(stream)") { store in
                do {
                    try await store.tombstone(stream, expecting: .any)
                    return "ok"
                } catch {
                    return "error \((error as? EventStoreError)?.code.rawValue ?? "\(error)")"
                }
            }
        default:
            let batch = events(1)
            return Operation(description: "append 1 to \(stream) expecting 0") { store in
                describe(
                    await attemptAppend {
                        try await store.append(batch, to: stream, expecting: .exact(StreamRevision(0)))
                    })
            }
        }
    }

    static func attemptAppend(_ body: () async throws -> AppendResult) async -> Result<AppendResult, any Error> {
        do { return .success(try await body()) } catch { return .failure(error) }
    }

    /// Everything a reader can see, as text, so two stores compare with one `==`.
    static func snapshot(_ store: any EventStore) async throws -> [String] {
        func line(_ events: [RecordedEvent]) -> String {
            events.map { "\($0.stream)@\($0.revision.value)#\($0.position.value):\($0.id):\($0.type)" }.joined(
                separator: ",")
        }
        func attempt(_ body: () async throws -> String) async -> String {
            do { return try await body() } catch {
                return "error \((error as? EventStoreError)?.code.rawValue ?? "\(error)")"
            }
        }
        var lines: [String] = []
        lines.append("head \(try await store.headPosition().value), streams \(try await store.streamCount())")
        var after: StreamName? = nil
        while true {
            let page = try await store.listStreams(after: after, limit: 7)
            guard let last = page.last else { break }
            for info in page {
                lines.append("info \(info)")
                let stream = info.stream
                lines.append(
                    await attempt { line(try await store.read(stream, from: nil, direction: .forwards, limit: 1_000)) })
                lines.append(
                    await attempt {
                        line(try await store.read(stream, from: StreamRevision(1), direction: .forwards, limit: 3))
                    })
                lines.append(
                    await attempt { line(try await store.read(stream, from: nil, direction: .backwards, limit: 4)) })
            }
            after = last.stream
        }
        lines.append(
            line(try await store.readAll(from: nil, direction: .forwards, filter: EventFilter(), limit: 100_000)))
        lines.append(
            line(try await store.readAll(from: Position(37), direction: .backwards, filter: EventFilter(), limit: 20)))
        for filter in [
            EventFilter(category: "order"), EventFilter(eventTypes: ["Paid", "Shipped"]),
            EventFilter(eventTypes: ["Paid"], category: "cart"), EventFilter(streamPrefix: "user-1"),
        ] {
            lines.append(line(try await store.readAll(from: nil, direction: .forwards, filter: filter, limit: 100_000)))
            lines.append(
                line(try await store.readAll(from: Position(50), direction: .forwards, filter: filter, limit: 9)))
            lines.append(line(try await store.readAll(from: nil, direction: .backwards, filter: filter, limit: 13)))
        }
        return lines
    }

    /// Compares what two stores show, reporting only the first difference (a snapshot is long).
    static func expectSame(_ store: any EventStore, _ model: any EventStore, _ when: String) async throws {
        let got = try await snapshot(store)
        let want = try await snapshot(model)
        if got != want {
            let index =
                zip(got, want).enumerated().first { $0.element.0 != $0.element.1 }?.offset ?? min(got.count, want.count)
            let gotLine = index < got.count ? String(got[index].prefix(600)) : "(nothing)"
            let wantLine = index < want.count ? String(want[index].prefix(600)) : "(nothing)"
            Issue.record("\(when): line \(index) differs:\n got \(gotLine)\nwant \(wantLine)")
        }
    }

    @Test(
        "random appends, retries, metadata, deletes and tombstones read the same as the in-memory store, across reopens and crashes",
        .timeLimit(.minutes(3)), arguments: [UInt64(1), 2, 3])
    func modelCheck(seed: UInt64) async throws {
        let directory = TemporaryDirectory("disk-index")
        defer { directory.remove() }
        let model = try InMemoryEventStore(
            configuration: .init(limits: EventStoreLimits(maxEventsPerAppend: 200), clock: Self.clock))
        var store = try FileEventStore.open(at: directory.path, configuration: Self.configuration())
        var random = SeededRandom(seed: seed)
        var history: [(StreamName, [EventData])] = []
        var reopens = 0
        for step in 0..<700 {
            let operation = try Self.randomOperation(&random, history: history)
            let expected = await operation.run(model)
            let actual = await operation.run(store)
            #expect(actual == expected, "step \(step): \(operation)")
            if actual != expected { break }
            if let batch = operation.batch, !expected.hasPrefix("error") { history.append(batch) }
            let choice = Int.random(in: 0..<100, using: &random)
            if choice < 2 {
                await store.close()
                store = try FileEventStore.open(at: directory.path, configuration: Self.configuration())
                reopens += 1
            } else if choice < 4 {
                store.abandonWithoutCheckpoint()
                store = try FileEventStore.open(at: directory.path, configuration: Self.configuration())
                reopens += 1
            }
            if step % 100 == 99 {
                try await Self.expectSame(store, model, "step \(step)")
            }
        }
        try await Self.expectSame(store, model, "the end")
        let index = try #require(store.engine.withLock { $0.index } as? DiskIndex)
        // Every 64 events a run, merged two by two: about log2(head / 64) runs, each of a higher level.
        let head = try await store.headPosition().value
        #expect(head > 64 * 16, "runs were written")
        #expect(index.runs.contains { $0.header.level >= 3 }, "runs were merged")
        #expect(index.runs.count <= 64 - (head / 64).leadingZeroBitCount + 2, "merges keep the runs few")
        #expect(reopens > 0)
        await store.close()
        let reopened = try FileEventStore.open(at: directory.path, configuration: Self.configuration())
        try await Self.expectSame(reopened, model, "after a clean reopen")
        // A clean close flushed everything: the open scanned nothing.
        #expect(reopened.recovery.scannedRecords == 0)
        await reopened.close()
    }
}
