import Annals
import AnnalsWire
import Hummingbird

/// A request context that can carry Annals' routes: what ``AnnalsRoutes`` needs from an application's
/// own context.
///
/// An application that mounts Annals in its router adds one stored property to its context:
///
/// ```swift
/// struct AppContext: AnnalsRequestContext {
///     var coreContext: CoreRequestContextStorage
///     var annals = AnnalsContextStorage()
///     init(source: ApplicationRequestContextSource) { coreContext = .init(source: source) }
/// }
/// ```
public protocol AnnalsRequestContext: RequestContext {
    /// What Annals' middleware found out about the request: the route, the token, the stream.
    var annals: AnnalsContextStorage { get set }
}

/// What ``AuthorizationMiddleware`` stores in the context for the handler behind it.
public struct AnnalsContextStorage: Sendable {
    /// The route the request matched.
    public internal(set) var route: RouteSpec?
    /// The token that authorized the request; nil on a public route.
    public internal(set) var principal: TokenRecord?
    /// The `{stream}` of the path, percent-decoded and validated.
    public internal(set) var stream: StreamName?
    /// The `{category}` of the path, percent-decoded and validated.
    public internal(set) var category: String?
    /// The `{id}` of the path (a token id), percent-decoded.
    public internal(set) var tokenID: String?
    /// The query, percent-decoded strictly and checked against the route's parameters.
    public internal(set) var query = QueryParameters()

    /// Empty: the middleware fills it in.
    public init() {}
}

/// The request context of `annals serve`: Hummingbird's core storage and ``AnnalsContextStorage``.
public struct BasicAnnalsRequestContext: AnnalsRequestContext {
    /// Hummingbird's own per-request storage.
    public var coreContext: CoreRequestContextStorage
    /// Annals' per-request storage.
    public var annals = AnnalsContextStorage()

    /// A context for a request that arrived on `source`'s channel.
    public init(source: ApplicationRequestContextSource) {
        coreContext = CoreRequestContextStorage(source: source)
    }
}
