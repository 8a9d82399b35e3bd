import Annals
import AnnalsTesting
import Foundation

/// A small domain for the core's tests: a counter with a ceiling.
struct Incremented: Codable, Sendable, Equatable {
    var by: Int
}

struct Reset: Codable, Sendable, Equatable {
    var reason: String
}

enum CounterEvent: Sendable, Equatable {
    case incremented(Incremented)
    case reset(Reset)

    static let codec = EventCodec<CounterEvent>()
        .registering(Incremented.self, as: "Incremented", CounterEvent.incremented)
        .registering(Reset.self, as: "Reset", CounterEvent.reset)
}

enum CounterCommand: Sendable {
    case increment(Int)
    case reset(String)
}

enum CounterRejection: Error, Equatable {
    case ceilingReached(current: Int)
    case nothingToReset
}

struct CounterState: Codable, Sendable, Equatable {
    var value = 0
    var increments = 0
}

struct CounterDecider: Decider {
    var ceiling = 100

    var initialState: CounterState { CounterState() }

    func decide(_ command: CounterCommand, state: CounterState) throws(CounterRejection) -> [CounterEvent] {
        switch command {
        case .increment(let amount):
            guard state.value + amount <= ceiling else { throw .ceilingReached(current: state.value) }
            return [.incremented(Incremented(by: amount))]
        case .reset(let reason):
            guard state.value != 0 else { throw .nothingToReset }
            return [.reset(Reset(reason: reason))]
        }
    }

    func evolve(_ state: CounterState, _ event: CounterEvent) -> CounterState {
        var state = state
        switch event {
        case .incremented(let event):
            state.value += event.by
            state.increments += 1
        case .reset:
            state.value = 0
        }
        return state
    }
}

/// A store that lets a test act just before each append reaches the real store, and after each stream
/// read, before the caller sees what was read.
struct InterferingStore: ForwardingEventStore {
    let base: InMemoryEventStore
    var afterRead: @Sendable (StreamName) async throws -> Void = { _ in }
    let beforeAppend: @Sendable (StreamName) async throws -> Void

    @discardableResult
    func append(_ events: [EventData], to stream: StreamName, expecting expected: ExpectedRevision) async throws
        -> AppendResult
    {
        try await beforeAppend(stream)
        return try await base.append(events, to: stream, expecting: expected)
    }

    func read(_ stream: StreamName, from revision: StreamRevision?, direction: ReadDirection, limit: Int) async throws
        -> [RecordedEvent]
    {
        let events = try await base.read(stream, from: revision, direction: direction, limit: limit)
        try await afterRead(stream)
        return events
    }
}
