import Annals
import AnnalsWire
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import Metrics
import NIOCore
import NIOHTTP1
import Synchronization

/// What every controller shares: the store, the tokens, the limits, the counters.
final class AnnalsEnvironment: Sendable {
    let store: any EventStore
    let tokens: TokenCache
    let configuration: ServerConfiguration
    let metrics: ServerMetrics
    let exposition: MetricsExposition?
    let bodyDeadlines = BodyDeadlines()
    let logger: Logger
    let subscriptionsByToken = TokenSlots()
    let streamingReadsByToken = TokenSlots()

    init(
        store: any EventStore, tokens: any TokenRegistry, configuration: ServerConfiguration, logger: Logger,
        exposition: MetricsExposition?, metricsFactory: (any MetricsFactory)?
    ) {
        self.store = store
        self.tokens = TokenCache(registry: tokens)
        self.configuration = configuration
        self.logger = logger
        self.exposition = exposition
        self.metrics = ServerMetrics(factory: metricsFactory)
    }

    // MARK: Errors

    /// The answer for anything a handler or a middleware threw: an ``AnnalsHTTPError`` with the JSON
    /// error body. Store failures keep their code and get a stable message (their own text is logged).
    func httpError(for error: any Error, request: Request) -> AnnalsHTTPError {
        var answer: AnnalsHTTPError
        switch error {
        case let error as AnnalsHTTPError:
            answer = error
        case let error as EventStoreError:
            answer = AnnalsHTTPError(logger.publicError(error, metadata: ["path": "\(request.uri.path)"]))
        case let error as MalformedFraming:
            // The connection's bytes cannot be trusted past this point: answer, then close.
            answer = AnnalsHTTPError(error.error)
            answer.headers[.connection] = "close"
        case is NIOTooManyBytesError:
            answer = AnnalsHTTPError(bodyTooLarge)
        case let error as HTTPError where error.status == .notFound:
            answer = AnnalsHTTPError(EventStoreError(.routeNotFound, "No route for \(request.uri.path)."))
        case let error as HTTPError where error.status == .contentTooLarge:
            answer = AnnalsHTTPError(bodyTooLarge)
        default:
            logger.error("request failed", metadata: ["path": "\(request.uri.path)", "error": "\(error)"])
            answer = AnnalsHTTPError(
                EventStoreError(.unavailable, "The request failed inside the server; see its log."))
        }
        // Shutting down: the client must not send another request on this connection. One accepted
        // just as the server began to quiesce would otherwise stay open, idle, until the idle timeout.
        if Task.isShuttingDownGracefully || answer.error.code == .requestTimeout {
            answer.headers[.connection] = "close"
        }
        return answer
    }

    // MARK: Bodies

    /// A body over ``ServerConfiguration/maximumBodyBytes`` whose length was not known up front.
    var bodyTooLarge: EventStoreError {
        EventStoreError(
            .limitExceeded, "The body is larger than \(configuration.maximumBodyBytes) bytes, the most accepted.")
    }

    /// The request's whole body, within the body limit and the body timeout.
    func collect(_ request: Request) async throws -> [UInt8] {
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
            throw bodyTooLarge
        } catch let error as HTTPParserError {
            // A bad chunk size, an unsupported Transfer-Encoding: the client's bytes, not the server.
            throw MalformedFraming(
                error: EventStoreError(.invalidArgument, "The request's body framing is malformed (\(error)).")
            )
        } catch is NIOTooManyBytesError {
            // A chunked body has no Content-Length to check first: it is refused as it passes the limit.
            throw bodyTooLarge
        }
    }

    // MARK: NDJSON

    /// A streamed NDJSON answer: one event per line, written as the client reads.
    ///
    /// Up to `limit` events, read from `start` by `read(cursor, count)` a page at a time; the cursor after
    /// a page is `following` its last event (nil: the end was reached). A page holds about
    /// ``ServerConfiguration/streamingReadBufferBytes`` of events (``NDJSONPaging``), and each event is
    /// written on its own, so a client that stops reading holds the server to that much (or one event).
    /// The token holds one of its ``ServerConfiguration/streamingReadsPerToken`` slots until the body ends.
    func ndjson<Cursor: Sendable>(
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
        metrics.streamingReadStarted()
        let slot = SubscriptionSlot { [streamingReadsByToken, metrics] in
            streamingReadsByToken.release(principal.id)
            metrics.streamingReadEnded()
        }
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

    // MARK: Request parts

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

    /// HTTP/1.1 requires Host (RFC 9112 §3.2); the conversion to HTTPTypes moves it to `authority`.
    static func requireHost(_ request: Request) throws(EventStoreError) {
        guard request.head.authority != nil else {
            throw EventStoreError(.invalidArgument, "The request has no Host header; HTTP/1.1 requires one.")
        }
    }

    static func wantsNDJSON(_ request: Request) -> Bool {
        request.headers[.accept]?.contains("application/x-ndjson") ?? false
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

    // MARK: Responses

    /// A page of events: `{"events": […], "next": N or null}`.
    static func page(_ events: [RecordedEvent], next: UInt64?) -> [UInt8] {
        page("events", events, write: WireFormat.write) { writer in
            if let next { writer.number(next) } else { writer.null() }
        }
    }

    /// A page of the API: `{"<key>": [items], "next": …}`, `next` written by `next`.
    static func page<Item>(
        _ key: String, _ items: [Item], write: (Item, inout JSONWriter) -> Void, next: (inout JSONWriter) -> Void
    ) -> [UInt8] {
        var writer = JSONWriter()
        writer.beginObject()
        writer.key(key)
        writer.beginArray()
        for item in items { write(item, &writer) }
        writer.endArray()
        writer.key("next")
        next(&writer)
        writer.endObject()
        return writer.bytes
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

/// Runs its release action exactly once: when asked, or when dropped.
final class SubscriptionSlot: Sendable {
    /// In a struct, not as a bare function in the `Mutex` (see ``ObserverBox``).
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
