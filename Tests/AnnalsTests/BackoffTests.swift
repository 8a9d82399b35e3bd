import Annals
import Testing

@Suite("Backoff")
struct BackoffTests {
    /// A generator that always draws the same number.
    struct Fixed: RandomNumberGenerator {
        var value: UInt64

        mutating func next() -> UInt64 { value }
    }

    @Test("the window starts at the initial pause, grows by the multiplier and stops at the maximum")
    func windows() {
        let backoff = Backoff()
        #expect(backoff.window(afterFailures: 0) == .zero)
        #expect(backoff.window(afterFailures: 1) == .milliseconds(1))
        #expect(backoff.window(afterFailures: 2) == .milliseconds(2))
        #expect(backoff.window(afterFailures: 7) == .milliseconds(64))
        #expect(backoff.window(afterFailures: 8) == .milliseconds(100))
        #expect(backoff.window(afterFailures: .max) == .milliseconds(100))
        let fixed = Backoff(initial: .milliseconds(20), multiplier: 3, maximum: .milliseconds(50), isJittered: false)
        #expect(fixed.window(afterFailures: 1) == .milliseconds(20))
        #expect(fixed.window(afterFailures: 2) == .milliseconds(50))
    }

    @Test("an attempt that took longer than the window widens it: doubled per failure, up to 64 times the attempt")
    func windowsScaleWithTheAttempt() {
        let backoff = Backoff()
        #expect(backoff.window(afterFailures: 1, attemptDuration: .microseconds(100)) == .milliseconds(1))
        #expect(backoff.window(afterFailures: 1, attemptDuration: .milliseconds(30)) == .milliseconds(30))
        #expect(backoff.window(afterFailures: 3, attemptDuration: .milliseconds(30)) == .milliseconds(120))
        #expect(backoff.window(afterFailures: 20, attemptDuration: .milliseconds(30)) == .milliseconds(30 * 64))
        #expect(Backoff.immediate.window(afterFailures: 5, attemptDuration: .seconds(1)) == .zero)
        var highest = Fixed(value: .max)
        let top = backoff.delay(afterFailures: 3, attemptDuration: .milliseconds(30), using: &highest)
        #expect(top > .milliseconds(119) && top <= .milliseconds(120))
    }

    @Test("a jittered pause lies between zero and the window; without jitter it is the window")
    func jitter() {
        let backoff = Backoff()
        var lowest = Fixed(value: 0)
        var middle = Fixed(value: 1 << 63)
        var highest = Fixed(value: .max)
        #expect(backoff.delay(afterFailures: 3, using: &lowest) == .zero)
        #expect(backoff.delay(afterFailures: 3, using: &middle) == .milliseconds(2))
        let top = backoff.delay(afterFailures: 3, using: &highest)
        #expect(top > .microseconds(3_999) && top <= .milliseconds(4))
        var random = SystemRandomNumberGenerator()
        for failures in 1...30 {
            let delay = backoff.delay(afterFailures: failures, using: &random)
            #expect(delay >= .zero && delay <= backoff.window(afterFailures: failures))
        }
        var unjittered = backoff
        unjittered.isJittered = false
        #expect(unjittered.delay(afterFailures: 3, using: &lowest) == .milliseconds(4))
    }

    @Test("immediate never pauses, and out-of-range settings are brought into range")
    func ranges() {
        #expect((1...40).allSatisfy { Backoff.immediate.delay(afterFailures: $0) == .zero })
        let odd = Backoff(initial: .milliseconds(-5), multiplier: 0.5, maximum: .milliseconds(-1))
        #expect(odd.initial == .zero)
        #expect(odd.multiplier == 1)
        #expect(odd.maximum == .zero)
        #expect(odd.window(afterFailures: 3) == .zero)
        let slow = Backoff(initial: .milliseconds(500))
        #expect(slow.maximum == .milliseconds(500))
        #expect(slow.window(afterFailures: 4) == .milliseconds(500))
    }
}
