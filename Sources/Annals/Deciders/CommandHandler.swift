import Foundation
import Logging
import Metrics
import Tracing

/// Where a command comes from: its id and the ids that tie its events to what caused them.
///
/// The ``CommandHandler`` copies `correlationID`, `causationID` (the command id when no cause is
/// given) and the trace context into every event it records. When `commandID` is set, the events' ids
/// are derived from it, so handling the same command twice appends nothing new (law 6).
///
/// **Trace context.** ``trace`` (or ``traceparent``) given here goes into the events as it is, so a
/// command handled again writes the very same metadata and stays idempotent; ``init(causedBy:index:)``
/// carries the causing event's. Without either, the handler writes the context of its own span
/// (`annals.command`), which is new on every call.
public struct CommandMetadata: Sendable, Hashable {
    /// The command's id; events' ids are derived from it when set.
    public var commandID: UUID?
    /// Ties together everything that happened because of one request.
    public var correlationID: String?
    /// The id of what caused the command.
    public var causationID: String?
    /// A W3C `traceparent` to write into the events (``trace`` wins where both name it).
    public var traceparent: String?
    /// Trace-context fields to write into the events, as the process's instrument writes them
    /// (``TraceFields``); empty for none.
    public var trace: [String: String] = [:]
    /// More metadata keys for the events.
    public var custom: [String: JSONValue]

    /// Metadata for a command; every part is absent by default. ``trace`` starts empty: set it afterwards,
    /// or use ``init(causedBy:index:)``.
    public init(
        commandID: UUID? = nil,
        correlationID: String? = nil,
        causationID: String? = nil,
        traceparent: String? = nil,
        custom: [String: JSONValue] = [:]
    ) {
        self.commandID = commandID
        self.correlationID = correlationID
        self.causationID = causationID
        self.traceparent = traceparent
        self.custom = custom
    }

    /// Metadata for a command caused by `event`: same correlation (or the event's id), the event as
    /// cause, its trace context, and a command id derived from the event's id and `index`, so
    /// reprocessing the event issues the very same command.
    public init(causedBy event: RecordedEvent, index: Int = 0) {
        let metadata = EventMetadata(decoding: event.metadata)
        self.init(
            commandID: DerivedID.make(from: event.id, index: UInt64(truncatingIfNeeded: index), salt: 0x636d64),
            correlationID: metadata.correlationID ?? event.id.uuidString,
            causationID: event.id.uuidString,
            traceparent: metadata.traceparent
        )
        trace = TraceFields.of(metadata)
    }

    /// Whether the command names a trace context for its events.
    var hasTrace: Bool { traceparent != nil || !trace.isEmpty }

    func eventMetadata() -> EventMetadata {
        var metadata = EventMetadata(
            correlationID: correlationID ?? commandID?.uuidString,
            causationID: causationID ?? commandID?.uuidString,
            traceparent: traceparent,
            custom: custom
        )
        TraceFields.write(trace, into: &metadata)
        return metadata
    }
}

/// What handling a command did.
public struct CommandResult<D: Decider>: Sendable {
    /// The state after the new events.
    public var state: D.State
    /// The events the decider decided (empty when the command changed nothing).
    public var events: [D.Event]
    /// Where they were stored; `nil` when there were none.
    public var append: AppendResult?
    /// The stream's last revision after the command (`nil`: still no events).
    public var revision: StreamRevision?
    /// How many times the command was tried (1 without conflicts).
    public var attempts: Int
}

/// Handles commands for one kind of aggregate: load, fold, decide, append with the expected revision,
/// retry on a concurrency conflict.
///
/// Loading reads the latest usable snapshot (if ``Snapshotting`` is configured) and the events after
/// it. The append expects exactly the revision that was loaded, so a concurrent writer makes it fail
/// with ``EventStoreError/Code/wrongExpectedRevision``; the handler then pauses for
/// ``Configuration/backoff`` (a jittered, growing pause, so contenders spread out), reloads and decides
/// again, up to ``Configuration/maxAttempts`` times in all. A decider's rejection is thrown as is and
/// never retried.
public struct CommandHandler<D: Decider>: Sendable {
    /// How a handler loads and retries.
    public struct Configuration: Sendable {
        /// How many times in all to try a command that meets concurrency conflicts (at least 1; 1 never
        /// retries). Default 20.
        ///
        /// Each conflict means another command on the same stream got through, so N commands racing on
        /// one stream need more attempts the larger N is and the longer the store takes to commit. With
        /// no pause they retry in lockstep, one gets through per round, and the last needs N attempts.
        /// With the default ``backoff`` they spread out: in a simulation of 32 commands racing on one
        /// stream of a group-committing store (5,000 runs each), the unluckiest needed at most 7 attempts
        /// in memory, 12 when a commit takes 1 ms, 13 at 2 ms, 17 at 5 ms and 21 at 10 ms (99 % of runs:
        /// 6, 10, 12, 15 and 18). 20 lets 32 contenders through on a disk that flushes in a few
        /// milliseconds, with room to spare; raise it for more contenders on one stream or a slower store.
        /// After the last attempt the conflict is thrown.
        public var maxAttempts: Int
        /// The pause before each retry. Default: 1 ms, doubling up to 100 ms, with full jitter; and at
        /// least the failed attempt's own duration, doubled per failure up to 64 times it (see
        /// ``Backoff/window(afterFailures:attemptDuration:)``). With attempts quicker than 1.5 ms, a
        /// command that uses all 20 attempts pauses for at most 1.33 s (about half that on average);
        /// slower attempts, as under load, pause for longer.
        public var backoff: Backoff
        /// How many events to read per page while loading.
        public var readPageSize: Int

        /// Creates a configuration; `maxAttempts` and `readPageSize` below 1 count as 1.
        public init(maxAttempts: Int = 20, backoff: Backoff = Backoff(), readPageSize: Int = 1_000) {
            self.maxAttempts = max(1, maxAttempts)
            self.backoff = backoff
            self.readPageSize = max(1, readPageSize)
        }
    }

    /// The store the aggregates' streams live in.
    public let store: any EventStore
    /// The rules: decides events from commands and folds them into state.
    public let decider: D
    /// Turns the decider's events into stored events and back.
    public let codec: EventCodec<D.Event>
    /// Where snapshots are loaded from and saved to; `nil`: every load reads the whole stream.
    public let snapshotting: Snapshotting<D.State>?
    /// How the handler loads and retries.
    public let configuration: Configuration
    let logger: Logger
    private let metrics: CommandMetrics

    /// Creates a handler for `decider`'s aggregates in `store`; it logs conflicts and snapshot trouble
    /// to `logger` (retries at `debug`).
    public init(
        store: any EventStore,
        decider: D,
        codec: EventCodec<D.Event>,
        snapshotting: Snapshotting<D.State>? = nil,
        configuration: Configuration = Configuration(),
        logger: Logger = Logger(label: "annals.command-handler")
    ) {
        self.store = store
        self.decider = decider
        self.codec = codec
        self.snapshotting = snapshotting
        self.configuration = configuration
        self.logger = logger
        self.metrics = CommandMetrics(decider: String(describing: D.self))
    }

    /// The current state of an aggregate and the stream's last revision.
    ///
    /// The revision never runs ahead of the state: an append that expects it fails if any event the
    /// state does not hold was appended meanwhile.
    public func load(_ stream: StreamName) async throws -> (state: D.State, revision: StreamRevision?) {
        var state = decider.initialState
        var from: StreamRevision? = nil
        var revision: StreamRevision? = nil
        if let snapshotting, let snapshot = try await loadSnapshot(stream, snapshotting) {
            state = snapshot.state
            revision = snapshot.revision
            from = snapshot.revision.next
        }
        while true {
            let page = try await store.read(stream, from: from, direction: .forwards, limit: configuration.readPageSize)
            for event in page {
                state = decider.evolve(state, try codec.decode(event))
                revision = event.revision
            }
            if page.count == configuration.readPageSize, let next = page.last?.revision.next {
                from = next
                continue
            }
            if revision != nil { break }
            // Nothing visible: the stream may still have revisions (soft-deleted, truncated). An event
            // appended after the read above would make that revision newer than the state, so it counts
            // only if a read after it still finds nothing; otherwise fold what is there now.
            guard let last = try await store.streamInfo(stream)?.lastRevision else { break }
            if try await store.read(stream, from: from, direction: .forwards, limit: 1).isEmpty {
                revision = last
                break
            }
        }
        return (state, revision)
    }

    /// Handles one command on one stream.
    ///
    /// On a concurrency conflict the handler pauses (``Configuration/backoff``), reloads and decides
    /// again; ``CommandResult/attempts`` says how many tries it took.
    ///
    /// - Throws: the decider's `Rejection`; ``EventStoreError`` (``EventStoreError/Code/wrongExpectedRevision``
    ///   once the attempts are used up); ``EventCodingError`` when stored events do not decode;
    ///   `CancellationError` when the task is cancelled before a retry or during its pause.
    @discardableResult
    public func handle(
        _ command: D.Command,
        on stream: StreamName,
        metadata: CommandMetadata = CommandMetadata()
    ) async throws -> CommandResult<D> {
        let started = ContinuousClock.now
        do {
            let result = try await withSpan("annals.command \(D.self)", ofKind: .internal) { span in
                let result = try await handleAttempts(command, on: stream, metadata: metadata)
                if span.isRecording {
                    span.attributes["annals.stream"] = stream.rawValue
                    span.attributes["annals.attempts"] = result.attempts
                }
                return result
            }
            metrics.record(.ok, attempts: result.attempts, duration: ContinuousClock.now - started)
            return result
        } catch {
            let outcome: CommandMetrics.Outcome =
                switch error {
                case is D.Rejection: .rejected
                case let error as EventStoreError where error.code == .wrongExpectedRevision: .conflict
                default: .error
                }
            metrics.record(outcome, attempts: nil, duration: ContinuousClock.now - started)
            throw error
        }
    }

    private func handleAttempts(
        _ command: D.Command,
        on stream: StreamName,
        metadata: CommandMetadata
    ) async throws -> CommandResult<D> {
        var attempt = 0
        while true {
            attempt += 1
            let attemptStarted = ContinuousClock.now
            let (state, revision) = try await load(stream)
            let events = try decider.decide(command, state: state)
            if events.isEmpty {
                return CommandResult(state: state, events: [], append: nil, revision: revision, attempts: attempt)
            }
            var eventMetadata = metadata.eventMetadata()
            if !metadata.hasTrace, let context = ServiceContext.current {
                // No trace given: the events carry this command's span, so handlers of them continue it.
                TraceFields.write(TraceFields.of(context), into: &eventMetadata)
            }
            var data: [EventData] = []
            data.reserveCapacity(events.count)
            for (index, event) in events.enumerated() {
                let id =
                    metadata.commandID.map {
                        DerivedID.make(from: $0, index: UInt64(index), salt: 0x6576_6e74)
                    } ?? UUID()
                data.append(try codec.encode(event, id: id, metadata: eventMetadata))
            }
            do {
                let result = try await store.append(
                    data,
                    to: stream,
                    expecting: revision.map { .exact($0) } ?? .noStream
                )
                if let revision, result.firstRevision <= revision {
                    // The store recognised these event ids (law 6): this command was handled before and
                    // its events are part of the state loaded above already.
                    return CommandResult(
                        state: state, events: [], append: result, revision: revision, attempts: attempt)
                }
                let newState = decider.fold(events, from: state)
                if let snapshotting, snapshotting.isDue(from: revision, to: result.nextExpectedRevision) {
                    await saveSnapshot(newState, stream: stream, revision: result.nextExpectedRevision, snapshotting)
                }
                return CommandResult(
                    state: newState,
                    events: events,
                    append: result,
                    revision: result.nextExpectedRevision,
                    attempts: attempt
                )
            } catch let error as EventStoreError where error.code == .wrongExpectedRevision {
                if attempt >= configuration.maxAttempts { throw error }
                let delay = configuration.backoff.delay(
                    afterFailures: attempt, attemptDuration: ContinuousClock.now - attemptStarted)
                logger.debug(
                    "Concurrency conflict; reloading and retrying",
                    metadata: ["stream": "\(stream)", "attempt": "\(attempt)", "delay": "\(delay)"]
                )
                if delay > .zero {
                    try await Task.sleep(for: delay)
                } else {
                    try Task.checkCancellation()
                }
            }
        }
    }

    private func loadSnapshot(
        _ stream: StreamName,
        _ snapshotting: Snapshotting<D.State>
    ) async throws -> (state: D.State, revision: StreamRevision)? {
        guard let snapshot = try await snapshotting.store.load(stream),
            snapshot.schemaVersion == snapshotting.schemaVersion
        else { return nil }
        // A snapshot beyond the stream's end (the stream was recreated) or of hidden events is stale.
        guard let info = try await store.streamInfo(stream), let last = info.lastRevision, snapshot.revision <= last,
            (info.metadata.truncateBefore?.value ?? 0) == 0, !info.isDeleted
        else { return nil }
        guard let state = try? snapshotting.decode(snapshot.state) else {
            logger.warning("Ignoring a snapshot that does not decode", metadata: ["stream": "\(stream)"])
            return nil
        }
        return (state, snapshot.revision)
    }

    private func saveSnapshot(
        _ state: D.State,
        stream: StreamName,
        revision: StreamRevision,
        _ snapshotting: Snapshotting<D.State>
    ) async {
        do {
            let snapshot = Snapshot(
                stream: stream,
                revision: revision,
                schemaVersion: snapshotting.schemaVersion,
                state: try snapshotting.encode(state)
            )
            try await snapshotting.store.save(snapshot)
        } catch {
            // A snapshot is a cache; failing to save one must not fail the command.
            logger.warning("Could not save a snapshot", metadata: ["stream": "\(stream)", "error": "\(error)"])
        }
    }
}

/// Deterministic ids derived from another id, so reprocessing produces the same ids.
enum DerivedID {
    static func make(from base: UUID, index: UInt64, salt: UInt64) -> UUID {
        let b = base.uuid
        let high = [b.0, b.1, b.2, b.3, b.4, b.5, b.6, b.7].reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
        let low = [b.8, b.9, b.10, b.11, b.12, b.13, b.14, b.15].reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
        var x = mix(high ^ mix(index &+ salt))
        var y = mix(low ^ mix(x ^ index))
        x = mix(x ^ y)
        y = mix(y &+ x)
        var bytes = [UInt8](repeating: 0, count: 16)
        for i in 0..<8 {
            bytes[i] = UInt8(truncatingIfNeeded: x >> (56 - 8 * UInt64(i)))
            bytes[8 + i] = UInt8(truncatingIfNeeded: y >> (56 - 8 * UInt64(i)))
        }
        bytes[6] = (bytes[6] & 0x0F) | 0x80  // version 8: custom
        bytes[8] = (bytes[8] & 0x3F) | 0x80  // RFC 4122 variant
        return UUID(
            uuid: (
                bytes[0], bytes[1], bytes[2], bytes[3], bytes[4], bytes[5], bytes[6], bytes[7],
                bytes[8], bytes[9], bytes[10], bytes[11], bytes[12], bytes[13], bytes[14], bytes[15]
            )
        )
    }

    /// SplitMix64's finaliser.
    private static func mix(_ value: UInt64) -> UInt64 {
        var z = value &+ 0x9E37_79B9_7F4A_7C15
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// The metrics of one decider's command handlers (swift-metrics, made with the bootstrapped factory):
///
/// | Name | Kind | Dimensions |
/// |---|---|---|
/// | `annals_commands_total` | counter | `decider` (its type's name), `outcome`: `ok`, `rejected`, `conflict` (attempts used up), `error` |
/// | `annals_command_duration_seconds` | timer | `decider`: a command's handling, retries included |
/// | `annals_command_attempts` | recorder | `decider`: attempts a command that got through took |
struct CommandMetrics: Sendable {
    enum Outcome: String, CaseIterable, Sendable {
        case ok, rejected, conflict, error
    }

    private let outcomes: [Outcome: Counter]
    private let duration: Timer
    private let attempts: Recorder

    init(decider: String) {
        let dimensions = [("decider", decider)]
        var outcomes: [Outcome: Counter] = [:]
        for outcome in Outcome.allCases {
            outcomes[outcome] = Counter(
                label: "annals_commands_total", dimensions: dimensions + [("outcome", outcome.rawValue)])
        }
        self.outcomes = outcomes
        duration = Timer(label: "annals_command_duration_seconds", dimensions: dimensions)
        attempts = Recorder(label: "annals_command_attempts", dimensions: dimensions)
    }

    func record(_ outcome: Outcome, attempts count: Int?, duration elapsed: Duration) {
        outcomes[outcome]?.increment()
        duration.record(duration: elapsed)
        if let count { attempts.record(count) }
    }
}
