import Annals
import AnnalsWire
import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import Synchronization
import Tracing

/// An ``Annals/EventStore`` on an Annals server, over HTTP: switch an app between the embedded store and
/// a server by changing one line.
///
/// Appends and reads that fail in transit (a refused or reset connection, a timeout) are retried, a few
/// times with a growing pause: appends are idempotent by event id (law 6), so a retry of an append the
/// server did commit returns the original result. Other failures come back as the server's
/// ``Annals/EventStoreError``, code and fields intact.
///
/// ## Opening and closing
///
/// The store holds nothing to release: it sends its requests through an `HTTPClient` (by default
/// `HTTPClient.shared`, which lives as long as the process). Create it with
/// ``init(url:token:client:configuration:)`` and drop it when done; there is no `close()`. A client you
/// pass in is yours to shut down, after the last request and subscription through the store have ended.
///
/// ## Administration
///
/// With an admin token the store also manages the server's tokens (``createToken(name:role:scopes:)``,
/// ``tokens()``, ``revokeToken(id:)``) and reads its ``statistics()``, as typed values from
/// `AnnalsWire`; ``health()`` needs no token.
public final class RemoteEventStore: EventStore {
    /// How the store talks to the server.
    public struct Configuration: Sendable {
        /// Attempts for an append or read that fails in transit (at least 1).
        public var attempts: Int
        /// Time allowed for one request (subscriptions excepted).
        public var timeout: Duration
        /// The largest answer accepted; also the largest event a subscription accepts (a longer
        /// server-sent event line ends the subscription with `limit-exceeded`).
        public var maximumResponseBytes: Int

        /// A configuration: by default 4 attempts, 30 seconds a request and answers up to 1 GiB. An
        /// `attempts` below 1 counts as 1.
        public init(attempts: Int = 4, timeout: Duration = .seconds(30), maximumResponseBytes: Int = 1 << 30) {
            self.attempts = max(1, attempts)
            self.timeout = timeout
            self.maximumResponseBytes = maximumResponseBytes
        }
    }

    /// The server's URL as given to the initialiser, without a trailing `/`.
    public let baseURL: String
    let token: String?
    let client: HTTPClient
    /// How the store talks to the server.
    public let configuration: Configuration
    /// The highest head this client has seen (from appends and reads): where a subscription from
    /// `.end` starts, so events appended after `subscribe` returns are never missed.
    private let knownHead = Mutex<UInt64?>(nil)

    /// Creates a store for the server at `url`; nothing is sent until the first call, and nothing needs
    /// closing afterwards.
    ///
    /// - Parameters:
    ///   - url: the server, e.g. `http://127.0.0.1:2113`, or where an application mounted Annals' routes
    ///     (`http://127.0.0.1:8080/es`).
    ///   - token: a bearer token (`annals token create`).
    ///   - client: the HTTP client to send through; the caller shuts down one it created.
    /// - Throws: ``Annals/EventStoreError/Code/invalidArgument`` when `url` is not `http(s)://host[:port]`.
    public init(
        url: String, token: String?, client: HTTPClient = .shared, configuration: Configuration = Configuration()
    ) throws(EventStoreError) {
        guard let components = URLComponents(string: url), ["http", "https"].contains(components.scheme ?? ""),
            components.host?.isEmpty == false
        else {
            throw EventStoreError(.invalidArgument, "The server URL must look like http://host:port; got '\(url)'.")
        }
        baseURL = url.hasSuffix("/") ? String(url.dropLast()) : url
        self.token = token
        self.client = client
        self.configuration = configuration
    }

    // MARK: EventStore

    /// Appends with `POST /streams/{stream}`, the expected revision in an `Expected-Revision` header.
    /// A failure in transit, or a `503`, is retried: a retry of an append the server committed returns
    /// the original result (law 6). When every attempt fails in transit it throws `unavailable`, and the
    /// append may or may not have landed: retry it with the same event ids.
    @discardableResult
    public func append(
        _ events: [EventData], to stream: StreamName, expecting expected: ExpectedRevision
    ) async throws -> AppendResult {
        let body = WireFormat.encodeEvents(events)
        // The caller's trace context, taken once for every attempt: a retry repeats the same headers,
        // so the server writes the same metadata and the retry stays idempotent.
        var headers = ServiceContext.current.map { TraceFields.of($0) } ?? [:]
        headers["Expected-Revision"] = expected.description
        let answer = try await send(
            .POST, "/streams/\(Self.encode(stream.rawValue))", headers: headers, body: body, retry: true)
        let result = try WireFormat.decodeAppendResult(answer)
        noteHead(result.lastPosition.value + 1)
        return result
    }

    /// Reads a stream with one `GET /streams/{stream}` as NDJSON, whatever the `limit` (`Int.max` reads to
    /// the end; the answer is held whole, up to ``Configuration/maximumResponseBytes``), retried like an
    /// append. A `from` past 2⁶³−1 reads nothing forwards, and from the end backwards.
    public func read(
        _ stream: StreamName, from revision: StreamRevision?, direction: ReadDirection, limit: Int
    ) async throws -> [RecordedEvent] {
        guard limit >= 0 else { throw EventStoreError(.invalidArgument, "The limit must not be negative.") }
        if limit == 0 {
            _ = try await readLines("/streams/\(Self.encode(stream.rawValue))", StreamReadQuery(limit: 0).parameters)
            return []
        }
        var query = StreamReadQuery(direction: direction, limit: limit == .max ? nil : limit)
        // The server takes numbers up to Int64.max; no event lies beyond, so answer here.
        if let revision, revision.value > UInt64(Int64.max) {
            if direction == .forwards { return [] }
        } else {
            query.from = revision
        }
        return try await readLines("/streams/\(Self.encode(stream.rawValue))", query.parameters)
    }

    /// Reads with `GET /categories/{category}` when the filter names a category and no stream prefix (a
    /// route open to scoped readers), else with `GET /all` (admin role). As NDJSON, retried like
    /// ``read(_:from:direction:limit:)``.
    public func readAll(
        from position: Position?, direction: ReadDirection, filter: EventFilter, limit: Int
    ) async throws -> [RecordedEvent] {
        guard limit >= 0 else { throw EventStoreError(.invalidArgument, "The limit must not be negative.") }
        if limit == 0 { return [] }
        var query = LogReadQuery(direction: direction, limit: limit == .max ? nil : limit, filter: filter)
        if let position, position.value > UInt64(Int64.max) {
            if direction == .forwards { return [] }
        } else {
            query.from = position
        }
        let path: String
        if let category = filter.category, filter.streamPrefix == nil {
            // The category route is open to scoped readers; $all needs the admin role. The category is
            // in its path.
            path = "/categories/\(Self.encode(category))"
            query.filter.category = nil
        } else {
            path = "/all"
        }
        let events = try await readLines(path, query.parameters)
        if direction == .forwards, filter.isEmpty, let last = events.last { noteHead(last.position.value + 1) }
        return events
    }

    /// A stream's information from `GET /streams/{stream}/metadata`; `nil` when the server answers
    /// `not-found`.
    public func streamInfo(_ stream: StreamName) async throws -> StreamInfo? {
        do {
            let answer = try await send(.GET, "/streams/\(Self.encode(stream.rawValue))/metadata", retry: true)
            return try WireFormat.decodeStreamInfo(try JSONNode.parse(answer), in: answer)
        } catch let error as EventStoreError where error.code == .notFound {
            return nil
        }
    }

    /// Lists streams with `GET /streams`, up to 1,000 a request, until `limit` are read or the list ends.
    /// A scoped token lists only the streams in its scopes.
    public func listStreams(after: StreamName?, limit: Int) async throws -> [StreamInfo] {
        guard limit >= 0 else { throw EventStoreError(.invalidArgument, "The limit must not be negative.") }
        var streams: [StreamInfo] = []
        var cursor = after
        while streams.count < limit {
            let want = min(limit - streams.count, 1_000)
            let query = StreamListQuery(after: cursor, limit: want)
            let answer = try await send(.GET, "/streams", query: query.parameters, retry: true)
            let root = try JSONNode.parse(answer)
            guard case .array(let items)? = root["streams"]?.kind else {
                throw EventStoreError(.unavailable, "The server's stream list has no 'streams' array.")
            }
            for item in items { streams.append(try WireFormat.decodeStreamInfo(item, in: answer)) }
            // A page may hold fewer than asked and still go on (a scoped token's listing stops after a
            // scan budget): only a null `next` ends the list.
            guard let next = root["next"]?.stringValue else { break }
            cursor = try StreamName(allowingSystemName: next)
        }
        return streams
    }

    /// The head of `$all` from `GET /head`: the position the next event will get.
    public func headPosition() async throws -> Position {
        let answer = try await send(.GET, "/head", retry: true)
        let head = try WireFormat.unsigned(try JSONNode.parse(answer)["headPosition"], in: answer, name: "headPosition")
        noteHead(head)
        return Position(head)
    }

    /// Replaces a stream's metadata with `PUT /streams/{stream}/metadata` (admin role); sent once, not
    /// retried.
    public func setMetadata(_ metadata: StreamMetadata, for stream: StreamName) async throws {
        _ = try await send(
            .PUT, "/streams/\(Self.encode(stream.rawValue))/metadata", body: WireFormat.encodeMetadata(metadata),
            retry: false)
    }

    /// Soft-deletes a stream with `DELETE /streams/{stream}`, the expected revision in an
    /// `Expected-Revision` header; sent once, not retried.
    public func delete(_ stream: StreamName, expecting expected: ExpectedRevision) async throws {
        _ = try await send(
            .DELETE, "/streams/\(Self.encode(stream.rawValue))", headers: ["Expected-Revision": expected.description],
            retry: false)
    }

    /// Deletes a stream for good with `DELETE /streams/{stream}?tombstone=true`; sent once, not retried.
    public func tombstone(_ stream: StreamName, expecting expected: ExpectedRevision) async throws {
        _ = try await send(
            .DELETE, "/streams/\(Self.encode(stream.rawValue))", query: QueryParameters(["tombstone": "true"]),
            headers: ["Expected-Revision": expected.description], retry: false)
    }

    /// Subscribes over server-sent events (`GET /subscribe/…`), connecting when iteration starts and
    /// reconnecting with `Last-Event-ID` after a dropped connection. A start of the wrong kind for the
    /// target (a position for a stream, a revision otherwise) ends it with `invalid-argument`.
    public func subscribe(to target: SubscriptionTarget, from start: SubscriptionStart) -> EventSubscription {
        var query = SubscriptionQuery()
        var mismatch: EventStoreError?
        switch start {
        case .beginning: query.start = .start
        case .end: query.start = .end(head: knownHead.withLock { $0 })
        case .afterPosition(let position):
            if target.isStream {
                mismatch = EventStoreError(
                    .invalidArgument, "A stream subscription starts after a revision, not a position.")
            }
            query.start = .after(position.value)
        case .afterRevision(let revision):
            if !target.isStream {
                mismatch = EventStoreError(
                    .invalidArgument, "A $all or category subscription starts after a position, not a revision.")
            }
            query.start = .after(revision.value)
        }
        let path: String
        switch target {
        case .stream(let stream): path = "/subscribe/streams/\(Self.encode(stream.rawValue))"
        case .category(let category): path = "/subscribe/categories/\(Self.encode(category))"
        case .allMatching(let filter):
            path = "/subscribe/all"
            query.filter = filter
        }
        let url = self.url(path, query.parameters)
        let headers = authorizationHeaders()
        let client = self.client
        let failure = mismatch
        let maximumEventBytes = configuration.maximumResponseBytes
        return EventSubscription {
            RemoteSubscriptionSource(
                client: client, url: url, headers: headers, target: target, maximumEventBytes: maximumEventBytes,
                failure: failure)
        }
    }

    // MARK: HTTP

    private func noteHead(_ head: UInt64) {
        knownHead.withLock { $0 = max($0 ?? 0, head) }
    }

    func authorizationHeaders() -> [(String, String)] {
        token.map { [("Authorization", "Bearer \($0)")] } ?? []
    }

    func url(_ path: String, _ query: QueryParameters) -> String {
        query.isEmpty ? baseURL + path : baseURL + path + "?" + query.encoded
    }

    /// Reads NDJSON: one event per line.
    private func readLines(_ path: String, _ query: QueryParameters) async throws -> [RecordedEvent] {
        let answer = try await send(.GET, path, query: query, headers: ["Accept": "application/x-ndjson"], retry: true)
        var events: [RecordedEvent] = []
        var start = 0
        while start < answer.count {
            let end = answer[start...].firstIndex(of: 0x0A) ?? answer.count
            if end > start {
                let line = Array(answer[start..<end])
                events.append(try WireFormat.decodeRecorded(try JSONNode.parse(line), in: line))
            }
            start = end + 1
        }
        return events
    }

    /// Sends a request; returns the body of a 2xx answer, or of one whose status is in `alsoAccepted`
    /// (`/health` answers 503 with its own shape), and throws the server's error otherwise.
    func send(
        _ method: HTTPMethod, _ path: String, query: QueryParameters = QueryParameters(),
        headers: [String: String] = [:],
        body: [UInt8]? = nil, retry: Bool, alsoAccepting alsoAccepted: Set<UInt> = []
    ) async throws -> [UInt8] {
        var request = HTTPClientRequest(url: url(path, query))
        request.method = method
        for (name, value) in authorizationHeaders() { request.headers.add(name: name, value: value) }
        for (name, value) in headers { request.headers.add(name: name, value: value) }
        if let body {
            request.headers.add(name: "Content-Type", value: "application/json")
            request.body = .bytes(ByteBuffer(bytes: body))
        }
        var attempt = 0
        while true {
            attempt += 1
            let response: HTTPClientResponse
            let bytes: [UInt8]
            do {
                response = try await client.execute(
                    request, timeout: .nanoseconds(Int64(configuration.timeout / .nanoseconds(1))))
                var buffer = try await response.body.collect(upTo: configuration.maximumResponseBytes)
                bytes = buffer.readBytes(length: buffer.readableBytes) ?? []
            } catch is CancellationError {
                throw CancellationError()
            } catch {
                if Task.isCancelled { throw CancellationError() }
                guard retry, attempt < configuration.attempts else {
                    throw EventStoreError(
                        .unavailable,
                        "The server at \(baseURL) did not answer \(method.rawValue) \(path): \(error). An append may or may not have been committed; retry it with the same event ids."
                    )
                }
                try await Task.sleep(for: .milliseconds(100 << min(attempt, 6)))
                continue
            }
            if (200..<300).contains(response.status.code) || alsoAccepted.contains(response.status.code) {
                return bytes
            }
            if let error = WireFormat.decodeError(bytes) {
                // A server that is starting or stopping answers 503: worth another try.
                if retry, response.status.code == 503, attempt < configuration.attempts {
                    try await Task.sleep(for: .milliseconds(100 << min(attempt, 6)))
                    continue
                }
                throw error
            }
            throw EventStoreError(
                .unavailable, "The server answered \(response.status.code) to \(method.rawValue) \(path).")
        }
    }

    static func encode(_ text: String) -> String { WireFormat.percentEncode(text) }
}

/// The server's `error` event: the subscription cannot go on.
struct SubscriptionEnded: Error {
    var error: EventStoreError
}

/// A subscription over server-sent events, reconnecting with `Last-Event-ID` after a dropped connection.
///
/// The stream is read with AnnalsWire's ``ServerSentEventParser``. Reconnecting follows the server's
/// `retry:` (at most a minute), as an `EventSource` does: once the server has sent
/// one, a lost connection is reconnected after that delay, and a failed connect is retried after
/// that delay times the failures so far. Before any `retry:`, a lost connection is reconnected at
/// once and a failed connect retried after 200 ms times the failures. The sixth failed connect in a
/// row ends the subscription with `unavailable`.
struct RemoteSubscriptionSource: EventSubscriptionSource {
    /// The longest reconnection delay taken from a server's `retry:`, in milliseconds, so that a server
    /// cannot keep a subscription from ever reconnecting.
    static let longestReconnectionDelay: UInt64 = 60_000

    let client: HTTPClient
    let url: String
    let headers: [(String, String)]
    let target: SubscriptionTarget
    /// The longest server-sent event line, and event data, accepted.
    let maximumEventBytes: Int
    var failure: EventStoreError?
    var connection: Connection?
    var lastCheckpoint: UInt64?
    var failedConnects = 0
    /// The server's last `retry:`, at most a minute; `nil` until it sends one.
    var reconnectionDelay: Duration?

    /// The open response body, read by one consumer at a time.
    final class Connection: @unchecked Sendable {
        var iterator: HTTPClientResponse.Body.AsyncIterator
        var parser: ServerSentEventParser
        /// Events parsed but not delivered yet, the next one last.
        var pending: [ServerSentEvent] = []

        init(iterator: HTTPClientResponse.Body.AsyncIterator, maximumEventBytes: Int) {
            self.iterator = iterator
            self.parser = ServerSentEventParser(maximumLineBytes: maximumEventBytes)
        }
    }

    init(
        client: HTTPClient, url: String, headers: [(String, String)], target: SubscriptionTarget,
        maximumEventBytes: Int, failure: EventStoreError?
    ) {
        self.client = client
        self.url = url
        self.headers = headers
        self.target = target
        self.maximumEventBytes = maximumEventBytes
        self.failure = failure
    }

    mutating func next() async throws -> RecordedEvent? {
        if let failure { throw failure }
        while true {
            if Task.isCancelled { return nil }
            if connection == nil {
                do {
                    connection = try await connect()
                    failedConnects = 0
                } catch let error as EventStoreError {
                    throw error
                } catch {
                    if Task.isCancelled { return nil }
                    failedConnects += 1
                    if failedConnects > 5 {
                        throw EventStoreError(.unavailable, "The subscription lost its server: \(error).")
                    }
                    try? await Task.sleep(for: (reconnectionDelay ?? .milliseconds(200)) * failedConnects)
                    continue
                }
            }
            do {
                if let event = try await nextEvent() { return event }
                // The server ended the stream (it is shutting down): reconnect.
            } catch let ended as SubscriptionEnded {
                throw ended.error
            } catch {
                if Task.isCancelled { return nil }
            }
            connection = nil
            // As an EventSource does: wait as long as the server's `retry:` asked before reconnecting.
            if let reconnectionDelay { try? await Task.sleep(for: reconnectionDelay) }
        }
    }

    private func connect() async throws -> Connection {
        var request = HTTPClientRequest(url: url)
        for (name, value) in headers { request.headers.add(name: name, value: value) }
        request.headers.add(name: "Accept", value: "text/event-stream")
        if let lastCheckpoint { request.headers.add(name: "Last-Event-ID", value: String(lastCheckpoint)) }
        let response = try await client.execute(request, timeout: .hours(24 * 365))
        guard response.status.code == 200 else {
            var buffer = try await response.body.collect(upTo: 1 << 20)
            let bytes = buffer.readBytes(length: buffer.readableBytes) ?? []
            throw WireFormat.decodeError(bytes)
                ?? EventStoreError(.unavailable, "The server answered \(response.status.code) to a subscription.")
        }
        return Connection(iterator: response.body.makeAsyncIterator(), maximumEventBytes: maximumEventBytes)
    }

    /// Reads server-sent events until one is an event of the subscription; nil when the stream ends.
    private mutating func nextEvent() async throws -> RecordedEvent? {
        guard let connection else { return nil }
        while true {
            while let message = connection.pending.popLast() {
                if message.isFailure {
                    throw SubscriptionEnded(
                        error: WireFormat.decodeError(message.data)
                            ?? EventStoreError(.unavailable, "The server ended the subscription with an error."))
                }
                // Events of the subscription have no type; skip any other (a newer server's).
                guard message.event == nil else { continue }
                let event = try WireFormat.decodeRecorded(try JSONNode.parse(message.data), in: message.data)
                lastCheckpoint = target.checkpoint(of: event)
                return event
            }
            guard let chunk = try await connection.iterator.next() else { return nil }
            let messages: [ServerSentEvent]
            do {
                messages = try connection.parser.feed(chunk.readableBytesView)
            } catch {
                // An event larger than this client accepts: a reconnect would only fetch it again.
                throw SubscriptionEnded(error: error)
            }
            connection.pending = messages.reversed()
            if let milliseconds = connection.parser.reconnectionTime {
                reconnectionDelay = .milliseconds(min(milliseconds, Self.longestReconnectionDelay))
            }
        }
    }
}
