import Annals
import AnnalsServer
import AnnalsTestSupport
import AsyncHTTPClient
import Foundation
import NIOCore
import NIOSSL
import Testing

@testable import AnnalsCLI

@Suite("TLS, and the CLI against a server")
struct TLSAndCLITests {
    @Test("CI builds every trait, so no test here is skipped for want of one")
    func everyTraitInCI() {
        guard ProcessInfo.processInfo.environment["CI"] == "true" else { return }
        #expect(
            Traits.postgres && Traits.tls && Traits.client && Traits.otel,
            "CI runs swift test --traits Postgres,TLS,Client,OTel")
    }

    @Test("built without a trait, an option that needs it says which trait and how to build with it")
    func missingTrait() {
        let error = Traits.missing("PostgreSQL", trait: "Postgres")
        #expect(error.code == .invalidArgument)
        #expect(error.message.contains("swift run --traits Postgres annals"), "\(error.message)")
    }

    @Test(
        "with a certificate and key the server speaks HTTPS only",
        .enabled(if: FileManager.default.isExecutableFile(atPath: "/usr/bin/openssl") && Traits.tls))
    func tls() async throws {
        let directory = NSTemporaryDirectory() + "annals-tls-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let openssl = try Child(
            executable: "/usr/bin/openssl",
            arguments: [
                "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", directory + "/key.pem", "-out",
                directory + "/cert.pem", "-days", "1", "-subj", "/CN=127.0.0.1", "-addext",
                "subjectAltName=IP:127.0.0.1",
            ])
        #expect((try await openssl.exit()) == 0, "\(openssl.output)")
        var configuration = ServerConfiguration(port: 0)
        configuration.tlsCertificatePath = directory + "/cert.pem"
        configuration.tlsKeyPath = directory + "/key.pem"
        #if TLS
            let transport = try TLSTransport.make(certificate: directory + "/cert.pem", key: directory + "/key.pem")
        #else
            let transport: ServerTransport? = nil
        #endif
        try await TestServer.with(configuration: configuration, transport: transport) { server in
            var tls = TLSConfiguration.makeClientConfiguration()
            tls.trustRoots = .file(directory + "/cert.pem")
            var clientConfiguration = HTTPClient.Configuration()
            clientConfiguration.tlsConfiguration = tls
            let client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: clientConfiguration)
            defer { _ = client.shutdown() }
            let https = server.url.replacingOccurrences(of: "http://", with: "https://")
            let response = try await client.execute(HTTPClientRequest(url: https + "/health"), timeout: .seconds(10))
            #expect(response.status == .ok)
            // Plain HTTP on the TLS port gets no answer.
            await #expect(throws: (any Error).self) {
                _ = try await HTTPClient.shared.execute(
                    HTTPClientRequest(url: server.url + "/health"), timeout: .seconds(5))
            }
        }
    }

    @Test("annals token, append, read, streams, subscribe and export against a running server", .timeLimit(.minutes(2)))
    func cliAgainstServer() async throws {
        let data = NSTemporaryDirectory() + "annals-cli-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: data) }
        let (server, url, printed) = try await Child.serve(data: data)
        let admin = try #require(printed)
        let remote = ["--server", url]

        let created = try Child(
            arguments: ["token", "create", "--name", "orders", "--role", "writer", "--scope", "order-", "--json"]
                + remote
                + ["--token", admin])
        #expect((try await created.exit()) == 0, "\(created.output)")
        let writer = try #require(created.output.firstMatch(of: /annals_[A-Za-z0-9_-]+/).map { String($0.0) })
        let auth = remote + ["--token", writer]

        let appended = try Child(arguments: ["append", "order-1", "OrderPlaced", #"{"total": 12}"#, "--json"] + auth)
        #expect((try await appended.exit()) == 0, "\(appended.output)")
        let refused = try Child(arguments: ["append", "user-1", "Registered", "{}"] + auth)
        #expect((try await refused.exit()) == 2 && refused.output.contains("forbidden"), "\(refused.output)")
        let read = try Child(arguments: ["read", "order-1", "--json"] + auth)
        #expect((try await read.exit()) == 0 && read.output.contains(#""data":{"total": 12}"#), "\(read.output)")
        let streams = try Child(arguments: ["streams"] + auth)
        #expect((try await streams.exit()) == 0 && streams.output.contains("order-1"), "\(streams.output)")
        let subscribed = try Child(arguments: ["subscribe", "order-1", "--count", "1", "--json"] + auth)
        #expect((try await subscribed.exit()) == 0 && subscribed.output.contains("OrderPlaced"), "\(subscribed.output)")
        let list = try Child(arguments: ["token", "list"] + remote + ["--token", admin])
        #expect((try await list.exit()) == 0 && list.output.contains("orders") && !list.output.contains(writer))
        let exported = try Child(
            arguments: ["export", "--output", data + "/export.ndjson"] + remote + ["--token", admin])
        #expect((try await exported.exit()) == 0, "\(exported.output)")
        let lines = try String(contentsOfFile: data + "/export.ndjson", encoding: .utf8).split(separator: "\n")
        #expect(lines.count == 1 && lines[0].contains("\"position\":0"))

        // Tokens and query-string tokens never reach the log.
        _ = try await HTTPClient.shared.execute(
            HTTPClientRequest(url: url + "/streams/order-1?access_token=\(admin)"), timeout: .seconds(5))
        server.signal(SIGTERM)
        #expect((try await server.exit()) == 0)
        let mentions = server.output.components(separatedBy: admin).count - 1
        #expect(mentions == 2, "the admin token is printed in the banner and its curl hint only, not logged")
        #expect(!server.output.contains(writer), "a created token is never logged")
    }
}
