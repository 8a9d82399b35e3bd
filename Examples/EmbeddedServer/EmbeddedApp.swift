import Annals
import AnnalsServer
import AnnalsWire
import HTTPTypes
import Hummingbird
import Logging

/// The application's own request context. To carry Annals' routes it adds one stored property,
/// `annals`, and conforms to `AnnalsRequestContext`; everything else is the application's.
struct AppContext: AnnalsRequestContext {
    var coreContext: CoreRequestContextStorage
    var annals = AnnalsContextStorage()

    init(source: ApplicationRequestContextSource) {
        coreContext = CoreRequestContextStorage(source: source)
    }
}

/// The application's own middleware: it wraps its routes and Annals' alike (here it only signs every
/// answer, so a test can see that it ran).
struct AppHeaderMiddleware<Context: RequestContext>: RouterMiddleware {
    static var name: HTTPField.Name { HTTPField.Name("X-Served-By")! }

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response)
        async throws -> Response
    {
        do {
            var response = try await next(request, context)
            response.headers[Self.name] = "embedded-server-example"
            return response
        } catch let error as any HTTPResponseError {
            // An error answer (Annals' JSON errors, the router's 404) is signed too.
            var response = try error.response(from: request, context: context)
            response.headers[Self.name] = "embedded-server-example"
            return response
        }
    }
}

/// An application with routes of its own (`GET /hello`) and Annals' whole HTTP API under `/es`.
///
/// - Parameters:
///   - store: the event store Annals serves (the example opens a file store).
///   - tokens: where Annals' bearer tokens are kept.
///   - host: the address to listen on.
///   - port: the port; 0 lets the system choose (see `onListening`).
///   - logger: the application's logger; Annals logs to the same one.
///   - onListening: called with the bound port once the server accepts connections.
func buildApplication(
    store: any EventStore,
    tokens: any TokenRegistry,
    host: String = "127.0.0.1",
    port: Int,
    logger: Logger,
    onListening: @escaping @Sendable (Int) async -> Void = { _ in }
) -> some ApplicationProtocol {
    let router = Router(context: AppContext.self)
    router.add(middleware: AppHeaderMiddleware())
    router.add(middleware: RequestLogMiddleware())
    router.get("/hello") { _, _ in "Hello from the application; its events are under /es.\n" }
    let annals = AnnalsRoutes(store: store, tokens: tokens, logger: logger)
    router.addRoutes(annals.collection(context: AppContext.self), atPath: "/es")
    return Application(
        router: router,
        configuration: .init(address: .hostname(host, port: port)),
        onServerRunning: { channel in await onListening(channel.localAddress?.port ?? port) },
        logger: logger)
}
