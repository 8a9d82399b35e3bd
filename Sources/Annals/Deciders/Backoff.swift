import Foundation

/// How long to pause before trying again after a failure that may pass, such as a concurrency
/// conflict: an exponentially growing window, with "full jitter".
///
/// After `n` failures the window is `min(maximum, initial × multiplier^(n-1))`. With ``isJittered``
/// the pause is drawn uniformly from zero up to the window, so contenders that failed together spread
/// out instead of colliding again in lockstep; without it the pause is the window itself.
/// ``immediate`` never pauses. The default is a 1 ms first window, doubling up to 100 ms, jittered.
public struct Backoff: Sendable, Hashable {
    /// The window after the first failure; not negative.
    public var initial: Duration
    /// What each further failure multiplies the window by; at least 1.
    public var multiplier: Double
    /// The largest window, however many failures there were.
    public var maximum: Duration
    /// Whether a pause is drawn uniformly from zero up to the window (full jitter), rather than being the
    /// whole window.
    public var isJittered: Bool

    /// Creates a backoff; out-of-range values are brought into range.
    ///
    /// - Parameters:
    ///   - initial: the window after the first failure (a negative one counts as zero).
    ///   - multiplier: the growth per failure (below 1 counts as 1).
    ///   - maximum: the largest window (below `initial` counts as `initial`).
    ///   - isJittered: whether a pause is drawn from zero up to the window.
    public init(
        initial: Duration = .milliseconds(1),
        multiplier: Double = 2,
        maximum: Duration = .milliseconds(100),
        isJittered: Bool = true
    ) {
        self.initial = max(.zero, initial)
        self.multiplier = multiplier.isNaN ? 1 : max(1, multiplier)
        self.maximum = max(self.initial, maximum)
        self.isJittered = isJittered
    }

    /// No pause at all: try again at once.
    public static var immediate: Backoff { Backoff(initial: .zero, maximum: .zero) }

    /// The window after `failures` failures: zero for none, `initial` for one, and growing by
    /// `multiplier` per failure up to `maximum`.
    public func window(afterFailures failures: Int) -> Duration {
        guard failures > 0, initial > .zero, maximum > .zero else { return .zero }
        let growth = pow(max(1, multiplier), Double(failures - 1))
        // Compared as a ratio: `initial * growth` would overflow long before `growth` does.
        guard growth < maximum / initial else { return maximum }
        return initial * growth
    }

    /// The window after `failures` failures of attempts that each took about `attemptDuration`: at least
    /// ``window(afterFailures:)``, and at least the attempt's own duration doubled per failure (up to 64
    /// times it). Contenders spread out only over a window longer than an attempt, and under load an
    /// attempt can take longer than any fixed window (32 commands on one stream on a busy machine ran
    /// out of attempts with the fixed window alone); zero stays zero (``immediate``).
    public func window(afterFailures failures: Int, attemptDuration: Duration) -> Duration {
        let configured = window(afterFailures: failures)
        guard configured > .zero, attemptDuration > .zero else { return configured }
        let scaled = attemptDuration * (1 << min(max(failures - 1, 0), 6))
        return max(configured, scaled)
    }

    /// The pause to take after `failures` failures, drawn with the system's random number generator.
    public func delay(afterFailures failures: Int, attemptDuration: Duration = .zero) -> Duration {
        var generator = SystemRandomNumberGenerator()
        return delay(afterFailures: failures, attemptDuration: attemptDuration, using: &generator)
    }

    /// The pause to take after `failures` failures, drawn with `generator`: from zero up to
    /// ``window(afterFailures:attemptDuration:)`` when jittered, the window itself otherwise.
    public func delay(
        afterFailures failures: Int, attemptDuration: Duration = .zero,
        using generator: inout some RandomNumberGenerator
    ) -> Duration {
        let window = window(afterFailures: failures, attemptDuration: attemptDuration)
        guard isJittered, window > .zero else { return window }
        // The top 53 bits as a fraction in [0, 1): exact in a Double.
        let fraction = Double(generator.next() >> 11) * 0x1p-53
        return window * fraction
    }
}
