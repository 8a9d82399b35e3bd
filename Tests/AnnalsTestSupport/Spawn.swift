import Annals
import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// Starts child processes that inherit nothing but what they are given.
///
/// The tests run in one process and start children from many threads at once (`annals serve`,
/// the crash workload, `pg_ctl`, a browser). A descriptor without close-on-exec that is open while
/// another test spawns lands in that child too: a pipe's write end held by a PostgreSQL server for
/// the whole run, say, and the reader of that pipe waits for an end of file that never comes (seen
/// in CI: a SIGTERM'd `annals serve` looked as if it took 26 s to stop). So every pipe made here is
/// close-on-exec, and every child has all descriptors above its standard ones closed.
public enum Spawn {
    /// Where a child's standard output or error goes.
    public enum Target: Sendable {
        case null
        case descriptor(Int32)
        /// Created or truncated.
        case file(String)
    }

    /// A pipe whose ends are both close-on-exec.
    public static func pipe() throws -> (read: Int32, write: Int32) {
        var ends: [Int32] = [0, 0]
        guard let pipe2 = GNU.pipe2, pipe2(&ends, O_CLOEXEC) == 0 else {
            throw EventStoreError(.unavailable, "pipe2() failed: \(errno)")
        }
        return (ends[0], ends[1])
    }

    /// glibc functions Swift's Glibc module leaves out (they are declared under _GNU_SOURCE only).
    private enum GNU {
        typealias Pipe2 = @convention(c) (UnsafeMutablePointer<Int32>, Int32) -> Int32
        typealias CloseFrom = @convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, Int32) -> Int32

        static let pipe2 = symbol("pipe2", as: Pipe2.self)
        static let closeFrom = symbol("posix_spawn_file_actions_addclosefrom_np", as: CloseFrom.self)

        private static func symbol<F>(_ name: String, as type: F.Type) -> F? {
            guard let handle = dlopen(nil, RTLD_NOW), let address = dlsym(handle, name) else { return nil }
            return unsafeBitCast(address, to: type)
        }
    }

    /// Starts `executable` with `arguments` (the environment is this process's, with `environment`
    /// added). Standard input is /dev/null; `error` nil sends standard error where `output` goes;
    /// `extra` descriptors become the child's 3, 4, …; nothing else is inherited.
    public static func start(
        _ executable: String, _ arguments: [String], environment: [String: String] = [:], output: Target,
        error: Target? = nil, extra: [Int32] = []
    ) throws -> pid_t {
        let firstFree = 3 + Int32(extra.count)
        // A source numbered where another is to land would be overwritten before it is copied.
        var sources: [Int32] = []
        var copies: [Int32] = []
        defer { for copy in copies { Glibc.close(copy) } }
        for descriptor in extra {
            if descriptor < firstFree {
                let copy = fcntl(descriptor, F_DUPFD_CLOEXEC, firstFree)
                guard copy >= 0 else { throw EventStoreError(.unavailable, "fcntl(F_DUPFD) failed: \(errno)") }
                copies.append(copy)
                sources.append(copy)
            } else {
                sources.append(descriptor)
            }
        }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        func direct(_ target: Target, to number: Int32) {
            switch target {
            case .null: posix_spawn_file_actions_addopen(&actions, number, "/dev/null", O_WRONLY, 0)
            case .descriptor(let descriptor): posix_spawn_file_actions_adddup2(&actions, descriptor, number)
            case .file(let path):
                posix_spawn_file_actions_addopen(&actions, number, path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
            }
        }
        direct(output, to: 1)
        if let error { direct(error, to: 2) } else { posix_spawn_file_actions_adddup2(&actions, 1, 2) }
        for (offset, source) in sources.enumerated() {
            posix_spawn_file_actions_adddup2(&actions, source, 3 + Int32(offset))
        }
        guard let closeFrom = GNU.closeFrom, closeFrom(&actions, firstFree) == 0 else {
            throw EventStoreError(.unavailable, "posix_spawn_file_actions_addclosefrom_np is missing (glibc 2.34+)")
        }
        let argv = ([executable] + arguments).map { strdup($0) } + [nil]
        defer { for pointer in argv { free(pointer) } }
        var variables = ProcessInfo.processInfo.environment
        for (name, value) in environment { variables[name] = value }
        let envp = variables.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer { for pointer in envp { free(pointer) } }
        var pid: pid_t = 0
        let spawned = posix_spawn(&pid, executable, &actions, nil, argv, envp)
        guard spawned == 0 else { throw EventStoreError(.unavailable, "cannot start \(executable): errno \(spawned)") }
        return pid
    }

    /// Waits for `pid` to end; its exit code, or 128 + the signal that ended it.
    public static func exitCode(of pid: pid_t, blocking: Bool = true) -> Int32? {
        var status: Int32 = 0
        while true {
            let result = waitpid(pid, &status, blocking ? 0 : WNOHANG)
            if result == pid { break }
            if result == 0 { return nil }
            if errno != EINTR { return -1 }
        }
        return (status & 0x7F) == 0 ? (status >> 8) & 0xFF : 128 + (status & 0x7F)
    }
}
