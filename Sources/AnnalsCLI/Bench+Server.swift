import Annals
import AnnalsClient
import AnnalsFileStore
import AnnalsServer
import AsyncHTTPClient
import Foundation
import Logging

extension BenchScenarios {
    /// Runs a server on a fresh file store in `directory` and measures it through `RemoteEventStore`:
    /// one client appending one event at a time, 64 concurrent clients, and SSE delivery latency.
    func overHTTP(directory: String) async throws -> BenchResults.HTTPResults {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let registry = FileTokenRegistry(path: directory + "/tokens.json")
        let token = try await registry.create(name: "bench", role: .admin, scopes: []).token
        var client = HTTPClient.Configuration()
        client.connectionPool = .init(idleTimeout: .seconds(60), concurrentHTTP1ConnectionsPerHostSoftLimit: 80)
        let http = HTTPClient(eventLoopGroupProvider: .singleton, configuration: client)
        let results: BenchResults.HTTPResults
        do {
            results = try await FileEventStore.withStore(at: directory + "/store", configuration: quiet) { store in
                let server = try AnnalsServer(
                    store: store, tokens: registry,
                    configuration: ServerConfiguration(port: 0, subscriptionsPerToken: 128),
                    logger: Logger(label: "bench", factory: { _ in SwiftLogNoOpLogHandler() }))
                let (ports, portSignal) = AsyncStream.makeStream(of: Int.self)
                return try await withThrowingTaskGroup(of: BenchResults.HTTPResults?.self) { group in
                    group.addTask {
                        try await server.run { portSignal.yield($0) }
                        return nil
                    }
                    var iterator = ports.makeAsyncIterator()
                    guard let port = await iterator.next() else {
                        throw EventStoreError(.unavailable, "The bench server did not start.")
                    }
                    let remote = try RemoteEventStore(url: "http://127.0.0.1:\(port)", token: token, client: http)
                    let single = try await singleAppends(on: remote)
                    let concurrent = try await concurrent(remote, writers: 64)
                    let (p50, p99) = try await subscriptionLatency(on: remote, samples: 300)
                    group.cancelAll()
                    return BenchResults.HTTPResults(
                        singleAppends: single, concurrentAppends: concurrent, subscriptionP50Microseconds: p50,
                        subscriptionP99Microseconds: p99)
                }
            }
        } catch {
            try? await http.shutdown()
            throw error
        }
        try await http.shutdown()
        return results
    }
}
