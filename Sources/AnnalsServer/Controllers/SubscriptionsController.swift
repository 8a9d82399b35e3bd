import Annals
import AnnalsWire
import HTTPTypes
import Hummingbird
import ServiceLifecycle

/// The subscription routes: `$all`, a stream or a category as server-sent events.
struct SubscriptionsController<Context: AnnalsRequestContext>: AnnalsController {
    let environment: AnnalsEnvironment

    var handlers: [RouteSpec.ID: RouteHandler<Context>] {
        [
            .subscribeAll: { request, context in
                try await subscribe(request, context.annals, to: .allMatching(try context.annals.query.filter()))
            },
            .subscribeStream: { request, context in
                try await subscribe(request, context.annals, to: .stream(try context.annals.requireStream()))
            },
            .subscribeCategory: { request, context in
                let annals = context.annals
                guard let category = annals.category else { throw EventStoreError(.routeNotFound, "No category.") }
                let limit = try annals.requirePrincipal().categoryAccess(category)
                var filter = EventFilter(category: category)
                filter.eventTypes = try annals.query.filter().eventTypes
                if !limit.isEmpty { filter.streamPrefix = limit }
                let target: SubscriptionTarget =
                    filter.eventTypes == nil && limit.isEmpty ? .category(category) : .allMatching(filter)
                return try await subscribe(request, annals, to: target)
            },
        ]
    }

    private static var lastEventID: HTTPField.Name { HTTPField.Name("Last-Event-ID")! }

    private func subscribe(_ request: Request, _ annals: AnnalsContextStorage, to subscription: SubscriptionTarget)
        async throws -> Response
    {
        let principal = try annals.requirePrincipal()
        let target = annals.query
        let store = environment.store
        let configuration = environment.configuration
        let resumes = request.headers[Self.lastEventID] != nil
        var start = try Self.start(request, target, subscription)
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
        let slots = environment.subscriptionsByToken
        guard slots.acquire(principal.id, limit: configuration.subscriptionsPerToken) else {
            throw EventStoreError(
                .tooManySubscriptions,
                "The token holds \(configuration.subscriptionsPerToken) live subscriptions, the most allowed.")
        }
        let metrics = environment.metrics
        metrics.subscriptionStarted()
        var headers = HTTPFields()
        headers[.contentType] = "text/event-stream"
        headers[.cacheControl] = "no-cache"
        headers[HTTPField.Name("X-Accel-Buffering")!] = "no"
        let events = store.subscribe(to: subscription, from: start)
        // Released when the body ends, or when it is dropped without running (a client gone early).
        let slot = SubscriptionSlot {
            metrics.subscriptionEnded()
            slots.release(principal.id)
        }
        let logger = environment.logger
        let body = ResponseBody { writer in
            defer { slot.release() }
            // A client that goes away, or the server shutting down gracefully, ends the stream at once:
            // the server's shutdown waits for its requests, and a subscription never ends by itself.
            let ended = ShutdownSignal()
            try await withGracefulShutdownHandler {
                try await request.body.consumeWithInboundCloseHandler { _ in
                    try await ServerSentEvents.stream(
                        events, target: subscription, keepAlive: configuration.keepAliveInterval,
                        endSignals: [ended], metrics: metrics, logger: logger, writer: &writer)
                } onInboundClosed: {
                    ended.trigger()
                }
            } onGracefulShutdown: {
                ended.trigger()
            }
        }
        return Response(status: .ok, headers: headers, body: body)
    }

    /// Where a subscription starts: after `Last-Event-ID` (a browser resuming), after `after`, or `from`
    /// the start (the default) or the end.
    static func start(_ request: Request, _ target: RequestTarget, _ subscription: SubscriptionTarget)
        throws(EventStoreError) -> SubscriptionStart
    {
        var after: UInt64?
        if let lastEventID = request.headers[Self.lastEventID] {
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
            if target.query["from"] != nil, request.headers[Self.lastEventID] == nil {
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
}
