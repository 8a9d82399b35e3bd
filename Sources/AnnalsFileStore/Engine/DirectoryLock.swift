import Annals
import Synchronization

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// An exclusive lock on a store directory: one process at a time.
///
/// `flock` on `annals.lock`, which also holds the owner's pid so a second opener can say who holds it.
/// The kernel drops the lock when the process dies, so a crash never leaves a store locked.
final class DirectoryLock: Sendable {
    static let fileName = "annals.lock"
    /// The words, in the refusal's message, that only the refusal to a second opener uses
    /// (``FileEventStore/isLockedByAnotherProcess(_:)`` looks for them).
    static let heldElsewhere = "is locked by pid"
    private let fd: Int32
    private let isHeld = Mutex(true)

    init(directory: String) throws(EventStoreError) {
        let path = directory + "/" + Self.fileName
        let fd = Glibc.open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else {
            throw EventStoreError(.unavailable, "Cannot open \(path): \(String(cString: strerror(errno))).")
        }
        guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
            let code = errno
            var buffer = [UInt8](repeating: 0, count: 32)
            let count = pread(fd, &buffer, 32, 0)
            Glibc.close(fd)
            if code == EWOULDBLOCK {
                let owner =
                    count > 0
                    ? String(decoding: buffer[0..<count], as: UTF8.self)
                        .trimmingCharacters(in: .whitespacesAndNewlines) : "unknown"
                throw EventStoreError(
                    .unavailable,
                    "The store at \(directory) \(Self.heldElsewhere) \(owner.isEmpty ? "unknown" : owner)."
                )
            }
            throw EventStoreError(.unavailable, "Cannot lock \(path): \(String(cString: strerror(code))).")
        }
        let pid = Array("\(getpid())\n".utf8)
        _ = ftruncate(fd, 0)
        _ = pwrite(fd, pid, pid.count, 0)
        self.fd = fd
    }

    /// Releases the lock (also released by the kernel when the process ends).
    func release() {
        guard
            isHeld.withLock({ held in
                defer { held = false }
                return held
            })
        else { return }
        _ = flock(fd, LOCK_UN)
        Glibc.close(fd)
    }
}

extension FileEventStore {
    /// Whether `error` is the refusal to open (or verify) a directory another process has open.
    ///
    /// That refusal has the generic code ``Annals/EventStoreError/Code/unavailable``, which other
    /// I/O failures share; this tells it apart, for callers that can say what to do about it (the CLI
    /// suggests going through the server that holds the directory).
    package static func isLockedByAnotherProcess(_ error: EventStoreError) -> Bool {
        error.code == .unavailable && error.message.contains(DirectoryLock.heldElsewhere)
    }
}

extension String {
    fileprivate func trimmingCharacters(in set: Set<Character>) -> String {
        String(drop(while: { set.contains($0) }).reversed().drop(while: { set.contains($0) }).reversed())
    }
}

extension Set where Element == Character {
    fileprivate static let whitespacesAndNewlines: Set<Character> = [" ", "\n", "\t", "\r"]
}
