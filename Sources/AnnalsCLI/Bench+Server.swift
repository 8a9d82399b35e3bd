import Annals
import Foundation

#if Client
    import AnnalsClient
    import AsyncHTTPClient
#endif

#if canImport(Glibc)
    import Glibc
#endif

#if Client
    extension BenchScenarios {
        /// Runs `annals serve` — this very binary, as a child process, the composition users run — on a fresh
        /// file store in `directory`, and measures it through `RemoteEventStore`: one client appending one
        /// event at a time, 64 concurrent clients, SSE delivery latency, and (with `soak`) a long run.
        func overHTTP(directory: String, soak: SoakScenario?) async throws -> BenchResults.HTTPResults {
            let server = try await ServedChild.start(data: directory)
            do {
                let results = try await overHTTP(server)
                var soakResult: SoakScenario.Result?
                if let soak {
                    // A server of its own: the soak's first tenth must not inherit the scenarios' events.
                    let soakServer = try await ServedChild.start(data: directory + "-soak")
                    do {
                        soakResult = try await soak.run(
                            url: soakServer.url, token: soakServer.token, serverPID: soakServer.pid)
                    } catch {
                        await soakServer.stop()
                        throw error
                    }
                    await soakServer.stop()
                }
                await server.stop()
                var combined = results
                combined.soak = soakResult
                return combined
            } catch {
                await server.stop()
                throw error
            }
        }

        private func overHTTP(_ server: ServedChild) async throws -> BenchResults.HTTPResults {
            var client = HTTPClient.Configuration()
            client.connectionPool = .init(idleTimeout: .seconds(60), concurrentHTTP1ConnectionsPerHostSoftLimit: 80)
            let http = HTTPClient(eventLoopGroupProvider: .singleton, configuration: client)
            do {
                let remote = try RemoteEventStore(url: server.url, token: server.token, client: http)
                var usage = ProcessUsage.of(server.pid)
                let single = try await singleAppends(on: remote)
                let singleCPU = Self.cpuPerRequest(server, since: &usage, requests: single.eventsPerSecond * seconds)
                let concurrent = try await concurrent(remote, writers: 64)
                let concurrentCPU = Self.cpuPerRequest(
                    server, since: &usage, requests: concurrent.eventsPerSecond * seconds)
                let (p50, p99) = try await subscriptionLatency(on: remote, samples: 300)
                try await http.shutdown()
                return BenchResults.HTTPResults(
                    singleAppends: single, concurrentAppends: concurrent, subscriptionP50Microseconds: p50,
                    subscriptionP99Microseconds: p99, singleAppendServerCPUMicroseconds: singleCPU,
                    concurrentAppendServerCPUMicroseconds: concurrentCPU)
            } catch {
                try? await http.shutdown()
                throw error
            }
        }

        /// The server's CPU time since `usage` per request (and `usage` moved on to now).
        private static func cpuPerRequest(_ server: ServedChild, since usage: inout ProcessUsage?, requests: Double)
            -> Double?
        {
            let now = ProcessUsage.of(server.pid)
            defer { usage = now }
            guard let before = usage, let now, requests > 0 else { return nil }
            return (now.cpuSeconds - before.cpuSeconds) * 1e6 / requests
        }
    }
#endif

/// `annals serve` started from this binary as a child process, on a fresh data directory and a free port:
/// its URL and the first admin token, both read from what it prints.
struct ServedChild {
    let process: Process
    let url: String
    let token: String
    var pid: pid_t { process.processIdentifier }

    static func start(data: String, arguments: [String] = []) async throws -> ServedChild {
        let binary =
            (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe"))
            ?? CommandLine.arguments[0]
        let outputPath = data + ".serve-output"
        guard FileManager.default.createFile(atPath: outputPath, contents: nil) else {
            throw EventStoreError(.unavailable, "Cannot create \(outputPath).")
        }
        let output = try FileHandle(forWritingTo: URL(fileURLWithPath: outputPath))
        defer { try? output.close() }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: binary)
        process.arguments = ["serve", "--data", data, "--port", "0"] + arguments
        process.standardOutput = output
        process.standardError = output
        process.standardInput = FileHandle.nullDevice
        try process.run()
        let deadline = ContinuousClock.now.advanced(by: .seconds(60))
        while ContinuousClock.now < deadline {
            let printed = (try? String(contentsOfFile: outputPath, encoding: .utf8)) ?? ""
            if let banner = printed.split(separator: "\n").first(where: { $0.contains(" serving ") }),
                let url = banner.firstMatch(of: /https?:\/\/127\.0\.0\.1:\d+/).map({ String($0.0) })
            {
                guard let token = printed.firstMatch(of: /annals_[A-Za-z0-9_-]+/).map({ String($0.0) }) else {
                    process.terminate()
                    throw EventStoreError(.unavailable, "annals serve printed no admin token: \(printed)")
                }
                return ServedChild(process: process, url: url, token: token)
            }
            guard process.isRunning else {
                throw EventStoreError(.unavailable, "annals serve stopped before serving: \(printed)")
            }
            try await Task.sleep(for: .milliseconds(50))
        }
        process.terminate()
        throw EventStoreError(.unavailable, "annals serve did not start within 60 s.")
    }

    /// SIGTERM, then the wait for a graceful stop (SIGKILL after 30 s).
    func stop() async {
        guard process.isRunning else { return }
        process.terminate()
        let deadline = ContinuousClock.now.advanced(by: .seconds(30))
        while process.isRunning, ContinuousClock.now < deadline {
            try? await Task.sleep(for: .milliseconds(20))
        }
        if process.isRunning { kill(pid, SIGKILL) }
    }
}
