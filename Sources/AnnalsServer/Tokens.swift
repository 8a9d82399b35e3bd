import Annals
import AnnalsWire
import Foundation
import Synchronization

/// Tokens in a JSON file (`tokens.json` in the data directory), replaced atomically on every change.
public final class FileTokenRegistry: TokenRegistry {
    /// The JSON file the tokens are kept in; `<path>.lock` and `<path>.tmp` are made beside it.
    public let path: String
    private let lock = Mutex(())

    /// A registry in the file at `path`, which need not exist: a missing file holds no tokens, and the
    /// first ``add(_:)`` creates it (readable by its owner only). Nothing is read until the first call.
    public init(path: String) {
        self.path = path
    }

    /// Every token in the file, in the order they were added; the file is read anew on every call.
    ///
    /// - Throws: `corrupted-storage` when the file cannot be read or is not a token list.
    public func all() throws -> [TokenRecord] {
        try lock.withLock { _ in try load() }
    }

    /// Adds `record` and replaces the file atomically (written, synced, renamed) under an exclusive lock
    /// on `<path>.lock`, so a server and `annals token` changing tokens at once both land.
    ///
    /// - Throws: `unavailable` when the file or its lock cannot be written; `corrupted-storage` when the
    ///   file there cannot be read.
    public func add(_ record: TokenRecord) throws {
        try lock.withLock { _ in
            try acrossProcesses {
                var records = try load()
                records.append(record)
                try save(records)
            }
        }
    }

    /// Removes the token with this id, as ``add(_:)`` changes the file.
    ///
    /// - Returns: `false`, leaving the file as it was, when no token has that id.
    /// - Throws: as ``add(_:)``.
    public func revoke(id: String) throws -> Bool {
        try lock.withLock { _ in
            try acrossProcesses { try revokeLocked(id: id) }
        }
    }

    /// Runs `body` holding an exclusive `flock` on `tokens.json.lock`, so a server and
    /// `annals token` changing tokens at the same moment both land.
    private func acrossProcesses<R>(_ body: () throws -> R) throws -> R {
        let descriptor = open(path + ".lock", O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else {
            throw EventStoreError(.unavailable, "The token lock file \(path).lock cannot be opened (errno \(errno)).")
        }
        defer { close(descriptor) }
        while flock(descriptor, LOCK_EX) != 0 {
            guard errno == EINTR else {
                throw EventStoreError(
                    .unavailable, "The token lock file \(path).lock cannot be locked (errno \(errno)).")
            }
        }
        defer { flock(descriptor, LOCK_UN) }
        return try body()
    }

    private func revokeLocked(id: String) throws -> Bool {
        var records = try load()
        let before = records.count
        records.removeAll { $0.id == id }
        if records.count == before { return false }
        try save(records)
        return true
    }

    private func load() throws -> [TokenRecord] {
        guard FileManager.default.fileExists(atPath: path) else { return [] }
        do {
            let decoder = JSONDecoder()
            // Milliseconds since they were kept (older files have whole seconds).
            decoder.dateDecodingStrategy = .custom { decoder in
                let text = try decoder.singleValueContainer().decode(String.self)
                guard let date = WireFormat.parseTimestamp(text) else {
                    throw DecodingError.dataCorrupted(
                        .init(codingPath: decoder.codingPath, debugDescription: "'\(text)' is not an ISO 8601 time"))
                }
                return date
            }
            return try decoder.decode([TokenRecord].self, from: Data(contentsOf: URL(fileURLWithPath: path)))
        } catch {
            throw EventStoreError(.corruptedStorage, "The token file \(path) cannot be read: \(error).")
        }
    }

    private func save(_ records: [TokenRecord]) throws {
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .custom { date, encoder in
            var container = encoder.singleValueContainer()
            try container.encode(WireFormat.timestamp(date))
        }
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        let data = try encoder.encode(records)
        let temporary = path + ".tmp"
        guard FileManager.default.createFile(atPath: temporary, contents: data, attributes: [.posixPermissions: 0o600])
        else {
            throw EventStoreError(.unavailable, "The token file \(temporary) cannot be written.")
        }
        let descriptor = open(temporary, O_RDONLY)
        if descriptor >= 0 {
            _ = fsync(descriptor)
            close(descriptor)
        }
        guard rename(temporary, path) == 0 else {
            throw EventStoreError(.unavailable, "The token file \(path) cannot be replaced (errno \(errno)).")
        }
    }
}

/// Looks tokens up by hash, re-reading the registry at most once a second (so tokens created or revoked
/// by another process on the same PostgreSQL database take effect within a second).
final class TokenCache: Sendable {
    let registry: any TokenRegistry
    private let state = Mutex<(byHash: [String: TokenRecord], loadedAt: ContinuousClock.Instant?)>(([:], nil))

    init(registry: any TokenRegistry) {
        self.registry = registry
    }

    func invalidate() {
        state.withLock { $0.loadedAt = nil }
    }

    func record(for token: String) async throws -> TokenRecord? {
        let hash = Tokens.hash(token)
        let now = ContinuousClock.now
        let cached: TokenRecord?? = state.withLock { state in
            guard let loadedAt = state.loadedAt, loadedAt.duration(to: now) < .seconds(1) else { return nil }
            return .some(state.byHash[hash])
        }
        if let cached { return cached }
        let records = try await registry.all()
        let byHash = Dictionary(records.map { ($0.hash, $0) }, uniquingKeysWith: { first, _ in first })
        state.withLock { $0 = (byHash, now) }
        return byHash[hash]
    }
}
