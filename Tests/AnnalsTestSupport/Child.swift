import Annals
import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// The `annals` binary as a child process, its standard output and error read through one pipe.
public final class Child: @unchecked Sendable {
    /// The `annals` binary built beside the tests (an .xctest bundle on macOS nests the test
    /// executable a few levels down).
    public static var binary: String {
        var directory = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
            .deletingLastPathComponent()
        while directory.pathComponents.count > 1,
            !FileManager.default.isExecutableFile(atPath: directory.appendingPathComponent("annals").path)
        {
            let parent = directory.deletingLastPathComponent()
            if parent == directory || directory.lastPathComponent == ".build" { break }
            directory = parent
        }
        return directory.appendingPathComponent("annals").path
    }

    public let pid: pid_t
    let fd: Int32
    public private(set) var output = ""
    private var exitStatus: Int32?

    /// Starts `executable` (the `annals` binary by default) with `arguments`.
    public init(executable: String = Child.binary, arguments: [String], environment: [String: String] = [:]) throws {
        let (read, write) = try Spawn.pipe()
        defer { Glibc.close(write) }
        do {
            pid = try Spawn.start(executable, arguments, environment: environment, output: .descriptor(write))
        } catch {
            Glibc.close(read)
            throw error
        }
        fd = read
    }

    deinit {
        if exitStatus == nil {
            kill(pid, SIGKILL)
            _ = wait()
        }
        Glibc.close(fd)
    }

    /// Reads output until a line contains `text` (20 s at most); returns that line.
    public func waitForLine(containing text: String) throws -> String {
        let deadline = ContinuousClock.now + .seconds(20)
        while ContinuousClock.now < deadline {
            if let line = output.split(separator: "\n").first(where: { $0.contains(text) }) { return String(line) }
            guard readSome(timeoutMilliseconds: 200) else { break }
        }
        throw EventStoreError(.unavailable, "no line with '\(text)' in: \(output)")
    }

    /// Reads what is available; false at end of output.
    @discardableResult
    public func readSome(timeoutMilliseconds: Int32) -> Bool {
        read(timeoutMilliseconds: timeoutMilliseconds) != .ended
    }

    private enum ReadResult { case some, nothing, ended }

    private func read(timeoutMilliseconds: Int32) -> ReadResult {
        var poll = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        guard Glibc.poll(&poll, 1, timeoutMilliseconds) > 0 else { return .nothing }
        var buffer = [UInt8](repeating: 0, count: 8192)
        let got = Glibc.read(fd, &buffer, buffer.count)
        guard got > 0 else { return got < 0 && errno == EINTR ? .nothing : .ended }
        output += String(decoding: buffer[0..<got], as: UTF8.self)
        return .some
    }

    public func signal(_ signal: Int32) {
        kill(pid, signal)
    }

    /// ``wait()`` off the concurrency threads.
    public func exit() async throws -> Int32 {
        try await offThread { self.wait() }
    }

    /// ``waitForLine(containing:)`` off the concurrency threads.
    public func line(containing text: String) async throws -> String {
        try await offThread { try self.waitForLine(containing: text) }
    }

    /// Waits for the exit (reading the output meanwhile, and what is left of it after); returns the
    /// exit status. The exit ends the wait, not the end of the output: a process the child started
    /// may hold the pipe open after it.
    public func wait() -> Int32 {
        if let exitStatus { return exitStatus }
        var ended = false
        while true {
            if !ended { ended = read(timeoutMilliseconds: 100) == .ended }
            if let code = Spawn.exitCode(of: pid, blocking: ended) {
                if !ended { while read(timeoutMilliseconds: 0) == .some {} }
                exitStatus = code
                return code
            }
        }
    }
}

/// Runs blocking work (waitpid, poll, read) on a thread of its own, so it never holds one of the few
/// threads Swift concurrency runs every test's tasks on.
public func offThread<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        let thread = Thread {
            continuation.resume(with: Result { try body() })
        }
        thread.start()
    }
}

extension Child {
    /// `annals serve --data data --port 0` (then `extra`), once it is serving: the child, the URL its
    /// banner names, and the first admin token it printed (nil when the store had tokens already).
    public static func serve(data: String, _ extra: [String] = []) async throws -> (
        child: Child, url: String, token: String?
    ) {
        let child = try Child(arguments: ["serve", "--data", data, "--port", "0"] + extra)
        let banner = try await child.line(containing: "serving")
        guard let url = banner.firstMatch(of: /https?:\/\/127\.0\.0\.1:\d+/).map({ String($0.0) }) else {
            throw EventStoreError(.unavailable, "annals serve printed no URL: \(child.output)")
        }
        let token = child.output.firstMatch(of: /annals_[A-Za-z0-9_-]+/).map { String($0.0) }
        return (child, url, token)
    }
}
