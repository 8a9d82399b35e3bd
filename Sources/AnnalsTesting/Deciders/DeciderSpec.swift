import Annals

/// Given/when/then for deciders: given these past events, when this command, then these events (or this
/// rejection).
///
/// ```swift
/// try DeciderSpec(OrderDecider())
///     .given([.placed(placed)])
///     .when(.ship(at: now))
///     .thenRejects(.notConfirmed)
/// ```
///
/// A mismatch throws a ``DeciderSpecFailure`` that names the caller's file and line and shows what was
/// expected and what happened.
public struct DeciderSpec<D: Decider>: Sendable {
    /// The decider under test.
    public let decider: D

    /// A spec for `decider`.
    public init(_ decider: D) { self.decider = decider }

    /// The events that happened before the command.
    public func given(_ events: [D.Event]) -> Given { Given(decider: decider, events: events) }

    /// The command, with no past events.
    public func when(_ command: D.Command) -> When { given([]).when(command) }

    /// The past events of a spec, waiting for the command (``DeciderSpec/given(_:)``).
    public struct Given: Sendable {
        let decider: D
        let events: [D.Event]

        /// The command to decide on the state the given events fold into.
        public func when(_ command: D.Command) -> When {
            let state = decider.fold(events)
            let outcome: Result<[D.Event], D.Rejection>
            do throws(D.Rejection) {
                outcome = .success(try decider.decide(command, state: state))
            } catch {
                outcome = .failure(error)
            }
            return When(decider: decider, state: state, outcome: outcome)
        }
    }

    /// What the decider decided for the command, on the state the past events fold into; its `then…`
    /// methods check it.
    public struct When: Sendable {
        let decider: D
        let state: D.State
        /// What the decider decided.
        public let outcome: Result<[D.Event], D.Rejection>

        /// Expects exactly these events.
        ///
        /// - Returns: the state after them, for a check of the state itself.
        @discardableResult
        public func then(
            _ expected: [D.Event],
            fileID: String = #fileID,
            line: Int = #line
        ) throws -> D.State where D.Event: Equatable {
            switch outcome {
            case .success(let events):
                guard events == expected else {
                    throw DeciderSpecFailure("expected events \(expected), got \(events)", fileID: fileID, line: line)
                }
                return decider.fold(events, from: state)
            case .failure(let rejection):
                throw DeciderSpecFailure(
                    "expected events \(expected), got rejection \(rejection)", fileID: fileID, line: line)
            }
        }

        /// Expects this rejection.
        public func thenRejects(
            _ expected: D.Rejection,
            fileID: String = #fileID,
            line: Int = #line
        ) throws where D.Rejection: Equatable {
            switch outcome {
            case .success(let events):
                throw DeciderSpecFailure(
                    "expected rejection \(expected), got events \(events)", fileID: fileID, line: line)
            case .failure(let rejection):
                guard rejection == expected else {
                    throw DeciderSpecFailure(
                        "expected rejection \(expected), got \(rejection)", fileID: fileID, line: line)
                }
            }
        }

        /// Expects no events: the command changes nothing.
        public func thenNothingHappens(fileID: String = #fileID, line: Int = #line) throws {
            switch outcome {
            case .success(let events) where events.isEmpty: return
            case .success(let events):
                throw DeciderSpecFailure("expected no events, got \(events)", fileID: fileID, line: line)
            case .failure(let rejection):
                throw DeciderSpecFailure("expected no events, got rejection \(rejection)", fileID: fileID, line: line)
            }
        }
    }
}

/// A ``DeciderSpec`` expectation did not hold.
public struct DeciderSpecFailure: Error, Sendable, CustomStringConvertible {
    /// What was expected and what happened.
    public let message: String
    /// The file of the expectation that failed (the caller's `#fileID`).
    public let fileID: String
    /// The line of that expectation.
    public let line: Int

    /// A failure of the expectation at `fileID` and `line`.
    public init(_ message: String, fileID: String, line: Int) {
        self.message = message
        self.fileID = fileID
        self.line = line
    }

    /// `file:line: message`, as a compiler diagnostic reads, so the failure points at the test's line.
    public var description: String { "\(fileID):\(line): \(message)" }
}
