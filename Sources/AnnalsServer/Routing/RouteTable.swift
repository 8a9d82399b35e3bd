import AnnalsWire
import HTTPTypes
import Hummingbird

/// Every route of the HTTP API, declared once: method, path, who may call it and which query
/// parameters it takes.
///
/// The table is the one source the rest is derived from: the `Allow` header of a `405`, the route ×
/// role test (which needs a sample request for every entry, so a new route cannot miss it), and the
/// test that holds `docs/openapi.yaml` to the same routes, roles, scope rules and parameters. The
/// route ids are the OpenAPI `operationId`s.
public struct RouteSpec: Sendable, Hashable, CustomStringConvertible {
    /// The route's name: its `operationId` in `docs/openapi.yaml`.
    public enum ID: String, Sendable, CaseIterable {
        /// The admin page and operations: `adminPage` is `GET /`, `adminScript` `GET /admin/console.js`,
        /// `adminStyle` `GET /admin/console.css`, `health` `GET /health`, `getMetrics` `GET /metrics`,
        /// `getHead` `GET /head`, `getStats` `GET /stats`.
        case adminPage, adminScript, adminStyle, health, getMetrics, getHead, getStats
        /// Streams: `listStreams` is `GET /streams`; `appendToStream`, `readStream` and `deleteStream` are
        /// `POST`, `GET` and `DELETE /streams/{stream}`; `getStreamInfo` and `setStreamMetadata` are `GET`
        /// and `PUT /streams/{stream}/metadata`.
        case listStreams, appendToStream, readStream, deleteStream, getStreamInfo, setStreamMetadata
        /// Reads across streams: `readCategory` is `GET /categories/{category}`, `readAll` `GET /all`.
        case readCategory, readAll
        /// Subscriptions: `subscribeAll` is `GET /subscribe/all`, `subscribeStream`
        /// `GET /subscribe/streams/{stream}`, `subscribeCategory` `GET /subscribe/categories/{category}`.
        case subscribeAll, subscribeStream, subscribeCategory
        /// Tokens: `listTokens` is `GET /tokens`, `createToken` `POST /tokens`, `revokeToken`
        /// `DELETE /tokens/{id}`.
        case listTokens, createToken, revokeToken
    }

    /// Who may call a route.
    public enum Access: Sendable, Hashable {
        /// Anyone, without a token.
        case `public`
        /// A token with this role or a higher one.
        case atLeast(Role)
    }

    /// What a token's scopes (stream-name prefixes) limit, beyond its role.
    public enum ScopeRule: String, Sendable, Hashable {
        /// Only the role counts.
        case none
        /// The `{stream}` in the path must be in scope; a system stream (`$…`) needs admin.
        case stream
        /// The `{category}` must be covered by the scopes (or by exactly one of them, which then
        /// filters the answer); a system category needs admin.
        case category
        /// Any token of the role may call it; the answer holds only the streams in its scopes.
        case filteredListing = "filtered-listing"
    }

    /// The query parameters a route accepts (besides `access_token`, which every route accepts on a
    /// `GET`); any other is `invalid-argument`, so a typo is an error rather than a silent default.
    public enum QueryRule: Sendable, Hashable {
        /// Whatever the query holds is ignored (the admin page).
        case ignored
        /// Only these names.
        case allowed(Set<String>)
    }

    /// The route's name, its `operationId`.
    public let id: ID
    /// The HTTP method it answers.
    public let method: HTTPRequest.Method
    /// The path, with `{name}` for a segment that varies (`/streams/{stream}`).
    public let path: String
    /// Who may call it: anyone, or a token of at least a role.
    public let access: Access
    /// What a token's scopes limit, beyond its role.
    public let scope: ScopeRule
    /// The query parameters it accepts.
    public let query: QueryRule

    /// The method and the path, such as `GET /streams/{stream}`.
    public var description: String { "\(method.rawValue) \(path)" }

    /// Whether `segments` (a request path split at `/`, percent-escapes still in) has this route's
    /// shape: the same number of segments, and the fixed ones equal.
    public func matches(_ segments: [Substring]) -> Bool {
        let pattern = path.split(separator: "/")
        guard pattern.count == segments.count else { return false }
        return zip(pattern, segments).allSatisfy { part, segment in part.hasPrefix("{") || part == segment }
    }
}

/// The routes of the HTTP API (see ``RouteSpec``).
public enum RouteTable {
    private static let subscribe: Set<String> = ["from", "after", "head"]

    /// Every route, in the order of `docs/openapi.yaml`.
    public static let all: [RouteSpec] = [
        RouteSpec(id: .adminPage, method: .get, path: "/", access: .public, scope: .none, query: .ignored),
        RouteSpec(
            id: .adminScript, method: .get, path: "/admin/console.js", access: .public, scope: .none, query: .ignored),
        RouteSpec(
            id: .adminStyle, method: .get, path: "/admin/console.css", access: .public, scope: .none, query: .ignored),
        RouteSpec(id: .health, method: .get, path: "/health", access: .public, scope: .none, query: .allowed([])),
        RouteSpec(
            id: .getHead, method: .get, path: "/head", access: .atLeast(.reader), scope: .none, query: .allowed([])),
        RouteSpec(
            id: .getStats, method: .get, path: "/stats", access: .atLeast(.admin), scope: .none, query: .allowed([])),
        RouteSpec(
            id: .getMetrics, method: .get, path: "/metrics", access: .atLeast(.admin), scope: .none, query: .allowed([])
        ),
        RouteSpec(
            id: .listStreams, method: .get, path: "/streams", access: .atLeast(.reader), scope: .filteredListing,
            query: .allowed(StreamListQuery.names)),
        RouteSpec(
            id: .appendToStream, method: .post, path: "/streams/{stream}", access: .atLeast(.writer), scope: .stream,
            query: .allowed([])),
        RouteSpec(
            id: .readStream, method: .get, path: "/streams/{stream}", access: .atLeast(.reader), scope: .stream,
            query: .allowed(StreamReadQuery.names)),
        RouteSpec(
            id: .deleteStream, method: .delete, path: "/streams/{stream}", access: .atLeast(.writer), scope: .stream,
            query: .allowed(["tombstone"])),
        RouteSpec(
            id: .getStreamInfo, method: .get, path: "/streams/{stream}/metadata", access: .atLeast(.reader),
            scope: .stream, query: .allowed([])),
        RouteSpec(
            id: .setStreamMetadata, method: .put, path: "/streams/{stream}/metadata", access: .atLeast(.admin),
            scope: .stream, query: .allowed([])),
        RouteSpec(
            id: .readAll, method: .get, path: "/all", access: .atLeast(.admin), scope: .none,
            query: .allowed(LogReadQuery.names)),
        RouteSpec(
            id: .readCategory, method: .get, path: "/categories/{category}", access: .atLeast(.reader),
            scope: .category, query: .allowed(LogReadQuery.names.subtracting(["category", "streamPrefix"]))),
        RouteSpec(
            id: .subscribeAll, method: .get, path: "/subscribe/all", access: .atLeast(.admin), scope: .none,
            query: .allowed(SubscriptionQuery.names)),
        RouteSpec(
            id: .subscribeStream, method: .get, path: "/subscribe/streams/{stream}", access: .atLeast(.reader),
            scope: .stream, query: .allowed(subscribe)),
        RouteSpec(
            id: .subscribeCategory, method: .get, path: "/subscribe/categories/{category}", access: .atLeast(.reader),
            scope: .category, query: .allowed(subscribe.union(["type"]))),
        RouteSpec(
            id: .listTokens, method: .get, path: "/tokens", access: .atLeast(.admin), scope: .none, query: .allowed([])),
        RouteSpec(
            id: .createToken, method: .post, path: "/tokens", access: .atLeast(.admin), scope: .none,
            query: .allowed([])),
        RouteSpec(
            id: .revokeToken, method: .delete, path: "/tokens/{id}", access: .atLeast(.admin), scope: .none,
            query: .allowed([])),
    ]

    /// The order an `Allow` header lists methods in.
    private static let allowOrder: [HTTPRequest.Method] = [.get, .head, .post, .put, .patch, .delete, .options]

    /// Each path pattern's methods, in `Allow` order: worked out once, looked up on every request.
    private static let methodsByPath: [String: [HTTPRequest.Method]] = Dictionary(
        grouping: all, by: \.path
    ).mapValues { routes in
        let present = Set(routes.map(\.method))
        return allowOrder.filter(present.contains)
            + present.filter { !allowOrder.contains($0) }.sorted { $0.rawValue < $1.rawValue }
    }

    /// Every path pattern of the table, each once, in table order.
    static let paths: [String] = all.reduce(into: []) { paths, spec in
        if !paths.contains(spec.path) { paths.append(spec.path) }
    }

    /// The methods Annals' route collection answers with `405` when a path lacks them (any other method
    /// is left to the application's router; `annals serve` answers it with `405` too).
    static let standardMethods: [HTTPRequest.Method] = [.get, .head, .post, .put, .delete, .patch, .options]

    /// The methods the table has for a path pattern (`/streams/{stream}`), GET, POST, PUT, DELETE in
    /// that order (as an `Allow` header lists them); empty for a pattern no route has.
    public static func methods(forPath path: String) -> [HTTPRequest.Method] {
        methodsByPath[path] ?? []
    }

    /// The methods the table has for a request path's shape (its segments, percent-escapes still in), in
    /// `Allow` order; empty when no route has the shape.
    public static func methods(matching segments: [Substring]) -> [HTTPRequest.Method] {
        let paths = Set(all.filter { $0.matches(segments) }.map(\.path))
        let present = Set(paths.flatMap { methods(forPath: $0) })
        return allowOrder.filter(present.contains)
            + present.filter { !allowOrder.contains($0) }.sorted { $0.rawValue < $1.rawValue }
    }
}

/// What answers a route once ``AuthorizationMiddleware`` has let the request through.
typealias RouteHandler<Context> = @Sendable (Request, Context) async throws -> Response

/// A group of routes of the table and their handlers, such as the stream routes.
protocol AnnalsController<Context>: Sendable {
    associatedtype Context: AnnalsRequestContext
    /// A handler for each of the controller's routes.
    var handlers: [RouteSpec.ID: RouteHandler<Context>] { get }
}

extension AnnalsController {
    /// The controller's routes, each behind an ``AuthorizationMiddleware`` made from its table entry.
    func routes(tokens: TokenCache) -> RouteCollection<Context> {
        RouteTable.collection(handlers, tokens: tokens)
    }
}

extension RouteTable {
    /// A collection with a route for each table entry that `handlers` has a handler for, at the entry's
    /// path and method, each behind an ``AuthorizationMiddleware`` made from the entry.
    static func collection<Context: AnnalsRequestContext>(
        _ handlers: [RouteSpec.ID: RouteHandler<Context>], tokens: TokenCache
    ) -> RouteCollection<Context> {
        let collection = RouteCollection(context: Context.self)
        for spec in all {
            guard let handler = handlers[spec.id] else { continue }
            let authorization = AuthorizationMiddleware<Context>(spec: spec, tokens: tokens)
            _ = collection.on(
                RouterPath(spec.path), method: spec.method,
                responder: CallbackResponder { request, context in
                    try await authorization.handle(request, context: context, next: handler)
                })
        }
        return collection
    }

    /// A collection answering `405` with `Allow` for each standard method a path of the table lacks, so
    /// the table alone decides what a path allows, under any router.
    static func methodNotAllowedRoutes<Context: RequestContext>(context: Context.Type) -> RouteCollection<Context> {
        let collection = RouteCollection(context: Context.self)
        for path in paths {
            let allowed = methods(forPath: path)
            for method in standardMethods where !allowed.contains(method) {
                _ = collection.on(
                    RouterPath(path), method: method,
                    responder: CallbackResponder { request, _ in
                        throw AnnalsHTTPError.methodNotAllowed(request.method, allowed: allowed)
                    })
            }
        }
        return collection
    }
}
