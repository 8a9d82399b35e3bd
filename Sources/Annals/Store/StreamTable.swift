import Foundation

/// The bookkeeping every store keeps in memory: streams and their revisions, event ids, category and
/// event-type indexes, and the rules that use them (expectations, idempotency, retention, deletion).
///
/// A value type with no I/O, shared by ``InMemoryEventStore`` and the file store: the store decides
/// where events live and supplies them through closures; the table decides what may be written and
/// which positions a read returns. Positions at or above ``durableHead`` are pending (written to the
/// table ahead of a flush) and are never returned by reads.
package struct StreamTable: Sendable {
    package struct Stream: Sendable {
        package var name: StreamName
        /// positions[r] is the `$all` position of revision r.
        package var positions: [UInt64] = []
        package var metadata = StreamMetadata()
        package var isDeleted = false
        package var isTombstoned = false
        package var creationIndex: Int

        package var lastRevision: StreamRevision? {
            positions.isEmpty ? nil : StreamRevision(UInt64(positions.count - 1))
        }

        /// The stream as ``StreamRules`` see it. Setting it keeps `positions`, the truth of the count.
        package var state: StreamState {
            get {
                StreamState(
                    eventCount: UInt64(positions.count), metadata: metadata, isDeleted: isDeleted,
                    isTombstoned: isTombstoned)
            }
            set {
                metadata = newValue.metadata
                isDeleted = newValue.isDeleted
                isTombstoned = newValue.isTombstoned
            }
        }
    }

    /// What an append will do.
    package enum AppendDecision: Sendable {
        /// Write the events at these revisions and positions.
        case write(firstRevision: UInt64, firstPosition: UInt64)
        /// The events are stored already (law 6): answer with the original result.
        case idempotent(AppendResult)
    }

    /// The position the next event gets (pending events included).
    package private(set) var head: UInt64 = 0
    /// Reads return positions below this one only.
    package var durableHead: UInt64 = 0
    package private(set) var streams: [StreamName: Stream] = [:]
    package private(set) var streamOrder: [StreamName] = []
    package private(set) var eventIDs = EventIDTable()
    package private(set) var categories: [String: [UInt64]] = [:]
    package private(set) var eventTypes: [String: [UInt64]] = [:]

    package init() {}

    // MARK: Writing

    /// Decides an append: idempotent retry, or where to write; throws when the append must fail.
    ///
    /// Order of checks: idempotency (law 6), tombstone, expectation (law 2). `storedEvent` loads a stored
    /// (possibly pending) event by position, to compare content on a retry.
    package func decide(
        _ events: [EventData],
        to stream: StreamName,
        expecting expected: ExpectedRevision,
        storedEvent: (UInt64) throws(EventStoreError) -> EventData
    ) throws(EventStoreError) -> AppendDecision {
        if let original = try idempotentResult(for: events, in: stream, storedEvent: storedEvent) {
            return .idempotent(original)
        }
        let firstRevision = try StreamRules.checkAppend(to: stream, state: streams[stream]?.state, expecting: expected)
        return .write(firstRevision: firstRevision, firstPosition: head)
    }

    /// Records an append the caller decided with ``decide(_:to:expecting:storedEvent:)``: the events get
    /// the next positions and revisions.
    @discardableResult
    package mutating func apply(_ events: [EventData], to stream: StreamName) -> AppendResult {
        // Taken out of the dictionary so that appending to its positions does not copy them.
        var record = streams.removeValue(forKey: stream) ?? newStream(stream)
        record.state = StreamRules.appending(events.count, to: record.state)
        let firstRevision = UInt64(record.positions.count)
        let category = stream.category
        let firstPosition = head
        record.positions.append(contentsOf: firstPosition..<(firstPosition + UInt64(events.count)))
        categories[category, default: []].append(contentsOf: firstPosition..<(firstPosition + UInt64(events.count)))
        // Runs of one type (the usual batch) cost one lookup.
        var runStart = 0
        for index in events.indices {
            eventIDs[events[index].id] = firstPosition + UInt64(index)
            if index + 1 == events.count || events[index + 1].type != events[runStart].type {
                eventTypes[events[runStart].type, default: []].append(
                    contentsOf: (firstPosition + UInt64(runStart))...(firstPosition + UInt64(index))
                )
                runStart = index + 1
            }
        }
        head += UInt64(events.count)
        streams[stream] = record
        return AppendResult(
            firstRevision: StreamRevision(firstRevision),
            nextExpectedRevision: StreamRevision(firstRevision + UInt64(events.count - 1)),
            firstPosition: Position(firstPosition),
            lastPosition: Position(head - 1)
        )
    }

    /// Checks that `stream` may take user metadata.
    package func checkMetadata(_ metadata: StreamMetadata, for stream: StreamName) throws(EventStoreError) {
        try StreamRules.checkMetadata(metadata, for: stream, state: streams[stream]?.state)
    }

    package mutating func applyMetadata(_ metadata: StreamMetadata, for stream: StreamName) {
        // Taken out of the dictionary so that appending to its positions does not copy them.
        var record = streams.removeValue(forKey: stream) ?? newStream(stream)
        record.metadata = metadata
        streams[stream] = record
    }

    /// Checks a soft delete or tombstone.
    package func checkDelete(_ stream: StreamName, expecting expected: ExpectedRevision) throws(EventStoreError) {
        try StreamRules.checkDelete(stream, state: streams[stream]?.state, expecting: expected)
    }

    /// Soft-deletes (sets `truncateBefore` past the last revision) or tombstones a stream.
    package mutating func applyDelete(_ stream: StreamName, tombstone: Bool) {
        // Taken out of the dictionary so that appending to its positions does not copy them.
        var record = streams.removeValue(forKey: stream) ?? newStream(stream)
        record.state = StreamRules.deleting(record.state, tombstone: tombstone)
        streams[stream] = record
    }

    // MARK: Restoring

    /// Re-creates a stream, in creation order, from a persisted index (no events yet).
    package mutating func restoreStream(
        _ stream: StreamName,
        metadata: StreamMetadata,
        isDeleted: Bool,
        isTombstoned: Bool
    ) {
        var record = newStream(stream)
        record.metadata = metadata
        record.isDeleted = isDeleted
        record.isTombstoned = isTombstoned
        streams[stream] = record
    }

    /// Re-adds events from a persisted index, in position order: for each, its id, its type (an
    /// index into `typeNames`) and its stream (a creation index). Returns false when an index is out of
    /// range (a damaged file).
    package mutating func restoreEvents(
        ids: [UUID],
        typeIndexes: [UInt32],
        typeNames: [String],
        streamIndexes: [UInt32]
    ) -> Bool {
        guard ids.count == typeIndexes.count, ids.count == streamIndexes.count else { return false }
        var positionsByStream = [[UInt64]](repeating: [], count: streamOrder.count)
        var positionsByType = [[UInt64]](repeating: [], count: typeNames.count)
        let categoryNames = streamOrder.map(\.category)
        var categoryIndex: [String: Int] = [:]
        for name in categoryNames where categoryIndex[name] == nil { categoryIndex[name] = categoryIndex.count }
        let categoryOfStream = categoryNames.map { categoryIndex[$0]! }
        var positionsByCategory = [[UInt64]](repeating: [], count: categoryIndex.count)
        eventIDs.reserveCapacity(eventIDs.count + ids.count)
        for offset in ids.indices {
            let stream = Int(streamIndexes[offset])
            let type = Int(typeIndexes[offset])
            guard stream < positionsByStream.count, type < positionsByType.count else { return false }
            let position = head + UInt64(offset)
            positionsByStream[stream].append(position)
            positionsByType[type].append(position)
            positionsByCategory[categoryOfStream[stream]].append(position)
            eventIDs[ids[offset]] = position
        }
        for (index, positions) in positionsByStream.enumerated() where !positions.isEmpty {
            streams[streamOrder[index]]?.positions.append(contentsOf: positions)
        }
        for (index, positions) in positionsByType.enumerated() where !positions.isEmpty {
            eventTypes[typeNames[index], default: []].append(contentsOf: positions)
        }
        for (name, index) in categoryIndex where !positionsByCategory[index].isEmpty {
            categories[name, default: []].append(contentsOf: positionsByCategory[index])
        }
        head += UInt64(ids.count)
        return true
    }

    private mutating func newStream(_ stream: StreamName) -> Stream {
        streamOrder.append(stream)
        return Stream(name: stream, creationIndex: streamOrder.count - 1)
    }

    private func idempotentResult(
        for events: [EventData],
        in stream: StreamName,
        storedEvent: (UInt64) throws(EventStoreError) -> EventData
    ) throws(EventStoreError) -> AppendResult? {
        guard let first = events.first, let firstPosition = eventIDs[first.id] else {
            if let reused = events.first(where: { eventIDs[$0.id] != nil }) { throw duplicate(reused.id, stream) }
            return nil
        }
        guard let record = streams[stream] else { throw duplicate(first.id, stream) }
        let firstRevision = Self.lowerBound(record.positions, firstPosition)
        guard firstRevision < record.positions.count, record.positions[firstRevision] == firstPosition else {
            throw duplicate(first.id, stream)
        }
        for (offset, event) in events.enumerated() {
            let revision = firstRevision + offset
            guard revision < record.positions.count else { throw duplicate(event.id, stream) }
            let stored = try storedEvent(record.positions[revision])
            guard stored.id == event.id, stored.hasSameContent(as: event) else { throw duplicate(event.id, stream) }
        }
        let lastRevision = firstRevision + events.count - 1
        return AppendResult(
            firstRevision: StreamRevision(UInt64(firstRevision)),
            nextExpectedRevision: StreamRevision(UInt64(lastRevision)),
            firstPosition: Position(record.positions[firstRevision]),
            lastPosition: Position(record.positions[lastRevision])
        )
    }

    private func duplicate(_ id: UUID, _ stream: StreamName) -> EventStoreError {
        StreamRules.duplicate(id, stream)
    }

    // MARK: Reading

    /// The durable revisions of a stream (count, and the first one retention leaves visible); throws for
    /// a tombstoned stream; nil when nothing is visible.
    private func visibleRange(of record: Stream) -> Range<UInt64>? {
        StreamRules.visibleRange(record.state, durableCount: durableCount(record))
    }

    /// How many of a stream's revisions are durable.
    private func durableCount(_ record: Stream) -> UInt64 {
        var count = record.positions.count
        while count > 0, record.positions[count - 1] >= durableHead { count -= 1 }
        return UInt64(count)
    }

    /// The positions a stream read may return, in read order, before `maxAge` (which the caller applies
    /// with each event's time). The caller stops once it has `limit` events.
    package func streamPositions(
        _ stream: StreamName,
        from revision: StreamRevision?,
        direction: ReadDirection
    ) throws(EventStoreError) -> (positions: ArraySlice<UInt64>, metadata: StreamMetadata, reversed: Bool) {
        guard let record = streams[stream] else { return ([], StreamMetadata(), false) }
        if record.isTombstoned { throw .streamDeleted(stream) }
        guard let range = visibleRange(of: record) else { return ([], record.metadata, false) }
        switch direction {
        case .forwards:
            let start = max(revision?.value ?? 0, range.lowerBound)
            guard start < range.upperBound else { return ([], record.metadata, false) }
            return (record.positions[Int(start)..<Int(range.upperBound)], record.metadata, false)
        case .backwards:
            let end = min(revision?.value ?? (range.upperBound - 1), range.upperBound - 1)
            guard end >= range.lowerBound else { return ([], record.metadata, true) }
            return (record.positions[Int(range.lowerBound)...Int(end)], record.metadata, true)
        }
    }

    /// Candidate positions for a `$all` read, in read order. With a category or event-type filter they
    /// come from an index; the caller still applies `filter.matches` to each event it loads.
    package func allPositions(
        from position: Position?,
        direction: ReadDirection,
        filter: EventFilter
    ) -> PositionCandidates {
        guard durableHead > 0 else { return .range(0..<0, reversed: false) }
        var index: [UInt64]? = nil
        if let category = filter.category {
            index = categories[category] ?? []
        }
        if let types = filter.eventTypes {
            let typed = Self.merge(types.map { eventTypes[$0] ?? [] })
            if index == nil || typed.count < index!.count { index = typed }
        }
        switch direction {
        case .forwards:
            let start = position?.value ?? 0
            guard start < durableHead else { return .range(0..<0, reversed: false) }
            if let index {
                let low = Self.lowerBound(index, start)
                let high = Self.lowerBound(index, durableHead)
                return .list(index[low..<high], reversed: false)
            }
            return .range(start..<durableHead, reversed: false)
        case .backwards:
            let end = min(position?.value ?? (durableHead - 1), durableHead - 1)
            if let index {
                let high = Self.lowerBound(index, end + 1)
                return .list(index[0..<high], reversed: true)
            }
            return .range(0..<(end + 1), reversed: true)
        }
    }

    package enum PositionCandidates: Sendable {
        case range(Range<UInt64>, reversed: Bool)
        case list(ArraySlice<UInt64>, reversed: Bool)

        /// Calls `body` with each candidate in read order until it returns false.
        package func visit(_ body: (UInt64) throws -> Bool) rethrows {
            switch self {
            case .range(let range, let reversed):
                if reversed {
                    for position in range.reversed() where try !body(position) { return }
                } else {
                    for position in range where try !body(position) { return }
                }
            case .list(let list, let reversed):
                if reversed {
                    for position in list.reversed() where try !body(position) { return }
                } else {
                    for position in list where try !body(position) { return }
                }
            }
        }
    }

    /// What the table knows of a stream; `recordedAt` gives an event's time, for `maxAge`.
    package func info(_ stream: StreamName, now: Date, recordedAt: (UInt64) throws -> Date) rethrows -> StreamInfo? {
        guard let record = streams[stream], isDurable(record) else { return nil }
        return try info(of: record, now: now, recordedAt: recordedAt)
    }

    private func info(of record: Stream, now: Date, recordedAt: (UInt64) throws -> Date) rethrows -> StreamInfo {
        try StreamRules.info(record.name, state: record.state, durableCount: durableCount(record), now: now) {
            try recordedAt(record.positions[Int($0)])
        }
    }

    /// Whether a stream exists as far as readers know (law 5).
    private func isDurable(_ record: Stream) -> Bool {
        StreamRules.isDurable(record.state, firstPosition: record.positions.first, durableHead: durableHead)
    }

    /// How many streams ``listStreams(after:limit:now:recordedAt:)`` lists, without listing them. Only
    /// streams created since the durable head can be still to come, and those are last in creation
    /// order: the walk stops at the first stream whose first event is durable.
    package var listedStreamCount: Int {
        var count = streamOrder.count
        for name in streamOrder.reversed() {
            guard let record = streams[name] else {
                count -= 1
                continue
            }
            if let first = record.positions.first, first < durableHead { break }
            if !isDurable(record) { count -= 1 }
        }
        return count
    }

    /// Streams in creation order after `after`.
    package func listStreams(
        after: StreamName?,
        limit: Int,
        now: Date,
        recordedAt: (UInt64) throws -> Date
    ) rethrows -> [StreamInfo] {
        var index = 0
        if let after {
            guard let record = streams[after] else { return [] }
            index = record.creationIndex + 1
        }
        var result: [StreamInfo] = []
        while index < streamOrder.count, result.count < limit {
            if let record = streams[streamOrder[index]], isDurable(record) {
                result.append(try info(of: record, now: now, recordedAt: recordedAt))
            }
            index += 1
        }
        return result
    }

    // MARK: Helpers

    /// The first index in sorted `values` whose value is at least `target`.
    static func lowerBound(_ values: [UInt64], _ target: UInt64) -> Int {
        var low = 0
        var high = values.count
        while low < high {
            let mid = (low + high) / 2
            if values[mid] < target { low = mid + 1 } else { high = mid }
        }
        return low
    }

    /// Merges sorted, disjoint position lists.
    static func merge(_ lists: [[UInt64]]) -> [UInt64] {
        let nonEmpty = lists.filter { !$0.isEmpty }
        if nonEmpty.count <= 1 { return nonEmpty.first ?? [] }
        return nonEmpty.joined().sorted()
    }
}
