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
        let query = annals.query
        let store = environment.store
        let configuration = environment.configuration
        var start: SubscriptionStart
        if let lastEventID = request.headers[Self.lastEventID] {
            // A browser resuming with Last-Event-ID repeats the URL it started with: the header wins over
            // the query's start (whose numbers must still be well-formed).
            guard lastEventID.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }), let value = UInt64(lastEventID),
                value <= UInt64(Int64.max)
            else {
                throw EventStoreError(.invalidArgument, "Last-Event-ID must be an event's position or revision.")
            }
            _ = try query.integer("after")
            _ = try query.integer("head")
            start = subscription.start(after: value)
        } else {
            switch try SubscriptionQuery(parsing: query).start {
            case .start: start = .beginning
            case .end(head: nil): start = .end
            case .end(let head?):
                // "The end as of head H": a client that knows the head when it subscribed gets every event
                // committed after that, however late its connection arrives.
                switch subscription {
                case .stream(let stream):
                    start =
                        try await CatchUpSubscriptionSource.lastRevision(
                            of: stream, below: head, in: store, pageSize: 512
                        ).map { .afterRevision(StreamRevision($0)) } ?? .beginning
                case .allMatching, .category:
                    start = head == 0 ? .beginning : .afterPosition(Position(head - 1))
                }
            case .after(let checkpoint): start = subscription.start(after: checkpoint)
            }
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
}
