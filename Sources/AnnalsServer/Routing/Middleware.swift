import Annals
import AnnalsWire
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore

/// An error answer of the HTTP API: the status its code has in ``WireError/statuses``, and the JSON
/// error body (`{"error":{"code":…,"message":…}}`).
///
/// Every Annals route throws its failures as this, so an application's own middleware (metrics,
/// tracing, logging) sees the status, and Hummingbird writes the answer.
public struct AnnalsHTTPError: HTTPResponseError, Sendable {
    /// What went wrong, in the words the client gets.
    public var error: EventStoreError
    /// Headers the answer carries besides the body's: `Allow` on a 405, `WWW-Authenticate` on a 401,
    /// `Connection: close` when the connection cannot go on.
    public var headers: HTTPFields

    /// The answer for `error`.
    public init(_ error: EventStoreError, headers: HTTPFields = [:]) {
        self.error = error
        self.headers = headers
        if error.code == .unauthorized { self.headers[.wwwAuthenticate] = "Bearer realm=\"annals\"" }
    }

    /// The status of the error's code.
    public var status: HTTPResponse.Status { HTTPResponse.Status(code: WireError.status(for: error.code)) }

    /// The JSON error body with ``status`` and ``headers``.
    public func response(from request: Request, context: some RequestContext) throws -> Response {
        AnnalsEnvironment.json(WireFormat.encode(error), status: status, headers: headers)
    }
}

/// The outermost middleware of Annals' routes: turns whatever a route throws into an
/// ``AnnalsHTTPError``, counts errors by code (`annals_errors_total`), and closes the connection when
/// it cannot go on (a body timeout, broken framing, the server shutting down).
struct AnnalsErrorMiddleware<Context: RequestContext>: RouterMiddleware {
    let environment: AnnalsEnvironment

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response)
        async throws -> Response
    {
        do {
            try AnnalsEnvironment.requireHost(request)
            var response = try await next(request, context)
            if Task.isShuttingDownGracefully { response.headers[.connection] = "close" }
            return response
        } catch {
            let answer = environment.httpError(for: error, request: request)
            environment.metrics.error(answer.error.code)
            throw answer
        }
    }
}

/// Checks what a route of the table asks of a request, in the documented order, before its handler
/// runs: the query parameters, the path's names, then (unless the route is public) the bearer token,
/// its role and its scopes. What it finds goes into the context's ``AnnalsContextStorage``.
struct AuthorizationMiddleware<Context: AnnalsRequestContext>: RouterMiddleware {
    let spec: RouteSpec
    let tokens: TokenCache

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response)
        async throws -> Response
    {
        var context = context
        try await authorize(request, parameters: context.parameters, into: &context.annals)
        return try await next(request, context)
    }

    func authorize(_ request: Request, parameters: Parameters, into storage: inout AnnalsContextStorage)
        async throws
    {
        storage.route = spec
        // 1. The query: a typo is an error rather than a silent default.
        if case .allowed(let names) = spec.query {
            let target = try QueryParameters(parsing: request.uri.query)
            try target.allowOnly(names)
            storage.query = target
        }
        // 2. The names in the path: a bad one is a 400 before any 401.
        if let raw = parameters.get("stream") {
            storage.stream = try StreamName(allowingSystemName: QueryParameters.percentDecode(raw[...], what: "path"))
        }
        if let raw = parameters.get("category") {
            storage.category = try AnnalsEnvironment.category(QueryParameters.percentDecode(raw[...], what: "path"))
        }
        if let raw = parameters.get("id") {
            storage.tokenID = try QueryParameters.percentDecode(raw[...], what: "path")
        }
        guard case .atLeast(var role) = spec.access else { return }
        // 3. The token: a header, or `access_token` on a GET (EventSource cannot send headers).
        var token: String?
        if let header = request.headers[.authorization] {
            let parts = header.split(separator: " ", maxSplits: 1)
            guard parts.count == 2, parts[0].lowercased() == "bearer" else {
                throw EventStoreError(.unauthorized, "The Authorization header must be 'Bearer <token>'.")
            }
            token = parts[1].trimmingCharacters(in: .whitespaces)
        } else if request.method == .get {
            token = storage.query["access_token"]
        }
        guard let token, !token.isEmpty else {
            throw EventStoreError(.unauthorized, "This route needs a bearer token (Authorization: Bearer <token>).")
        }
        guard let record = try await tokens.record(for: token) else {
            throw EventStoreError(.unauthorized, "The token is not known (revoked, or never issued here).")
        }
        // 4. The role, and 5. the scopes.
        if spec.scope == .category, storage.category?.hasPrefix("$") == true { role = .admin }
        guard record.role >= role else {
            throw EventStoreError(
                .forbidden, "This route needs the \(role.rawValue) role; the token has \(record.role.rawValue).")
        }
        switch spec.scope {
        case .stream:
            if let stream = storage.stream {
                if stream.isSystem, record.role != .admin {
                    throw EventStoreError(.forbidden, "System streams need the admin role.")
                }
                guard record.covers(stream) else {
                    throw EventStoreError(.forbidden, "The token's scopes do not cover stream '\(stream)'.")
                }
            }
        case .category:
            if let category = storage.category { _ = try record.categoryAccess(category) }
        case .none, .filteredListing:
            break
        }
        storage.principal = record
    }
}

/// One log line per request, after it is answered: method, path (never the query, which may carry a
/// token), route, status and milliseconds; at `debug`, or at `warning` when the server failed (5xx).
///
/// `annals serve` adds it to its router; an application that mounts ``AnnalsRoutes`` may add it to its
/// own (it works with any request context).
public struct RequestLogMiddleware<Context: RequestContext>: RouterMiddleware {
    /// A middleware that logs to each request's logger (`context.logger`).
    public init() {}

    /// Answers the request through `next`, then logs it.
    public func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response)
        async throws -> Response
    {
        let started = ContinuousClock.now
        do {
            let response = try await next(request, context)
            log(request, context, status: response.status.code, since: started)
            return response
        } catch {
            log(request, context, status: (error as? any HTTPResponseError)?.status.code ?? 500, since: started)
            throw error
        }
    }

    private func log(_ request: Request, _ context: Context, status: Int, since started: ContinuousClock.Instant) {
        // swift-log builds the metadata only when the level is on.
        context.logger.log(
            level: status >= 500 ? .warning : .debug, "request",
            metadata: [
                "method": "\(request.method.rawValue)", "path": "\(request.uri.path)",
                "route": "\(context.endpointPath ?? "unknown")", "status": "\(status)",
                "ms": "\((ContinuousClock.now - started) / .milliseconds(1))",
            ])
    }
}

/// What `annals serve` answers outside its routes: a JSON `route-not-found`, or `405` with `Allow` for a
/// method no route of the path has (the collection answers the standard methods itself; this covers
/// any other), and `400` for a request without `Host`.
///
/// It sits before the HTTP metrics and refuses a method outside the standard ones before they see it:
/// a client may send any token as a method, and each would otherwise become a new labelled series.
struct FallbackMiddleware<Context: RequestContext>: RouterMiddleware {
    let environment: AnnalsEnvironment

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response)
        async throws -> Response
    {
        do {
            try AnnalsEnvironment.requireHost(request)
            guard RouteTable.standardMethods.contains(request.method) else { throw HTTPError(.notFound) }
            return try await next(request, context)
        } catch let error as AnnalsHTTPError {
            throw error
        } catch {
            var answer = environment.httpError(for: error, request: request)
            if answer.error.code == .routeNotFound {
                let segments = request.uri.path.split(separator: "/")
                let allowed = RouteTable.methods(matching: segments)
                if !allowed.isEmpty {
                    answer = AnnalsHTTPError.methodNotAllowed(request.method, allowed: allowed)
                }
            }
            environment.metrics.error(answer.error.code)
            throw answer
        }
    }
}

extension AnnalsHTTPError {
    /// `405 method-not-allowed` with `Allow` listing `allowed`.
    static func methodNotAllowed(_ method: HTTPRequest.Method, allowed: [HTTPRequest.Method]) -> AnnalsHTTPError {
        let names = allowed.map(\.rawValue).joined(separator: ", ")
        var headers = HTTPFields()
        headers[.allow] = names
        return AnnalsHTTPError(
            EventStoreError(.methodNotAllowed, "\(method.rawValue) is not allowed here; use \(names)."),
            headers: headers)
    }
}
