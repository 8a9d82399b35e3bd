import Annals
import Foundation

/// The index wholly in memory: the stream table and one location per position, persisted by
/// ``IndexCheckpoint`` when the store closes. Its memory grows with the log (decision 0007 replaces it
/// by ``DiskIndex``); `annals verify` rebuilds one from the log to compare.
final class MemoryIndex: EngineIndex, @unchecked Sendable {
    var table = StreamTable()
    /// locations[p]: where the record holding position p starts (see ``Location``).
    var locations: [UInt64] = []

    init() {}

    var head: UInt64 { table.head }
    var durableHead: UInt64 { table.durableHead }
    func publishDurable() { table.durableHead = table.head }
    var freeSlots: Int { .max }
    func waitForFlush() throws(EventStoreError) {}
    func freeze(end: LogPoint) {}
    func startFlush(publish: @escaping @Sendable (@escaping @Sendable () -> Void) -> Void) {}
    func flushAtClose(end: LogPoint, publish: @escaping @Sendable (@escaping @Sendable () -> Void) -> Void) {}
    func waitForBackgroundWork() {}
    func flushDuringRecovery(end: LogPoint) {}
    func finishBackgroundWork() async {}
    func segmentsChanged(_ firstPositions: [UInt64]) {}

    func decide(
        _ events: [EventData],
        to stream: StreamName,
        expecting expected: ExpectedRevision,
        storedEvent: (UInt64) throws(EventStoreError) -> StoredEvent
    ) throws(EventStoreError) -> StreamTable.AppendDecision {
        try table.decide(events, to: stream, expecting: expected) { position throws(EventStoreError) in
            try storedEvent(position).event
        }
    }

    func apply(_ events: [EventData], to stream: StreamName, location: UInt64, end: LogPoint) -> AppendResult {
        for _ in events { locations.append(location) }
        return table.apply(events, to: stream)
    }

    func checkControl(
        _ kind: RecordFormat.Kind, stream: StreamName, expected: ExpectedRevision, metadata: StreamMetadata?
    ) throws(EventStoreError) {
        switch kind {
        case .metadata: try table.checkMetadata(metadata ?? StreamMetadata(), for: stream)
        default: try table.checkDelete(stream, expecting: expected)
        }
    }

    func applyControl(_ kind: RecordFormat.Kind, stream: StreamName, metadata: StreamMetadata?, end: LogPoint) {
        switch kind {
        case .metadata: table.applyMetadata(metadata ?? StreamMetadata(), for: stream)
        case .softDelete: table.applyDelete(stream, tombstone: false)
        case .tombstone: table.applyDelete(stream, tombstone: true)
        case .events: break
        }
    }

    func contains(_ id: UUID) -> Bool { table.eventIDs[id] != nil }

    func eventCount(of stream: StreamName) -> UInt64 { UInt64(table.streams[stream]?.positions.count ?? 0) }

    func location(of position: UInt64) -> UInt64 { locations[Int(position)] }

    func streamChunk(
        _ stream: StreamName, from revision: StreamRevision?, direction: ReadDirection, limit: Int
    ) throws(EventStoreError) -> (
        entries: [(revision: UInt64, position: UInt64, location: UInt64)], metadata: StreamMetadata
    ) {
        let (positions, metadata, reversed) = try table.streamPositions(stream, from: revision, direction: direction)
        let indices =
            reversed ? Array(positions.indices.reversed().prefix(limit)) : Array(positions.indices.prefix(limit))
        return (indices.map { (UInt64($0), positions[$0], locations[Int(positions[$0])]) }, metadata)
    }

    func allChunk(
        from position: Position?, direction: ReadDirection, filter: EventFilter, limit: Int
    ) -> [(position: UInt64, location: UInt64)] {
        var chunk: [(position: UInt64, location: UInt64)] = []
        table.allPositions(from: position, direction: direction, filter: filter).visit { position in
            chunk.append((position, locations[Int(position)]))
            return chunk.count < limit
        }
        return chunk
    }

    func info(_ stream: StreamName, now: Date, recordedAt: (UInt64, UInt64) throws -> Date) throws -> StreamInfo? {
        try table.info(stream, now: now) { position in try recordedAt(position, locations[Int(position)]) }
    }

    func listedStreamCount() -> Int { table.listedStreamCount }

    func listStreams(
        after: StreamName?, limit: Int, now: Date, recordedAt: (UInt64, UInt64) throws -> Date
    ) throws -> [StreamInfo] {
        try table.listStreams(after: after, limit: limit, now: now) { position in
            try recordedAt(position, locations[Int(position)])
        }
    }
}
