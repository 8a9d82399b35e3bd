import AnnalsTestSupport
import Foundation
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// A throwaway PostgreSQL server for the tests: `initdb` into a temporary directory and `pg_ctl start` on
/// a free port, or the server named by `ANNALS_POSTGRES_URL`.
///
/// PostgreSQL refuses to run as root; as root the server runs as the `postgres` system user (Debian's
/// package creates it). When neither binaries nor a URL are available, `PostgresTestServer.shared`
/// is nil and the suites say so; under `CI=true` that is a failure.
final class PostgresTestServer: Sendable {
    let directory: String
    let port: Int
    let binaries: String
    var url: String { "postgres://postgres@127.0.0.1:\(port)/postgres" }

    /// The server every suite shares, started on first use; nil when PostgreSQL is not available.
    static let shared: Result<String, Failure> = {
        if let url = ProcessInfo.processInfo.environment["ANNALS_POSTGRES_URL"], !url.isEmpty { return .success(url) }
        do {
            let server = try PostgresTestServer()
            try server.start()
            atexit { PostgresTestServer.stopAll() }
            return .success(server.url)
        } catch let failure as Failure {
            return .failure(failure)
        } catch {
            return .failure(Failure(description: "\(error)"))
        }
    }()

    /// Why no server could be started.
    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    private static let started = Mutex<[PostgresTestServer]>([])

    /// Stops every server this process started. Runs at exit, where Foundation's `Process` cannot be
    /// used: plain `system(3)`.
    static func stopAll() {
        for server in started.withLock({ $0 }) {
            let prefix = getuid() == 0 ? "/usr/sbin/runuser -u postgres -- " : ""
            _ = system(
                "\(prefix)\(server.binaries)/pg_ctl -D \(server.directory)/data -m immediate -w stop >/dev/null 2>&1")
            _ = system("rm -rf \(server.directory)")
        }
    }

    /// Finds the binaries, creates a cluster and picks a port (does not start it).
    init() throws {
        guard let binaries = Self.findBinaries() else {
            throw Failure(
                description: "no PostgreSQL server binaries (initdb, pg_ctl) on PATH or under /usr/lib/postgresql")
        }
        self.binaries = binaries
        directory = NSTemporaryDirectory() + "annals-pg-\(UUID().uuidString.prefix(8))"
        port = try Self.freePort()
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        if getuid() == 0 { try Self.run("/bin/chown", ["-R", "postgres:postgres", directory]) }
        try runAsServerUser(
            binaries + "/initdb",
            ["-D", directory + "/data", "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync", "--locale=C"]
        )
        Self.started.withLock { $0.append(self) }
    }

    func start() throws {
        try runAsServerUser(
            binaries + "/pg_ctl",
            [
                "-D", directory + "/data", "-l", directory + "/server.log", "-w", "-t", "60", "-o",
                "-p \(port) -k \(directory) -c listen_addresses=127.0.0.1 -c max_connections=1000 -c shared_buffers=64MB",
                "start",
            ]
        )
    }

    /// Stops (SIGSTOP) the postmaster, then every process it started, and waits until all of them
    /// are stopped; returns their pids (SIGCONT them to go on).
    func freeze() throws -> [pid_t] {
        let text = try String(contentsOfFile: directory + "/data/postmaster.pid", encoding: .utf8)
        guard let line = text.split(separator: "\n").first, let postmaster = pid_t(line) else {
            throw Failure(description: "postmaster.pid has no pid: \(text)")
        }
        var stopped: [pid_t] = []
        func stop(_ pid: pid_t) throws {
            kill(pid, SIGSTOP)
            stopped.append(pid)
            for _ in 0..<250 where Self.state(of: pid) != "T" && Self.state(of: pid) != "gone" { usleep(2_000) }
            guard ["T", "gone"].contains(Self.state(of: pid)) else {
                throw Failure(description: "process \(pid) did not stop: \(Self.state(of: pid))")
            }
        }
        do {
            try stop(postmaster)
            while true {
                let running = Self.children(of: postmaster).filter { !stopped.contains($0) }
                if running.isEmpty { return stopped }
                for pid in running { try stop(pid) }
            }
        } catch {
            for pid in stopped { kill(pid, SIGCONT) }
            throw error
        }
    }

    /// The processes whose parent is `parent` (from /proc).
    static func children(of parent: pid_t) -> [pid_t] {
        var found: [pid_t] = []
        for entry in (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? [] {
            guard let pid = pid_t(entry),
                let stat = try? String(contentsOfFile: "/proc/\(entry)/stat", encoding: .utf8),
                let close = stat.lastIndex(of: ")")
            else { continue }
            // pid (comm) state ppid …
            let fields = stat[stat.index(after: close)...].split(separator: " ")
            if fields.count > 1, pid_t(fields[1]) == parent { found.append(pid) }
        }
        return found
    }

    /// The state letter of a process (R, S, T for stopped, …), or "gone".
    static func state(of pid: pid_t) -> String {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
            let close = stat.lastIndex(of: ")")
        else { return "gone" }
        return stat[stat.index(after: close)...].split(separator: " ").first.map(String.init) ?? "gone"
    }

    /// Stops the server; `immediate` is a crash (no checkpoint, recovery on restart).
    func stop(mode: String = "fast") {
        try? runAsServerUser(binaries + "/pg_ctl", ["-D", directory + "/data", "-m", mode, "-w", "stop"])
    }

    func remove() {
        stop(mode: "immediate")
        try? FileManager.default.removeItem(atPath: directory)
        Self.started.withLock { $0.removeAll { $0 === self } }
    }

    private func runAsServerUser(_ command: String, _ arguments: [String]) throws {
        if getuid() == 0 {
            try Self.run("/usr/sbin/runuser", ["-u", "postgres", "--", command] + arguments)
        } else {
            try Self.run(command, arguments)
        }
    }

    /// Runs a command to completion, its output going to a file.
    ///
    /// Not Foundation's `Process`: `pg_ctl start` leaves a daemon behind, and `Process` on Linux was
    /// seen to miss the command's exit then and wait forever. ``Spawn`` also keeps the daemon from
    /// inheriting other tests' pipes (it would hold them open until the end of the run).
    private static func run(_ command: String, _ arguments: [String]) throws {
        let outputPath = NSTemporaryDirectory() + "annals-pg-output-\(UUID().uuidString.prefix(8))"
        defer { try? FileManager.default.removeItem(atPath: outputPath) }
        let pid: pid_t
        do {
            pid = try Spawn.start(command, arguments, output: .file(outputPath))
        } catch {
            throw Failure(description: "\(error)")
        }
        let code = Spawn.exitCode(of: pid)
        guard code == 0 else {
            let text = (try? String(contentsOfFile: outputPath, encoding: .utf8)) ?? ""
            throw Failure(
                description: "\(command) \(arguments.joined(separator: " ")) failed (\(code ?? -1)): \(text)")
        }
    }

    private static func findBinaries() -> String? {
        let versions = (try? FileManager.default.contentsOfDirectory(atPath: "/usr/lib/postgresql")) ?? []
        for version in versions.sorted(by: { (Int($0) ?? 0) > (Int($1) ?? 0) }) {
            let path = "/usr/lib/postgresql/\(version)/bin"
            if FileManager.default.isExecutableFile(atPath: path + "/initdb") { return path }
        }
        for directory in (ProcessInfo.processInfo.environment["PATH"] ?? "").split(separator: ":") {
            let path = String(directory)
            if FileManager.default.isExecutableFile(atPath: path + "/initdb"),
                FileManager.default.isExecutableFile(atPath: path + "/pg_ctl")
            {
                return path
            }
        }
        return nil
    }

    private static func freePort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw Failure(description: "socket() failed") }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = 0
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard bound == 0 else { throw Failure(description: "bind() failed") }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let named = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        guard named == 0 else { throw Failure(description: "getsockname() failed") }
        return Int(UInt16(bigEndian: address.sin_port))
    }
}

/// Whether the PostgreSQL suites can run; they report themselves skipped in plain words when not.
enum PostgresAvailability {
    static var url: String? {
        if case .success(let url) = PostgresTestServer.shared { return url }
        return nil
    }

    static var reason: String {
        switch PostgresTestServer.shared {
        case .success: "PostgreSQL is available"
        case .failure(let failure):
            "PostgreSQL is not available (\(failure)); set ANNALS_POSTGRES_URL or install the server"
        }
    }

    static var isCI: Bool { ProcessInfo.processInfo.environment["CI"] == "true" }

    /// Whether the tests can start servers of their own (not only use ANNALS_POSTGRES_URL).
    static var canStartServers: Bool {
        url != nil && ProcessInfo.processInfo.environment["ANNALS_POSTGRES_URL"].map(\.isEmpty) ?? true
    }
}
