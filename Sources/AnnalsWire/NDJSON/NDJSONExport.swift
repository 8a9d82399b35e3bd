import Annals

/// What ``NDJSONExport/export(from:filter:progress:write:)`` wrote.
public struct ExportReport: Sendable, Hashable {
    /// The events written, one line each.
    public var events: UInt64
    /// The streams whose state was written (a `streamState` line each): those with metadata, a soft
    /// delete or a tombstone.
    public var streams: UInt64

    /// A report of `events` events and `streams` stream states.
    public init(events: UInt64 = 0, streams: UInt64 = 0) {
        self.events = events
        self.streams = streams
    }
}

/// A store as NDJSON: the format of `annals export`, which ``NDJSONImporter`` (and `annals import`)
/// reads back into an empty store.
///
/// First every event in position order, one per line, in the HTTP API's JSON (`id`, `stream`,
/// `revision`, `position`, `type`, `data`, `metadata`, `recordedAt`; the lines `GET /all` sends as
/// NDJSON). Then one line per stream that has metadata, a soft delete or a tombstone, in the order
/// ``Annals/EventStore/listStreams(after:limit:)`` lists them:
/// `{"streamState": <the stream's information as GET /streams/{stream}/metadata answers it>}`.
public enum NDJSONExport {
    /// Events read from the store at a time.
    static let eventPage = 1_024
    /// Streams listed at a time.
    static let streamPage = 1_000

    /// Writes `store` as NDJSON through `write`, a page at a time.
    ///
    /// Every call of `write` gets whole lines, each ended by LF. The export reads the store as it goes:
    /// events appended meanwhile may or may not be in it, so export a store nothing writes to.
    ///
    /// - Parameters:
    ///   - store: the store to read.
    ///   - filter: only these events, and only the states of the streams that its category and
    ///     stream prefix select (its event types apply to events only). An export that leaves events
    ///     out cannot be imported: ``NDJSONImporter`` puts every event at the position it had.
    ///   - progress: called after each page of events with the number of events written so far.
    ///   - write: takes the bytes of each page; an error it throws ends the export.
    /// - Returns: how many events and stream states were written.
    /// - Throws: the store's errors, and `write`'s.
    public static func export(
        from store: any EventStore,
        filter: EventFilter = .all,
        progress: (UInt64) -> Void = { _ in },
        write: ([UInt8]) async throws -> Void
    ) async throws -> ExportReport {
        var report = ExportReport()
        var next: Position?
        while true {
            let page = try await store.readAll(from: next, direction: .forwards, filter: filter, limit: eventPage)
            var bytes: [UInt8] = []
            for event in page {
                bytes.append(contentsOf: WireFormat.encode(event))
                bytes.append(0x0A)
            }
            if !bytes.isEmpty {
                try await write(bytes)
                report.events += UInt64(page.count)
                progress(report.events)
            }
            guard page.count == eventPage, let last = page.last?.position.next else { break }
            next = last
        }
        // The filter without its event types: it selects streams by name.
        let streams = EventFilter(category: filter.category, streamPrefix: filter.streamPrefix)
        var after: StreamName?
        while true {
            let page = try await store.listStreams(after: after, limit: streamPage)
            var bytes: [UInt8] = []
            for info in page where info.isDeleted || info.isTombstoned || info.metadata != StreamMetadata() {
                guard streams.matches(type: "", stream: info.stream) else { continue }
                var writer = JSONWriter()
                writer.beginObject()
                writer.key("streamState")
                WireFormat.write(info, into: &writer)
                writer.endObject()
                bytes.append(contentsOf: writer.bytes)
                bytes.append(0x0A)
                report.streams += 1
            }
            if !bytes.isEmpty { try await write(bytes) }
            guard page.count == streamPage, let last = page.last else { break }
            after = last.stream
        }
        return report
    }
}
