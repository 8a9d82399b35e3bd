import Annals

/// Makes fresh stores for the conformance suite: one per check, with the limits the check asks for.
///
/// Implement it for your own store to run ``EventStoreConformance`` against it. `withStore` must create
/// an empty store, run `body`, and clean up (close the store, delete its files) whether `body` throws
/// or not.
public protocol EventStoreHarness: Sendable {
    /// Creates an empty store with `limits`, runs `body` on it, and cleans up whether `body` throws or
    /// not; returns what `body` returns.
    ///
    /// - Throws: what `body` throws, and any failure to create or clean up the store.
    func withStore<R: Sendable>(
        limits: EventStoreLimits,
        _ body: @Sendable (any EventStore) async throws -> R
    ) async throws -> R
}

/// The harness for ``InMemoryEventStore``.
public struct InMemoryHarness: EventStoreHarness {
    /// A harness that gives each check a new in-memory store.
    public init() {}

    /// Runs `body` on a new ``InMemoryEventStore`` with `limits`; there is nothing to clean up.
    public func withStore<R: Sendable>(
        limits: EventStoreLimits,
        _ body: @Sendable (any EventStore) async throws -> R
    ) async throws -> R {
        try await body(InMemoryEventStore(configuration: .init(limits: limits)))
    }
}

/// One named check of the conformance suite, tied to the law of ``EventStore`` it checks.
public struct ConformanceCheck: Sendable, CustomStringConvertible {
    /// The law's number in ``EventStore``'s documentation (0 for reads and listing, which every law relies on).
    public let law: Int
    /// What the check shows, as a sentence.
    public let name: String
    /// The limits the store under test must be created with.
    public let limits: EventStoreLimits
    let body: @Sendable (any EventStore) async throws -> Void

    init(
        law: Int,
        _ name: String,
        limits: EventStoreLimits = EventStoreLimits(),
        _ body: @escaping @Sendable (any EventStore) async throws -> Void
    ) {
        self.law = law
        self.name = name
        self.limits = limits
        self.body = body
    }

    /// `law N: name`, or `reads: name` for law 0: the name a parameterised test shows.
    public var description: String { law == 0 ? "reads: \(name)" : "law \(law): \(name)" }

    /// Runs the check on a fresh store from `harness`.
    ///
    /// - Throws: ``ConformanceFailure`` when the store breaks the law; any error the store throws
    ///   unexpectedly.
    public func run(_ harness: some EventStoreHarness) async throws {
        let body = self.body
        try await harness.withStore(limits: limits) { store in try await body(store) }
    }
}

/// A conformance check found the store breaking a law.
public struct ConformanceFailure: Error, Sendable, CustomStringConvertible {
    /// What the store did wrong.
    public let message: String
    /// The file of the requirement that failed (its `#fileID`).
    public let fileID: String
    /// The line of that requirement.
    public let line: Int

    /// A failure with `message`, at the caller's file and line unless they are given.
    public init(_ message: String, fileID: String = #fileID, line: Int = #line) {
        self.message = message
        self.fileID = fileID
        self.line = line
    }

    /// The message, then the file and line in parentheses.
    public var description: String { "\(message) (\(fileID):\(line))" }
}

/// Fails with `message` unless `condition` holds.
func require(
    _ condition: @autoclosure () async throws -> Bool,
    _ message: @autoclosure () -> String,
    fileID: String = #fileID,
    line: Int = #line
) async throws {
    guard try await condition() else { throw ConformanceFailure(message(), fileID: fileID, line: line) }
}

/// Runs `body`, which must fail with an ``EventStoreError`` of `code`; returns the error.
@discardableResult
func requireError<T>(
    _ code: EventStoreError.Code,
    _ what: String,
    fileID: String = #fileID,
    line: Int = #line,
    _ body: () async throws -> T
) async throws -> EventStoreError {
    do {
        _ = try await body()
    } catch let error as EventStoreError {
        guard error.code == code else {
            throw ConformanceFailure(
                "\(what): expected error \(code), got \(error.code): \(error.message)",
                fileID: fileID,
                line: line
            )
        }
        return error
    }
    throw ConformanceFailure("\(what): expected error \(code), but it succeeded", fileID: fileID, line: line)
}
