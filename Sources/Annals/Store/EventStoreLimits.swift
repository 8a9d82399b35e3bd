import Foundation

/// Size and count limits, enforced before anything is written (law 9).
public struct EventStoreLimits: Sendable, Hashable {
    /// The largest configurable event size: 16 MiB.
    public static let maximumEventSize = 16 * 1024 * 1024

    /// The largest event, in bytes of type + data + metadata. Default 1 MiB, at most 16 MiB.
    public var maxEventSize: Int
    /// The most events in one append. Default 10,000.
    public var maxEventsPerAppend: Int
    /// The most bytes (type + data + metadata, summed) in one append. Default 16 MiB.
    public var maxAppendSize: Int

    /// Limits with these values; by default 1 MiB per event, 10,000 events and 16 MiB per append. Stores
    /// check them with ``validate()`` when they open.
    public init(
        maxEventSize: Int = 1024 * 1024,
        maxEventsPerAppend: Int = 10_000,
        maxAppendSize: Int = 16 * 1024 * 1024
    ) {
        self.maxEventSize = maxEventSize
        self.maxEventsPerAppend = maxEventsPerAppend
        self.maxAppendSize = maxAppendSize
    }

    /// Checks that the limits themselves are sane.
    public func validate() throws(EventStoreError) {
        guard maxEventSize > 0, maxEventSize <= Self.maximumEventSize else {
            throw EventStoreError(.invalidArgument, "maxEventSize must be 1 byte to 16 MiB; it is \(maxEventSize).")
        }
        guard maxEventsPerAppend > 0 else {
            throw EventStoreError(.invalidArgument, "maxEventsPerAppend must be positive.")
        }
        guard maxAppendSize > 0 else {
            throw EventStoreError(.invalidArgument, "maxAppendSize must be positive.")
        }
    }

    /// Checks a batch against the limits and the event rules. Throws before anything is written.
    public func check(_ events: [EventData], stream: StreamName) throws(EventStoreError) {
        if stream.isSystem {
            throw EventStoreError(
                .invalidStreamName,
                "Stream names starting with '$' are reserved for the system.",
                stream: stream
            )
        }
        guard !events.isEmpty else {
            throw EventStoreError(.invalidEvent, "An append must hold at least one event.", stream: stream)
        }
        guard events.count <= maxEventsPerAppend else {
            throw EventStoreError(
                .limitExceeded,
                "An append may hold at most \(maxEventsPerAppend) events; this one has \(events.count).",
                stream: stream
            )
        }
        var total = 0
        var ids = Set<UUID>()
        ids.reserveCapacity(events.count)
        for event in events {
            try validateEventType(event.type)
            let size = event.byteCount
            guard size <= maxEventSize else {
                throw EventStoreError(
                    .limitExceeded,
                    "Event \(event.id) is \(size) bytes; the limit is \(maxEventSize).",
                    stream: stream,
                    eventID: event.id
                )
            }
            let (sum, overflow) = total.addingReportingOverflow(size)
            total = sum
            guard !overflow, total <= maxAppendSize else {
                throw EventStoreError(
                    .limitExceeded,
                    "The append holds more than \(maxAppendSize) bytes.",
                    stream: stream
                )
            }
            guard ids.insert(event.id).inserted else {
                throw EventStoreError(
                    .duplicateEventID,
                    "Event id \(event.id) appears twice in one append.",
                    stream: stream,
                    eventID: event.id
                )
            }
        }
    }
}
