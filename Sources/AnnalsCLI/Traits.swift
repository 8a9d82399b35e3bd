import Annals

/// What this build of `annals` was compiled with: package traits keep the parts `annals serve` on the
/// file store does not need (PostgreSQL, TLS, the HTTP client) out of a first `swift run annals serve`.
enum Traits {
    /// `--postgres` (the `Postgres` trait).
    static let postgres: Bool = {
        #if Postgres
            true
        #else
            false
        #endif
    }()

    /// `--tls-cert` and `--tls-key` (the `TLS` trait).
    static let tls: Bool = {
        #if TLS
            true
        #else
            false
        #endif
    }()

    /// `--server URL` and `bench --server` (the `Client` trait).
    static let client: Bool = {
        #if Client
            true
        #else
            false
        #endif
    }()

    /// `serve --otel-endpoint` (the `OTel` trait).
    static let otel: Bool = {
        #if OTel
            true
        #else
            false
        #endif
    }()

    /// The answer to an option this build cannot serve: which trait it needs, and how to build with it.
    static func missing(_ feature: String, trait: String) -> EventStoreError {
        EventStoreError(
            .invalidArgument,
            "This annals was built without \(feature); build it with the \(trait) trait: swift run --traits \(trait) annals …"
        )
    }
}
