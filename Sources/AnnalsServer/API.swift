import Annals
import AnnalsWire
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import NIOHTTP1
import Synchronization

/// The HTTP status for each error code (``WireError/statuses``).
func httpStatus(for code: EventStoreError.Code) -> HTTPResponse.Status {
    HTTPResponse.Status(code: WireError.status(for: code))
}

extension Logger {
    /// What a client may be told of `error`. A server-side failure (a 5xx code) keeps its code and gets
    /// a stable message (``WireError/publicError(_:)``); its own words (a PostgreSQL message, a path, an
    /// errno) go to this log at `warning`. Any other error is the client's to read, unchanged.
    func publicError(_ error: EventStoreError, metadata: Logger.Metadata = [:]) -> EventStoreError {
        let visible = WireError.publicError(error)
        if visible != error {
            var metadata = metadata
            metadata["error"] = "\(error.description)"
            warning("store failure", metadata: metadata)
        }
        return visible
    }
}

/// A request whose body framing is broken: answered with `error` (400), then the connection closes.
struct MalformedFraming: Error {
    let error: EventStoreError
}

/// Everything a request handler needs: the store, the tokens, the limits, the counters.
final class API: Sendable {
    let store: any EventStore
    let tokens: TokenCache
    let configuration: ServerConfiguration
    let metrics = ServerMetrics()
    let shutdown = ShutdownSignal()
    let bodyDeadlines = BodyDeadlines()
    let logger: Logger
    private let subscriptionsByToken = TokenSlots()
    private let streamingReadsByToken = TokenSlots()

    init(store: any EventStore, tokens: any TokenRegistry, configuration: ServerConfiguration, logger: Logger) {
        self.store = store
        self.tokens = TokenCache(registry: tokens)
        self.configuration = configuration
        self.logger = logger
    }

    // MARK: Dispatch

    func respond(to request: Request) async -> Response {
        let started = ContinuousClock.now
        var route = "unknown"
        var allowedMethods: String?
        var response: Response
        var closesConnection = false
        do {
            response = try await dispatch(request, route: &route, allowedMethods: &allowedMethods)
        } catch {
            let failure: EventStoreError
            if let error = error as? EventStoreError {
                failure = logger.publicError(error, metadata: ["path": "\(request.uri.path)"])
            } else if let error = error as? MalformedFraming {
                // The connection's bytes cannot be trusted past this point: answer, then close.
                failure = error.error
                closesConnection = true
            } else {
                logger.error("request failed", metadata: ["path": "\(request.uri.path)", "error": "\(error)"])
                failure = EventStoreError(.unavailable, "The request failed inside the server; see its log.")
            }
            metrics.error(failure.code)
            response = Self.error(failure)
            if let allowedMethods { response.headers[.allow] = allowedMethods }
        }
        // Shutting down: the client must not send another request on this connection. One accepted
        // just as the server began to quiesce would otherwise stay open, idle, until the idle timeout
        // (seen once: a SIGTERM that took 30 s while a client reconnected its subscription).
        if shutdown.isSet || closesConnection || response.status == .requestTimeout {
            response.headers[.connection] = "close"
        }
        metrics.request(method: request.method.rawValue, route: route, status: response.status.code)
        // One line per request at debug (a library leaves info to the application; `/health` polls
        // would flood it), answers of 5xx at warning. Only the path: a query may carry an access token.
        // (swift-log builds the metadata only when the level is on.)
        logger.log(
            level: response.status.code >= 500 ? .warning : .debug, "request",
            metadata: [
                "method": "\(request.method.rawValue)", "path": "\(request.uri.path)", "route": "\(route)",
                "status": "\(response.status.code)",
                "ms": "\((ContinuousClock.now - started) / .milliseconds(1))",
            ])
        return response
    }

    private func dispatch(_ request: Request, route: inout String, allowedMethods: inout String?) async throws
        -> Response
    {
        // HTTP/1.1 requires Host (RFC 9112 §3.2); the conversion to HTTPTypes moves it to `authority`.
        guard request.head.authority != nil else {
            throw EventStoreError(.invalidArgument, "The request has no Host header; HTTP/1.1 requires one.")
        }
        // The admin page and its files ignore their query, whatever it holds (a repeated or badly escaped
        // parameter too).
        let path = request.uri.path
        let ignoresQuery = RouteTable.queryIgnoringPaths.contains(path)
        let target = try RequestTarget(path: path, query: ignoresQuery ? nil : request.uri.query)
        let method = request.method
        let segments = target.segments

        // The methods of the route pattern just matched (`route`) come from the route table, so `405` and
        // `Allow` cannot drift from it.
        func methodAllowed() throws(EventStoreError) {
            let allowed = RouteTable.methods(forPath: route)
            guard !allowed.isEmpty else { throw EventStoreError(.routeNotFound, "No route for \(request.uri.path).") }
            guard allowed.contains(method) else {
                let names = allowed.map(\.rawValue).joined(separator: ", ")
                allowedMethods = names
                throw EventStoreError(.methodNotAllowed, "\(method.rawValue) is not allowed here; use \(names).")
            }
        }

        switch segments.first {
        case nil:
            route = "/"
            try methodAllowed()
            return AdminPage.response()
        case "admin":
            guard segments.count == 2, segments[1] == "console.js" || segments[1] == "console.css" else { break }
            route = "/admin/" + segments[1]
            try methodAllowed()
            return segments[1] == "console.js" ? AdminPage.scriptResponse() : AdminPage.styleResponse()
        case "health":
            guard segments.count == 1 else { break }
            route = "/health"
            try methodAllowed()
            try target.allowOnly([])
            return try await health()
        case "metrics":
            guard segments.count == 1 else { break }
            route = "/metrics"
            try methodAllowed()
            try target.allowOnly([])
            try await authorize(request, target, .admin)
            let head = try? await store.headPosition().value
            return Self.text(metrics.render(headPosition: head), contentType: "text/plain; version=0.0.4")
        case "head":
            guard segments.count == 1 else { break }
            route = "/head"
            try methodAllowed()
            try target.allowOnly([])
            try await authorize(request, target, .reader)
            var writer = JSONWriter()
            writer.beginObject()
            writer.member("headPosition", try await store.headPosition().value)
            writer.endObject()
            return Self.json(writer.bytes)
        case "stats":
            guard segments.count == 1 else { break }
            route = "/stats"
            try methodAllowed()
            try target.allowOnly([])
            try await authorize(request, target, .admin)
            return try await stats()
        case "streams":
            if segments.count == 1 {
                route = "/streams"
                try methodAllowed()
                let principal = try await authorize(request, target, .reader)
                return try await listStreams(target, principal)
            }
            let stream = try Self.streamName(segments[1])
            if segments.count == 2 {
                route = "/streams/{stream}"
                try methodAllowed()
                switch method {
                case .post:
                    try await authorize(request, target, .writer, stream: stream)
                    return try await append(request, target, stream)
                case .delete:
                    try await authorize(request, target, .writer, stream: stream)
                    return try await delete(request, target, stream)
                default:
                    let principal = try await authorize(request, target, .reader, stream: stream)
                    return try await readStream(request, target, stream, principal)
                }
            }
            if segments.count == 3, segments[2] == "metadata" {
                route = "/streams/{stream}/metadata"
                try methodAllowed()
                try target.allowOnly([])
                if method == .put {
                    try await authorize(request, target, .admin, stream: stream)
                    return try await putMetadata(request, stream)
                }
                try await authorize(request, target, .reader, stream: stream)
                return try await getMetadata(stream)
            }
        case "categories":
            guard segments.count == 2 else { break }
            route = "/categories/{category}"
            try methodAllowed()
            let category = try Self.category(segments[1])
            let principal = try await authorize(request, target, category.hasPrefix("$") ? .admin : .reader)
            return try await readCategory(request, target, category, principal)
        case "all":
            guard segments.count == 1 else { break }
            route = "/all"
            try methodAllowed()
            let principal = try await authorize(request, target, .admin)
            return try await readAll(request, target, principal)
        case "subscribe":
            switch (segments.count, segments.dropFirst().first) {
            case (2, "all"): route = "/subscribe/all"
            case (3, "streams"): route = "/subscribe/streams/{stream}"
            case (3, "categories"): route = "/subscribe/categories/{category}"
            default: throw EventStoreError(.routeNotFound, "No route for \(request.uri.path).")
            }
            try methodAllowed()
            let principal: TokenRecord
            let subscription: SubscriptionTarget
            switch (segments.count, segments.dropFirst().first) {
            case (2, "all"):
                principal = try await authorize(request, target, .admin)
                subscription = .allMatching(try target.filter())
            case (3, "streams"):
                let stream = try Self.streamName(segments[2])
                principal = try await authorize(request, target, .reader, stream: stream)
                subscription = .stream(stream)
            case (3, "categories"):
                let category = try Self.category(segments[2])
                principal = try await authorize(request, target, category.hasPrefix("$") ? .admin : .reader)
                let limit = try principal.categoryAccess(category)
                var filter = EventFilter(category: category)
                filter.eventTypes = try target.filter().eventTypes
                if !limit.isEmpty { filter.streamPrefix = limit }
                subscription = filter.eventTypes == nil && limit.isEmpty ? .category(category) : .allMatching(filter)
            default:
                throw EventStoreError(.routeNotFound, "No route for \(request.uri.path).")
            }
            return try await subscribe(request, target, subscription, principal)
        case "tokens":
            route = segments.count == 1 ? "/tokens" : "/tokens/{id}"
            try target.allowOnly([])
            try await authorize(request, target, .admin)
            if segments.count == 1 {
                try methodAllowed()
                return method == .post ? try await createToken(request) : try await listTokens()
            }
            if segments.count == 2 {
                try methodAllowed()
                guard try await tokens.registry.revoke(id: segments[1]) else {
                    throw EventStoreError.tokenNotFound(id: segments[1])
                }
                tokens.invalidate()
                return Response(status: .noContent)
            }
        default:
            break
        }
        route = "unknown"
        throw EventStoreError(.routeNotFound, "No route for \(request.uri.path).")
    }

    // MARK: Authorization

    /// Checks the bearer token against the role (and stream) a route needs; returns the token's record.
    @discardableResult
    func authorize(_ request: Request, _ target: RequestTarget, _ role: Role, stream: StreamName? = nil) async throws
        -> TokenRecord
    {
        var token: String?
        if let header = request.headers[.authorization] {
            let parts = header.split(separator: " ", maxSplits: 1)
            guard parts.count == 2, parts[0].lowercased() == "bearer" else {
                throw EventStoreError(.unauthorized, "The Authorization header must be 'Bearer <token>'.")
            }
            token = parts[1].trimmingCharacters(in: .whitespaces)
        } else if request.method == .get, let query = target.query["access_token"] {
            // EventSource cannot send headers: subscriptions (and other reads) may pass the token here.
            token = query
        }
        guard let token, !token.isEmpty else {
            throw EventStoreError(.unauthorized, "This route needs a bearer token (Authorization: Bearer <token>).")
        }
        guard let record = try await tokens.record(for: token) else {
            throw EventStoreError(.unauthorized, "The token is not known (revoked, or never issued here).")
        }
        guard record.role >= role else {
            throw EventStoreError(
                .forbidden, "This route needs the \(role.rawValue) role; the token has \(record.role.rawValue).")
        }
        if let stream {
            if stream.isSystem, record.role != .admin {
                throw EventStoreError(.forbidden, "System streams need the admin role.")
            }
            guard record.covers(stream) else {
                throw EventStoreError(.forbidden, "The token's scopes do not cover stream '\(stream)'.")
            }
        }
        return record
    }

    // MARK: Handlers

    private func health() async throws -> Response {
        do {
            try await store.checkHealth()
            let head = try await store.headPosition()
            return Self.json(HealthReport(status: .ok, headPosition: head).encoded())
        } catch let error as EventStoreError {
            // A failed writer is not healthy, though its reads may still answer.
            let report = HealthReport(
                status: error.code == .storeFailed ? .failed : .unavailable, code: error.code,
                message: logger.publicError(error, metadata: ["path": "/health"]).message)
            return Self.json(report.encoded(), status: .serviceUnavailable)
        }
    }

    private func stats() async throws -> Response {
        let head = try await store.headPosition()
        // The admin page polls this once a second: a count, not a walk through every stream.
        let streams = try await store.streamCount()
        let state = metrics.state.withLock { $0 }
        let statistics = ServerStatistics(
            headPosition: head, streams: streams, appends: state.appends, eventsWritten: state.eventsWritten,
            bytesWritten: state.bytesWritten, liveSubscriptions: state.liveSubscriptions,
            store: String(describing: type(of: store)), version: AnnalsVersion.current)
        return Self.json(statistics.encoded())
    }

    private func append(_ request: Request, _ target: RequestTarget, _ stream: StreamName) async throws -> Response {
        try target.allowOnly([])
        let expected = try Self.expectedRevision(request)
        try Self.requireJSON(request)
        let body = try await collect(request)
        let events = try WireFormat.decodeEvents(body, maxDepth: configuration.maximumJSONDepth)
        let started = ContinuousClock.now
        let result = try await store.append(events, to: stream, expecting: expected)
        let elapsed = ContinuousClock.now - started
        metrics.append(
            events: events,
            seconds: Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18)
        var headers = HTTPFields()
        headers[.location] = "/streams/\(WireFormat.percentEncode(stream.rawValue))"
        return Self.json(WireFormat.encode(result), status: .created, headers: headers)
    }

    private func delete(_ request: Request, _ target: RequestTarget, _ stream: StreamName) async throws -> Response {
        try target.allowOnly(["tombstone"])
        let expected = try Self.expectedRevision(request)
        switch target.query["tombstone"] {
        case nil, "false": try await store.delete(stream, expecting: expected)
        case "true": try await store.tombstone(stream, expecting: expected)
        case let other?: throw EventStoreError(.invalidArgument, "'tombstone' is true or false; got '\(other)'.")
        }
        return Response(status: .noContent)
    }

    private func readStream(
        _ request: Request, _ target: RequestTarget, _ stream: StreamName, _ principal: TokenRecord
    ) async throws -> Response {
        try target.allowOnly(["from", "limit", "direction"])
        let from = try target.integer("from").map { StreamRevision($0) }
        let direction = try target.direction()
        let following: @Sendable (RecordedEvent) -> StreamRevision? = {
            direction == .forwards ? $0.revision.next : $0.revision.previous
        }
        if Self.wantsNDJSON(request) {
            let limit = try target.limit(default: .max, maximum: nil)
            _ = try await store.read(stream, from: from, direction: direction, limit: 0)
            return try ndjson(from: from, limit: limit, principal: principal, following: following) {
                [store] next, want in
                try await store.read(stream, from: next, direction: direction, limit: want)
            }
        }
        let limit = try target.limit(default: configuration.defaultPageSize, maximum: configuration.maximumPageSize)
        let events = try await store.read(stream, from: from, direction: direction, limit: limit)
        let next = events.count == limit && limit > 0 ? events.last.flatMap(following)?.value : nil
        return Self.json(Self.page(events, next: next))
    }

    private func readAll(_ request: Request, _ target: RequestTarget, _ principal: TokenRecord) async throws
        -> Response
    {
        try target.allowOnly(["from", "limit", "direction", "type", "category", "streamPrefix"])
        return try await readLog(request, target, filter: try target.filter(), principal: principal)
    }

    private func readCategory(_ request: Request, _ target: RequestTarget, _ category: String, _ principal: TokenRecord)
        async throws -> Response
    {
        try target.allowOnly(["from", "limit", "direction", "type"])
        let limit = try principal.categoryAccess(category)
        var filter = try target.filter()
        filter.category = category
        if !limit.isEmpty { filter.streamPrefix = limit }
        return try await readLog(request, target, filter: filter, principal: principal)
    }

    /// A read of `$all` (or a category, as a filter), as a JSON page or NDJSON.
    private func readLog(_ request: Request, _ target: RequestTarget, filter: EventFilter, principal: TokenRecord)
        async throws -> Response
    {
        let from = try target.integer("from").map { Position($0) }
        let direction = try target.direction()
        let following: @Sendable (RecordedEvent) -> Position? = {
            direction == .forwards ? $0.position.next : $0.position.previous
        }
        if Self.wantsNDJSON(request) {
            let limit = try target.limit(default: .max, maximum: nil)
            return try ndjson(from: from, limit: limit, principal: principal, following: following) {
                [store] next, want in
                try await store.readAll(from: next, direction: direction, filter: filter, limit: want)
            }
        }
        let limit = try target.limit(default: configuration.defaultPageSize, maximum: configuration.maximumPageSize)
        let events = try await store.readAll(from: from, direction: direction, filter: filter, limit: limit)
        let next = events.count == limit && limit > 0 ? events.last.flatMap(following)?.value : nil
        return Self.json(Self.page(events, next: next))
    }

    private func listStreams(_ target: RequestTarget, _ principal: TokenRecord) async throws -> Response {
        try target.allowOnly(["after", "limit"])
        let after = try target.query["after"].map { text throws(EventStoreError) in
            guard !text.isEmpty else {
                throw EventStoreError(
                    .invalidArgument, "'after' is a stream name from an earlier answer's 'next'; it is empty here.")
            }
            return try StreamName(allowingSystemName: text)
        }
        let limit = try target.limit(default: configuration.defaultPageSize, maximum: configuration.maximumPageSize)
        var visible: [StreamInfo] = []
        var cursor = after
        var exhausted = false
        // A scoped token sees only its streams; keep reading until the page is full or the list ends.
        while visible.count < limit, !exhausted {
            let page = try await store.listStreams(after: cursor, limit: limit)
            exhausted = page.count < limit
            cursor = page.last?.stream
            for info in page where principal.role == .admin || (!info.stream.isSystem && principal.covers(info.stream))
            {
                visible.append(info)
                if visible.count == limit { break }
            }
            if page.isEmpty { break }
        }
        var writer = JSONWriter()
        writer.beginObject()
        writer.key("streams")
        writer.beginArray()
        for info in visible { WireFormat.write(info, into: &writer) }
        writer.endArray()
        writer.key("next")
        if visible.count == limit, let last = visible.last {
            writer.string(last.stream.rawValue)
        } else {
            writer.null()
        }
        writer.endObject()
        return Self.json(writer.bytes)
    }

    private func getMetadata(_ stream: StreamName) async throws -> Response {
        guard let info = try await store.streamInfo(stream) else {
            throw EventStoreError(.notFound, "Stream '\(stream)' has never been written.", stream: stream)
        }
        var writer = JSONWriter()
        WireFormat.write(info, into: &writer)
        return Self.json(writer.bytes)
    }

    private func putMetadata(_ request: Request, _ stream: StreamName) async throws -> Response {
        try Self.requireJSON(request)
        let body = try await collect(request)
        _ = try JSONNode.parse(body, maxDepth: configuration.maximumJSONDepth)
        let metadata = try WireFormat.decodeMetadata(body)
        try await store.setMetadata(metadata, for: stream)
        return try await getMetadata(stream)
    }

    private func createToken(_ request: Request) async throws -> Response {
        try Self.requireJSON(request)
        let body = try await collect(request)
        let created = try await tokens.registry.create(try TokenRequest(decoding: body))
        tokens.invalidate()
        return Self.json(created.encoded(), status: .created)
    }

    private func listTokens() async throws -> Response {
        Self.json(TokenInfo.encodeList(try await tokens.registry.all().map { TokenInfo($0) }))
    }

    // MARK: Subscriptions

    private func subscribe(
        _ request: Request, _ target: RequestTarget, _ subscription: SubscriptionTarget, _ principal: TokenRecord
    ) async throws -> Response {
        try target.allowOnly(["from", "after", "head", "type", "category", "streamPrefix"])
        if case .stream = subscription, target.query["type"] != nil {
            throw EventStoreError(.invalidArgument, "A stream subscription takes no 'type' filter.")
        }
        if target.query["category"] != nil || target.query["streamPrefix"] != nil,
            !request.uri.path.hasSuffix("/subscribe/all")
        {
            throw EventStoreError(.invalidArgument, "'category' and 'streamPrefix' apply to /subscribe/all only.")
        }
        let resumes = request.headers[HTTPField.Name("Last-Event-ID")!] != nil
        var start = try Self.subscriptionStart(request, target, subscription)
        if !resumes, start == .end, let head = try target.integer("head") {
            // "The end as of head H": a client that knows the head when it subscribed gets every event
            // committed after that, however late its connection arrives.
            switch subscription {
            case .stream(let stream):
                start =
                    try await CatchUpSubscriptionSource.lastRevision(of: stream, below: head, in: store, pageSize: 512)
                    .map { .afterRevision(StreamRevision($0)) } ?? .beginning
            case .allMatching, .category:
                start = head == 0 ? .beginning : .afterPosition(Position(head - 1))
            }
        } else if !resumes, target.query["head"] != nil {
            throw EventStoreError(.invalidArgument, "'head' goes with from=end only.")
        }
        if case .stream(let stream) = subscription, try await store.streamInfo(stream)?.isTombstoned == true {
            throw EventStoreError.streamDeleted(stream)
        }
        guard subscriptionsByToken.acquire(principal.id, limit: configuration.subscriptionsPerToken) else {
            throw EventStoreError(
                .tooManySubscriptions,
                "The token holds \(configuration.subscriptionsPerToken) live subscriptions, the most allowed.")
        }
        metrics.subscriptionStarted()
        var headers = HTTPFields()
        headers[.contentType] = "text/event-stream"
        headers[.cacheControl] = "no-cache"
        headers[HTTPField.Name("X-Accel-Buffering")!] = "no"
        let events = store.subscribe(to: subscription, from: start)
        // Released when the body ends, or when it is dropped without running (a client gone early).
        let slot = SubscriptionSlot { [self] in
            metrics.subscriptionEnded()
            subscriptionsByToken.release(principal.id)
        }
        let body = ResponseBody { [self] writer in
            defer { slot.release() }
            // A client that goes away ends the stream at once, not at the next write.
            let clientGone = ShutdownSignal()
            try await request.body.consumeWithInboundCloseHandler { _ in
                try await ServerSentEvents.stream(
                    events, target: subscription, keepAlive: configuration.keepAliveInterval,
                    endSignals: [shutdown, clientGone], metrics: metrics, logger: logger, writer: &writer)
            } onInboundClosed: {
                clientGone.trigger()
            }
        }
        return Response(status: .ok, headers: headers, body: body)
    }

    static func subscriptionStart(_ request: Request, _ target: RequestTarget, _ subscription: SubscriptionTarget)
        throws(EventStoreError) -> SubscriptionStart
    {
        var after: UInt64?
        if let lastEventID = request.headers[HTTPField.Name("Last-Event-ID")!] {
            guard lastEventID.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }), let value = UInt64(lastEventID),
                value <= UInt64(Int64.max)
            else {
                throw EventStoreError(.invalidArgument, "Last-Event-ID must be an event's position or revision.")
            }
            after = value
        } else {
            after = try target.integer("after")
        }
        if let after {
            // A browser resuming with Last-Event-ID repeats the URL it started with: the header wins.
            if target.query["from"] != nil, request.headers[HTTPField.Name("Last-Event-ID")!] == nil {
                throw EventStoreError(.invalidArgument, "Give 'from' or 'after', not both.")
            }
            _ = try target.integer("after")
            return subscription.start(after: after)
        }
        switch target.query["from"] {
        case nil, "start": return .beginning
        case "end": return .end
        case let other?:
            throw EventStoreError(.invalidArgument, "'from' is start or end (or use 'after=N'); got '\(other)'.")
        }
    }

    // MARK: Helpers

    private func collect(_ request: Request) async throws -> [UInt8] {
        let limit = configuration.maximumBodyBytes
        if let length = request.headers[.contentLength].flatMap(Int.init), length > limit {
            throw EventStoreError(.limitExceeded, "The body is \(length) bytes; the most accepted is \(limit).")
        }
        // Not a check as each part arrives: the loop would only notice on the next part, and Hummingbird
        // would go on reading (draining) the trickled body before closing. Cancelling the collecting
        // task ends the body's stream, so the connection closes at once.
        let body = request.body
        let timeout = configuration.bodyTimeout
        do {
            var buffer = try await bodyDeadlines.run(until: .now + timeout) { try await body.collect(upTo: limit) }
            return buffer.readBytes(length: buffer.readableBytes) ?? []
        } catch is BodyDeadlines.Expired {
            throw EventStoreError(
                .requestTimeout, "The request's body did not arrive within \(timeout); the connection is closed.")
        } catch let error as HTTPError where error.status == .contentTooLarge {
            throw EventStoreError(.limitExceeded, "The body is larger than \(limit) bytes, the most accepted.")
        } catch let error as HTTPParserError {
            // A bad chunk size, an unsupported Transfer-Encoding: the client's bytes, not the server.
            throw MalformedFraming(
                error: EventStoreError(.invalidArgument, "The request's body framing is malformed (\(error)).")
            )
        } catch is NIOTooManyBytesError {
            // A chunked body has no Content-Length to check first: it is refused as it passes the limit.
            throw EventStoreError(.limitExceeded, "The body is larger than \(limit) bytes, the most accepted.")
        }
    }

    static func streamName(_ text: String) throws(EventStoreError) -> StreamName {
        try StreamName(allowingSystemName: text)
    }

    static func category(_ text: String) throws(EventStoreError) -> String {
        guard !text.isEmpty, text.utf8.count <= StreamName.maximumByteCount,
            !text.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7F }), !text.contains("-")
        else {
            throw EventStoreError(
                .invalidStreamName, "A category is 1–256 bytes, without '-' or control characters.")
        }
        return text
    }

    static func expectedRevision(_ request: Request) throws(EventStoreError) -> ExpectedRevision {
        guard let text = request.headers[HTTPField.Name("Expected-Revision")!] else { return .any }
        guard let expected = ExpectedRevision(text) else {
            throw EventStoreError(
                .invalidArgument, "Expected-Revision is any, no-stream, exists or a revision from 0 to \(Int64.max).")
        }
        if case .exact(let revision) = expected, revision.value > UInt64(Int64.max) {
            throw EventStoreError(.invalidArgument, "Expected-Revision must be at most \(Int64.max).")
        }
        return expected
    }

    static func requireJSON(_ request: Request) throws(EventStoreError) {
        guard let type = request.headers[.contentType] else { return }
        let mediaType = type.split(separator: ";").first.map { $0.trimmingCharacters(in: .whitespaces).lowercased() }
        guard mediaType == "application/json" else {
            throw EventStoreError(.unsupportedMediaType, "The body must be application/json; got '\(type)'.")
        }
    }

    static func wantsNDJSON(_ request: Request) -> Bool {
        request.headers[.accept]?.contains("application/x-ndjson") ?? false
    }

    static func page(_ events: [RecordedEvent], next: UInt64?) -> [UInt8] {
        var writer = JSONWriter()
        writer.beginObject()
        writer.key("events")
        writer.beginArray()
        for event in events { WireFormat.write(event, into: &writer) }
        writer.endArray()
        writer.key("next")
        if let next { writer.number(next) } else { writer.null() }
        writer.endObject()
        return writer.bytes
    }

    /// A streamed NDJSON answer: one event per line, written as the client reads.
    ///
    /// Up to `limit` events, read from `start` by `read(cursor, count)` a page at a time; the cursor after
    /// a page is `following` its last event (nil: the end was reached). A page holds about
    /// ``ServerConfiguration/streamingReadBufferBytes`` of events (``NDJSONPaging``), and each event is
    /// written on its own, so a client that stops reading holds the server to that much (or one event).
    /// The token holds one of its ``ServerConfiguration/streamingReadsPerToken`` slots until the body ends.
    private func ndjson<Cursor: Sendable>(
        from start: Cursor?,
        limit: Int,
        principal: TokenRecord,
        following: @escaping @Sendable (RecordedEvent) -> Cursor?,
        read: @escaping @Sendable (_ cursor: Cursor?, _ count: Int) async throws -> [RecordedEvent]
    ) throws(EventStoreError) -> Response {
        guard streamingReadsByToken.acquire(principal.id, limit: configuration.streamingReadsPerToken) else {
            throw EventStoreError(
                .tooManyStreamingReads,
                "The token holds \(configuration.streamingReadsPerToken) streaming reads open, the most allowed.")
        }
        let slot = SubscriptionSlot { [streamingReadsByToken] in streamingReadsByToken.release(principal.id) }
        let budget = configuration.streamingReadBufferBytes
        var headers = HTTPFields()
        headers[.contentType] = "application/x-ndjson"
        return Response(
            status: .ok, headers: headers,
            body: ResponseBody { writer in
                defer { slot.release() }
                var sink = writer
                try await NDJSONPaging.stream(
                    from: start, limit: limit, budget: budget, following: following, read: read, into: &sink)
                try await sink.finish(nil)
            })
    }

    static func json(_ bytes: [UInt8], status: HTTPResponse.Status = .ok, headers: HTTPFields = [:]) -> Response {
        var headers = headers
        headers[.contentType] = "application/json"
        return Response(status: status, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(bytes: bytes)))
    }

    static func text(_ text: String, contentType: String) -> Response {
        var headers = HTTPFields()
        headers[.contentType] = contentType
        return Response(status: .ok, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(string: text)))
    }

    static func error(_ error: EventStoreError) -> Response {
        var headers = HTTPFields()
        if error.code == .unauthorized { headers[.wwwAuthenticate] = "Bearer realm=\"annals\"" }
        return json(WireFormat.encode(error), status: httpStatus(for: error.code), headers: headers)
    }
}

/// Runs its release action exactly once: when asked, or when dropped.
final class SubscriptionSlot: Sendable {
    /// In a struct, not as a bare function in the `Mutex` (see ``CommitObserverRelay``).
    private let action: Mutex<ObserverBox<Void>?>

    init(_ action: @escaping @Sendable () -> Void) {
        self.action = Mutex(ObserverBox(call: { _ in action() }))
    }

    func release() {
        action.withLock { action in
            defer { action = nil }
            return action
        }?.call(())
    }

    deinit { release() }
}
