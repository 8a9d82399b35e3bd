// swift-tools-version: 6.2
import PackageDescription

let package = Package(
    name: "annals",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "Annals", targets: ["Annals"]),
        .library(name: "AnnalsTesting", targets: ["AnnalsTesting"]),
        .library(name: "AnnalsFileStore", targets: ["AnnalsFileStore"]),
        .library(name: "AnnalsPostgres", targets: ["AnnalsPostgres"]),
        .library(name: "AnnalsServer", targets: ["AnnalsServer"]),
        .library(name: "AnnalsClient", targets: ["AnnalsClient"]),
        .library(name: "AnnalsWire", targets: ["AnnalsWire"]),
        .executable(name: "annals", targets: ["AnnalsCLI"]),
        .executable(name: "orders-example", targets: ["OrdersExample"]),
        .executable(name: "bank-example", targets: ["BankExample"]),
        .executable(name: "readme-example", targets: ["ReadmeExample"]),
        .executable(name: "embedded-server-example", targets: ["EmbeddedServerExample"]),
    ],
    traits: [
        .trait(
            name: "Postgres", description: "annals serve --postgres and the other commands' --postgres (postgres-nio)."),
        .trait(name: "TLS", description: "annals serve --tls-cert and --tls-key (HummingbirdTLS, NIOSSL)."),
        .trait(
            name: "Client",
            description: "The commands' --server URL and bench --server (AnnalsClient, AsyncHTTPClient)."),
        .trait(
            name: "OTel", description: "annals serve --otel-endpoint: traces and metrics over OTLP/HTTP (swift-otel)."),
        .default(enabledTraits: []),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/vapor/postgres-nio", from: "1.33.2"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1", traits: []),
        .package(url: "https://github.com/swift-server/async-http-client", from: "1.37.0"),
        .package(url: "https://github.com/apple/swift-async-algorithms", from: "1.1.4"),
        .package(url: "https://github.com/apple/swift-http-types", from: "1.8.0"),
        .package(url: "https://github.com/apple/swift-nio-extras", from: "1.35.2"),
        .package(url: "https://github.com/apple/swift-nio-ssl", from: "2.37.6"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        .package(url: "https://github.com/apple/swift-distributed-tracing", from: "1.7.3"),
        // OTLP over HTTP only, and only with Annals' OTel trait (its default gRPC exporter is not built).
        .package(
            url: "https://github.com/swift-otel/swift-otel", from: "1.6.0",
            traits: [.trait(name: "OTLPHTTP", condition: .when(traits: ["OTel"]))]),
    ],
    targets: [
        .target(
            name: "Annals",
            dependencies: [
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Tracing", package: "swift-distributed-tracing"),
                .product(name: "Instrumentation", package: "swift-distributed-tracing"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        .target(
            name: "AnnalsTesting",
            dependencies: ["Annals"]
        ),
        .target(name: "CAnnalsCRC32C"),
        .target(
            name: "AnnalsFileStore",
            dependencies: [
                "Annals",
                "CAnnalsCRC32C",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
            ]
        ),
        .target(
            name: "AnnalsPostgres",
            dependencies: [
                "Annals", "AnnalsWire",
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        .target(name: "AnnalsWire", dependencies: ["Annals"]),
        .target(
            name: "AnnalsServer",
            dependencies: [
                "Annals", "AnnalsWire",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "AsyncAlgorithms", package: "swift-async-algorithms"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOHTTPTypes", package: "swift-nio-extras"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Tracing", package: "swift-distributed-tracing"),
                .product(name: "Instrumentation", package: "swift-distributed-tracing"),
            ]
        ),
        .target(
            name: "AnnalsClient",
            dependencies: [
                "Annals", "AnnalsWire",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Tracing", package: "swift-distributed-tracing"),
            ]
        ),
        .executableTarget(
            name: "AnnalsCLI",
            dependencies: [
                "Annals",
                "AnnalsFileStore",
                "AnnalsServer",
                "AnnalsWire",
                // What `annals serve` on the file store does not need is behind a trait, so the README's
                // first `swift run annals serve` compiles neither TLS nor the PostgreSQL driver nor an
                // HTTP client (docs/DESIGN.md §10, the cold build).
                .target(name: "AnnalsPostgres", condition: .when(traits: ["Postgres"])),
                .product(name: "PostgresNIO", package: "postgres-nio", condition: .when(traits: ["Postgres"])),
                .target(name: "AnnalsClient", condition: .when(traits: ["Client"])),
                .product(name: "AsyncHTTPClient", package: "async-http-client", condition: .when(traits: ["Client"])),
                .product(name: "HummingbirdTLS", package: "hummingbird", condition: .when(traits: ["TLS"])),
                .product(name: "NIOSSL", package: "swift-nio-ssl", condition: .when(traits: ["TLS"])),
                .product(name: "OTel", package: "swift-otel", condition: .when(traits: ["OTel"])),
                .product(name: "Tracing", package: "swift-distributed-tracing"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .executableTarget(name: "OrdersExample", dependencies: ["Annals"], path: "Examples/Orders"),
        .executableTarget(name: "BankExample", dependencies: ["Annals"], path: "Examples/Bank"),
        .executableTarget(name: "ReadmeExample", dependencies: ["Annals"], path: "Examples/Readme"),
        .executableTarget(
            name: "EmbeddedServerExample",
            dependencies: [
                "Annals", "AnnalsFileStore", "AnnalsServer", "AnnalsClient", "AnnalsWire",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            path: "Examples/EmbeddedServer"
        ),
        .testTarget(
            name: "AnnalsTests",
            dependencies: ["Annals", "AnnalsTesting"]
        ),
        .testTarget(
            name: "AnnalsFileStoreTests",
            dependencies: [
                "Annals", "AnnalsTesting", "AnnalsFileStore", "AnnalsCLI", "AnnalsTestSupport", "AnnalsServer",
                "AnnalsWire",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .testTarget(
            name: "AnnalsPostgresTests",
            dependencies: [
                "Annals", "AnnalsTesting", "AnnalsPostgres", "AnnalsFileStore", "AnnalsCLI", "AnnalsTestSupport",
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .target(name: "AnnalsTestSupport", dependencies: ["Annals"], path: "Tests/AnnalsTestSupport"),
        .testTarget(
            name: "AnnalsServerTests",
            dependencies: [
                "Annals", "AnnalsTesting", "AnnalsServer", "AnnalsClient", "AnnalsWire", "AnnalsCLI",
                "AnnalsTestSupport",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ]
        ),
        .testTarget(
            name: "ExamplesTests",
            dependencies: [
                "OrdersExample", "BankExample", "EmbeddedServerExample", "Annals", "AnnalsTesting", "AnnalsServer",
                "AnnalsClient",
                "AnnalsWire",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "InMemoryTracing", package: "swift-distributed-tracing"),
                .product(name: "Tracing", package: "swift-distributed-tracing"),
            ]
        ),
    ],
    swiftLanguageModes: [.v6]
)
