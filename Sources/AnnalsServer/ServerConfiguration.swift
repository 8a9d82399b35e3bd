import Annals

/// How `annals serve` listens and what it accepts.
public struct ServerConfiguration: Sendable {
    /// The address to listen on: a host name, or an IPv4 or IPv6 address. Without TLS, `annals serve`
    /// accepts only a loopback one (see ``isLoopback``) unless told `--insecure`.
    public var host: String
    /// The TCP port, 0 to 65535; 0 lets the system pick a free one, which
    /// ``AnnalsServer/run(onListening:)`` reports.
    public var port: Int
    /// PEM files for TLS; both or neither.
    public var tlsCertificatePath: String?
    /// The PEM file of the private key for ``tlsCertificatePath``; both or neither.
    public var tlsKeyPath: String?
    /// The largest request body accepted (413 beyond it).
    public var maximumBodyBytes: Int
    /// The deepest JSON nesting accepted in a body.
    public var maximumJSONDepth: Int
    /// The largest `limit` of a JSON page; NDJSON reads stream without this bound.
    public var maximumPageSize: Int
    /// The page size when a read gives no `limit`.
    public var defaultPageSize: Int
    /// Live subscriptions one token may hold at once (429 beyond it).
    public var subscriptionsPerToken: Int
    /// Streaming (NDJSON) reads one token may hold open at once (429 beyond it).
    public var streamingReadsPerToken: Int
    /// About how many bytes of events a streaming read holds at a time: its pages shrink as its events
    /// grow, down to one event per page, so a reader that stops reading holds at most this much
    /// (or one event, when a single event is larger).
    public var streamingReadBufferBytes: Int
    /// How often an idle subscription sends an SSE comment so proxies keep it open.
    public var keepAliveInterval: Duration
    /// How long a connection may sit without a complete request head: idle between requests, or
    /// sending its headers slowly. Past it the connection is closed. (A request being answered, a
    /// subscription included, is never idle.)
    public var idleTimeout: Duration
    /// How long a request's whole body may take to arrive. Past it the answer is 408 and the connection
    /// is closed: a body trickled a byte at a time keeps the connection from ever being idle.
    public var bodyTimeout: Duration

    /// A configuration with the defaults of `annals serve`: `127.0.0.1:2113` without TLS, bodies up to
    /// 16 MiB and 64 levels of JSON, pages of 100 (at most 4,096), 32 subscriptions and 8 streaming reads
    /// per token, 1 MiB per streaming read, keep-alives every 15 s, idle and body timeouts of 30 s.
    public init(
        host: String = "127.0.0.1",
        port: Int = 2113,
        tlsCertificatePath: String? = nil,
        tlsKeyPath: String? = nil,
        maximumBodyBytes: Int = 16 << 20,
        maximumJSONDepth: Int = 64,
        maximumPageSize: Int = 4_096,
        defaultPageSize: Int = 100,
        subscriptionsPerToken: Int = 32,
        streamingReadsPerToken: Int = 8,
        streamingReadBufferBytes: Int = 1 << 20,
        keepAliveInterval: Duration = .seconds(15),
        idleTimeout: Duration = .seconds(30),
        bodyTimeout: Duration = .seconds(30)
    ) {
        self.host = host
        self.port = port
        self.tlsCertificatePath = tlsCertificatePath
        self.tlsKeyPath = tlsKeyPath
        self.maximumBodyBytes = maximumBodyBytes
        self.maximumJSONDepth = maximumJSONDepth
        self.maximumPageSize = maximumPageSize
        self.defaultPageSize = defaultPageSize
        self.subscriptionsPerToken = subscriptionsPerToken
        self.streamingReadsPerToken = streamingReadsPerToken
        self.streamingReadBufferBytes = streamingReadBufferBytes
        self.keepAliveInterval = keepAliveInterval
        self.idleTimeout = idleTimeout
        self.bodyTimeout = bodyTimeout
    }

    /// Whether `host` only accepts connections from this machine.
    public var isLoopback: Bool {
        ["127.0.0.1", "localhost", "::1"].contains(host) || host.hasPrefix("127.")
    }
}
