/// The pure core of an aggregate: from a state and a command, decide events; from events, evolve state.
///
/// A decider does no I/O and reads no clock or random source: time and ids come in with the command.
/// ``decide(_:state:)`` throws a typed ``Rejection`` that says why a command is refused
/// (`.insufficientFunds`, `.alreadyShipped`). Returning no events is a valid decision (the command
/// changes nothing — how a decider stays idempotent for a command it has seen).
///
/// ```swift
/// struct Counter: Decider {
///     var initialState: Int { 0 }
///     func decide(_ command: Int, state: Int) throws(CounterRejection) -> [CounterEvent] { … }
///     func evolve(_ state: Int, _ event: CounterEvent) -> Int { … }
/// }
/// ```
public protocol Decider<State, Command, Event, Rejection>: Sendable {
    /// The aggregate's state, folded from its events.
    associatedtype State: Sendable
    /// What a caller asks the aggregate to do, in the imperative (`.place`).
    associatedtype Command: Sendable
    /// What happened, in the past tense (`.placed`): what ``decide(_:state:)`` returns and
    /// ``evolve(_:_:)`` folds.
    associatedtype Event: Sendable
    /// Why a command is refused (`.insufficientFunds`): the typed error ``decide(_:state:)`` throws.
    associatedtype Rejection: Error

    /// The state of an aggregate with no events.
    var initialState: State { get }

    /// Decides what happens when `command` meets `state`: the events to record, or a rejection.
    func decide(_ command: Command, state: State) throws(Rejection) -> [Event]

    /// The state after `event`.
    func evolve(_ state: State, _ event: Event) -> State
}

extension Decider {
    /// Folds events into a state, starting from `state` (the initial state by default).
    public func fold(_ events: some Sequence<Event>, from state: State? = nil) -> State {
        events.reduce(state ?? initialState) { evolve($0, $1) }
    }
}
