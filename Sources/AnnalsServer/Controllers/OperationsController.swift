import Annals
import AnnalsWire
import HTTPTypes
import Hummingbird
import NIOCore

/// The admin console and the operations routes: `GET /`, its script and style, `/health`,
/// `/metrics`, `/head` and `/stats`.
struct OperationsController<Context: AnnalsRequestContext>: AnnalsController {
    let environment: AnnalsEnvironment

    var handlers: [RouteSpec.ID: RouteHandler<Context>] {
        [
            .adminPage: { request, _ in
                // The console's URLs are relative to its directory: under a prefix (`/es`), its page must
                // be `/es/`, so `admin/console.js` resolves to `/es/admin/console.js`.
                guard request.uri.path.hasSuffix("/") else {
                    var headers = HTTPFields()
                    headers[.location] = request.uri.path + "/"
                    return Response(status: .found, headers: headers)
                }
                return AdminPage.response()
            },
            .adminScript: { _, _ in AdminPage.scriptResponse() },
            .adminStyle: { _, _ in AdminPage.styleResponse() },
            .health: { _, _ in try await health() },
            .getMetrics: { _, _ in
                guard let exposition = environment.exposition else {
                    throw EventStoreError(
                        .routeNotFound,
                        "This server exposes no metrics here; its application sends them to its own backend.")
                }
                var headers = HTTPFields()
                headers[.contentType] = exposition.contentType
                return Response(
                    status: .ok, headers: headers,
                    body: ResponseBody(byteBuffer: ByteBuffer(bytes: exposition.render())))
            },
            .getHead: { _, _ in
                var writer = JSONWriter()
                writer.beginObject()
                writer.member("headPosition", try await environment.store.headPosition().value)
                writer.endObject()
                return AnnalsEnvironment.json(writer.bytes)
            },
            .getStats: { _, _ in try await stats() },
        ]
    }

    private func health() async throws -> Response {
        let store = environment.store
        do {
            try await store.checkHealth()
            let head = try await store.headPosition()
            return AnnalsEnvironment.json(HealthReport(status: .ok, headPosition: head).encoded())
        } catch let error as EventStoreError {
            // A failed writer is not healthy, though its reads may still answer.
            let report = HealthReport(
                status: error.code == .storeFailed ? .failed : .unavailable, code: error.code,
                message: environment.logger.publicError(error, metadata: ["path": "/health"]).message)
            return AnnalsEnvironment.json(report.encoded(), status: .serviceUnavailable)
        }
    }

    private func stats() async throws -> Response {
        let store = environment.store
        let head = try await store.headPosition()
        // The admin page polls this once a second: a count, not a walk through every stream.
        let streams = try await store.streamCount()
        let state = environment.metrics.state.withLock { $0 }
        let statistics = ServerStatistics(
            headPosition: head, streams: streams, appends: state.appends, eventsWritten: state.eventsWritten,
            bytesWritten: state.bytesWritten, liveSubscriptions: state.liveSubscriptions,
            store: String(describing: type(of: store)), version: AnnalsVersion.current,
            appendLatencyMicroseconds: environment.metrics.appendLatencyMicroseconds())
        return AnnalsEnvironment.json(statistics.encoded())
    }
}
