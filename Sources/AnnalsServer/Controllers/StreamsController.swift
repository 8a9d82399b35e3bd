import Annals
import AnnalsWire
import HTTPTypes
import Hummingbird

/// The stream routes: list, append, read, delete, metadata; and the reads across streams
/// (`/categories/{category}`, `/all`).
struct StreamsController<Context: AnnalsRequestContext>: AnnalsController {
    let environment: AnnalsEnvironment

    /// The most streams one `GET /streams` looks at when a prefix or a token's scopes filter them: past
    /// it the page ends early, with `next` to go on from.
    static var listingScanBudget: Int { 65_536 }

    var handlers: [RouteSpec.ID: RouteHandler<Context>] {
        [
            .listStreams: { _, context in try await listStreams(context.annals) },
            .appendToStream: { request, context in try await append(request, context.annals) },
            .readStream: { request, context in try await readStream(request, context.annals) },
            .deleteStream: { request, context in try await delete(request, context.annals) },
            .getStreamInfo: { _, context in try await streamInfo(try context.annals.requireStream()) },
            .setStreamMetadata: { request, context in try await setMetadata(request, context.annals) },
            .readCategory: { request, context in try await readCategory(request, context.annals) },
            .readAll: { request, context in
                try await readLog(request, context.annals, try LogReadQuery(parsing: context.annals.query))
            },
        ]
    }

    private var store: any EventStore { environment.store }
    private var configuration: ServerConfiguration { environment.configuration }

    private func append(_ request: Request, _ annals: AnnalsContextStorage) async throws -> Response {
        let stream = try annals.requireStream()
        let expected = try AnnalsEnvironment.expectedRevision(request)
        try AnnalsEnvironment.requireJSON(request)
        let body = try await environment.collect(request)
        var events = try WireFormat.decodeEvents(body, maxDepth: configuration.maximumJSONDepth)
        // The request's trace context goes into the events, so their handlers continue its trace.
        let trace = TraceHeaders.fields(of: request.headers)
        if !trace.isEmpty {
            for index in events.indices {
                events[index].metadata = TraceHeaders.merge(trace, into: events[index].metadata)
            }
        }
        let started = ContinuousClock.now
        let result = try await store.append(events, to: stream, expecting: expected)
        let elapsed = ContinuousClock.now - started
        environment.metrics.append(
            events: events,
            seconds: Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18)
        var headers = HTTPFields()
        headers[.location] = "/streams/\(WireFormat.percentEncode(stream.rawValue))"
        return AnnalsEnvironment.json(WireFormat.encode(result), status: .created, headers: headers)
    }

    private func delete(_ request: Request, _ annals: AnnalsContextStorage) async throws -> Response {
        let stream = try annals.requireStream()
        let expected = try AnnalsEnvironment.expectedRevision(request)
        switch annals.query["tombstone"] {
        case nil, "false": try await store.delete(stream, expecting: expected)
        case "true": try await store.tombstone(stream, expecting: expected)
        case let other?: throw EventStoreError(.invalidArgument, "'tombstone' is true or false; got '\(other)'.")
        }
        return Response(status: .noContent)
    }

    private func readStream(_ request: Request, _ annals: AnnalsContextStorage) async throws -> Response {
        let stream = try annals.requireStream()
        let principal = try annals.requirePrincipal()
        let query = try StreamReadQuery(parsing: annals.query)
        let (from, direction) = (query.from, query.direction)
        let following: @Sendable (RecordedEvent) -> StreamRevision? = {
            direction == .forwards ? $0.revision.next : $0.revision.previous
        }
        if AnnalsEnvironment.wantsNDJSON(request) {
            let limit = query.limit ?? .max
            // A stream that cannot be read (deleted, never written) answers before any byte is sent.
            _ = try await store.read(stream, from: from, direction: direction, limit: 0)
            return try environment.ndjson(from: from, limit: limit, principal: principal, following: following) {
                [store] next, want in
                try await store.read(stream, from: next, direction: direction, limit: want)
            }
        }
        let limit = try pageLimit(query.limit)
        let events = try await store.read(stream, from: from, direction: direction, limit: limit)
        let next = events.count == limit && limit > 0 ? events.last.flatMap(following)?.value : nil
        return AnnalsEnvironment.json(AnnalsEnvironment.page(events, next: next))
    }

    private func readCategory(_ request: Request, _ annals: AnnalsContextStorage) async throws -> Response {
        guard let category = annals.category else { throw EventStoreError(.routeNotFound, "No category.") }
        let limit = try annals.requirePrincipal().categoryAccess(category)
        var query = try LogReadQuery(parsing: annals.query)
        query.filter.category = category
        if !limit.isEmpty { query.filter.streamPrefix = limit }
        return try await readLog(request, annals, query)
    }

    /// A read of `$all` (or a category, as a filter), as a JSON page or NDJSON.
    private func readLog(_ request: Request, _ annals: AnnalsContextStorage, _ query: LogReadQuery) async throws
        -> Response
    {
        let principal = try annals.requirePrincipal()
        let (from, direction, filter) = (query.from, query.direction, query.filter)
        let following: @Sendable (RecordedEvent) -> Position? = {
            direction == .forwards ? $0.position.next : $0.position.previous
        }
        if AnnalsEnvironment.wantsNDJSON(request) {
            let limit = query.limit ?? .max
            return try environment.ndjson(from: from, limit: limit, principal: principal, following: following) {
                [store] next, want in
                try await store.readAll(from: next, direction: direction, filter: filter, limit: want)
            }
        }
        let limit = try pageLimit(query.limit)
        let events = try await store.readAll(from: from, direction: direction, filter: filter, limit: limit)
        let next = events.count == limit && limit > 0 ? events.last.flatMap(following)?.value : nil
        return AnnalsEnvironment.json(AnnalsEnvironment.page(events, next: next))
    }

    private func listStreams(_ annals: AnnalsContextStorage) async throws -> Response {
        let principal = try annals.requirePrincipal()
        let query = try StreamListQuery(parsing: annals.query)
        let (after, prefix) = (query.after, query.prefix)
        let limit = try pageLimit(query.limit)
        var visible: [StreamInfo] = []
        var cursor = after
        var exhausted = false
        var scanned = 0
        // Streams are listed in the order they were made, so a prefix or a token's scopes filter them
        // as they pass: read on until the page is full, the list ends, or the scan budget is spent.
        while visible.count < limit, !exhausted, scanned < Self.listingScanBudget {
            let want = max(limit, prefix == nil ? 0 : 1_024)
            let page = try await store.listStreams(after: cursor, limit: want)
            exhausted = page.count < want
            for info in page {
                cursor = info.stream
                scanned += 1
                let inScope =
                    principal.role == .admin || (!info.stream.isSystem && principal.covers(info.stream))
                if inScope, prefix.map({ info.stream.rawValue.hasPrefix($0) }) ?? true {
                    visible.append(info)
                    if visible.count == limit { break }
                }
            }
            if page.isEmpty { break }
        }
        // Go on from the last stream looked at, unless the list ended short of a full page (or nothing
        // was looked at).
        let goesOn = (!exhausted || visible.count == limit) && cursor != after
        let next = goesOn ? cursor : nil
        return AnnalsEnvironment.json(
            AnnalsEnvironment.page("streams", visible, write: WireFormat.write) { writer in
                if let next { writer.string(next.rawValue) } else { writer.null() }
            })
    }

    /// A JSON page's size: the query's limit, at most the configured maximum, or the default page size.
    private func pageLimit(_ limit: Int?) throws(EventStoreError) -> Int {
        guard let limit else { return configuration.defaultPageSize }
        guard limit <= configuration.maximumPageSize else {
            throw EventStoreError(
                .invalidArgument,
                "'limit' is at most \(configuration.maximumPageSize) for a JSON page; ask for NDJSON for more.")
        }
        return limit
    }

    private func streamInfo(_ stream: StreamName) async throws -> Response {
        guard let info = try await store.streamInfo(stream) else {
            throw EventStoreError(.notFound, "Stream '\(stream)' has never been written.", stream: stream)
        }
        var writer = JSONWriter()
        WireFormat.write(info, into: &writer)
        return AnnalsEnvironment.json(writer.bytes)
    }

    private func setMetadata(_ request: Request, _ annals: AnnalsContextStorage) async throws -> Response {
        let stream = try annals.requireStream()
        try AnnalsEnvironment.requireJSON(request)
        let body = try await environment.collect(request)
        _ = try JSONNode.parse(body, maxDepth: configuration.maximumJSONDepth)
        let metadata = try WireFormat.decodeMetadata(body)
        try await store.setMetadata(metadata, for: stream)
        return try await streamInfo(stream)
    }
}

extension AnnalsContextStorage {
    /// The `{stream}` the middleware decoded (every route that reaches a stream handler has one).
    func requireStream() throws(EventStoreError) -> StreamName {
        guard let stream else { throw EventStoreError(.routeNotFound, "The route has no {stream}.") }
        return stream
    }

    /// The token the middleware checked (every route behind a role has one).
    func requirePrincipal() throws(EventStoreError) -> TokenRecord {
        guard let principal else { throw EventStoreError(.unauthorized, "This route needs a bearer token.") }
        return principal
    }
}
