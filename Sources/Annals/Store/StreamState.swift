import Foundation

/// What the store's rules need to know about one stream, whatever keeps it: how many revisions it
/// has, its metadata, and whether it is soft-deleted or tombstoned.
///
/// ``StreamTable`` (the in-memory store's index) and the file store's on-disk index both keep this
/// value per stream and call the same ``StreamRules`` with it, so the two cannot drift apart on an
/// expectation, a tombstone, retention or what a reader may see.
package struct StreamState: Sendable, Equatable {
    /// Revisions written, pending ones (above the durable head) included.
    package var eventCount: UInt64
    package var metadata: StreamMetadata
    package var isDeleted: Bool
    package var isTombstoned: Bool

    package init(
        eventCount: UInt64 = 0,
        metadata: StreamMetadata = StreamMetadata(),
        isDeleted: Bool = false,
        isTombstoned: Bool = false
    ) {
        self.eventCount = eventCount
        self.metadata = metadata
        self.isDeleted = isDeleted
        self.isTombstoned = isTombstoned
    }

    package var lastRevision: StreamRevision? { eventCount == 0 ? nil : StreamRevision(eventCount - 1) }
}

/// The rules of `EventStore`'s laws that depend on a stream's state alone, as functions over
/// ``StreamState``. `nil` state means the log has never named the stream.
package enum StreamRules {
    /// Checks an append that is not a retry: tombstone first, then the expectation (law 2). Returns the
    /// first revision the events get.
    package static func checkAppend(
        to stream: StreamName,
        state: StreamState?,
        expecting expected: ExpectedRevision
    ) throws(EventStoreError) -> UInt64 {
        if state?.isTombstoned == true { throw .streamDeleted(stream) }
        let last = state?.lastRevision
        guard expected.isSatisfied(byLastRevision: last, isSoftDeleted: state?.isDeleted ?? false) else {
            throw .wrongExpectedRevision(stream: stream, expected: expected, actual: last)
        }
        return state?.eventCount ?? 0
    }

    /// The state after `count` events are appended: an append revives a soft-deleted stream.
    package static func appending(_ count: Int, to state: StreamState?) -> StreamState {
        var next = state ?? StreamState()
        next.isDeleted = false
        next.eventCount += UInt64(count)
        return next
    }

    /// Checks that `stream` may take user metadata.
    package static func checkMetadata(
        _ metadata: StreamMetadata,
        for stream: StreamName,
        state: StreamState?
    ) throws(EventStoreError) {
        if stream.isSystem {
            throw EventStoreError(.invalidStreamName, "System streams have no user metadata.", stream: stream)
        }
        try metadata.validate()
        if state?.isTombstoned == true { throw .streamDeleted(stream) }
    }

    /// Checks a soft delete or tombstone.
    package static func checkDelete(
        _ stream: StreamName,
        state: StreamState?,
        expecting expected: ExpectedRevision
    ) throws(EventStoreError) {
        if stream.isSystem {
            throw EventStoreError(.invalidStreamName, "System streams cannot be deleted.", stream: stream)
        }
        if state?.isTombstoned == true { throw .streamDeleted(stream) }
        guard expected.isSatisfied(byLastRevision: state?.lastRevision, isSoftDeleted: state?.isDeleted ?? false)
        else {
            throw .wrongExpectedRevision(stream: stream, expected: expected, actual: state?.lastRevision)
        }
    }

    /// The state after a soft delete (`truncateBefore` past the last revision) or a tombstone.
    package static func deleting(_ state: StreamState?, tombstone: Bool) -> StreamState {
        var next = state ?? StreamState()
        if tombstone {
            next.isTombstoned = true
        } else if next.eventCount > 0 {
            next.isDeleted = true
            next.metadata.truncateBefore = StreamRevision(next.eventCount)
        }
        return next
    }

    /// The revisions a reader may see, given how many are durable, before `maxAge`; nil when none.
    package static func visibleRange(_ state: StreamState, durableCount: UInt64) -> Range<UInt64>? {
        if state.isDeleted { return nil }
        let first = state.metadata.firstVisibleRevision(eventCount: durableCount)
        return first < durableCount ? first..<durableCount : nil
    }

    /// Whether a stream exists as far as readers know: a stream whose only events are still pending
    /// (its first position at or above the durable head) and that has no metadata or deletion of its
    /// own is not shown (law 5).
    package static func isDurable(_ state: StreamState, firstPosition: UInt64?, durableHead: UInt64) -> Bool {
        guard let firstPosition, firstPosition >= durableHead else { return true }
        return state.isDeleted || state.isTombstoned || state.metadata != StreamMetadata()
    }

    /// What a reader learns of a stream. `recordedAt` gives the time of a revision, for `maxAge`.
    package static func info(
        _ stream: StreamName,
        state: StreamState,
        durableCount: UInt64,
        now: Date,
        recordedAt: (UInt64) throws -> Date
    ) rethrows -> StreamInfo {
        var visible: UInt64 = 0
        if !state.isTombstoned, let range = visibleRange(state, durableCount: durableCount) {
            if state.metadata.maxAge == nil {
                visible = UInt64(range.count)
            } else {
                for revision in range
                where state.metadata.isWithinMaxAge(recordedAt: try recordedAt(revision), now: now) {
                    visible += 1
                }
            }
        }
        return StreamInfo(
            stream: stream,
            lastRevision: durableCount == 0 ? nil : StreamRevision(durableCount - 1),
            visibleEventCount: visible,
            isDeleted: state.isDeleted,
            isTombstoned: state.isTombstoned,
            metadata: state.metadata
        )
    }

    /// The error for an event id that is stored already with other content or elsewhere (law 6).
    package static func duplicate(_ id: UUID, _ stream: StreamName) -> EventStoreError {
        EventStoreError(
            .duplicateEventID,
            "Event id \(id) is stored already with other content, at another place or in another stream.",
            stream: stream,
            eventID: id
        )
    }
}
