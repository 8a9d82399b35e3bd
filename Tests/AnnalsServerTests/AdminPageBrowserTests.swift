import Annals
import AnnalsTestSupport
import Foundation
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// The admin page in a real headless Chromium, driven over the DevTools protocol on a pipe.
@Suite("Admin page in a browser", .enabled(if: Browser.path != nil || Browser.isCI, "Chromium is not installed"))
struct AdminPageBrowserTests {
    @Test("the page, given a token, shows an event appended through the API in its live tail", .timeLimit(.minutes(2)))
    func liveTail() async throws {
        let path = try #require(Browser.path, "CI=true needs Chromium (.ci/run installs it)")
        try await TestServer.with { server in
            _ = try await server.request(
                .POST, "/streams/order-7", token: server.admin, headers: ["Content-Type": "application/json"],
                body: Array(#"[{"type":"OrderPlaced","data":{"total":12}}]"#.utf8))
            let browser = try Browser(path: path)
            defer { browser.close() }
            let session = try await browser.open("\(server.url)/#token=\(server.admin)")
            // The page lists the stream that exists before it loads.
            try await browser.waitFor(session, "document.querySelector('#streams').innerText", toContain: "order-7")
            // The token is read from the fragment, then the fragment leaves the address bar and the history.
            try await browser.waitFor(session, "location.hash === '' ? 'cleared' : location.hash", toContain: "cleared")
            // And once its EventSource is live, an append shows in the tail.
            try await browser.waitFor(session, "document.querySelector('#tail').dataset.live || ''", toContain: "true")
            _ = try await server.request(
                .POST, "/streams/order-8", token: server.admin, headers: ["Content-Type": "application/json"],
                body: Array(#"[{"type":"BrowserSawThis","data":{"answer":42}}]"#.utf8))
            let tail = try await browser.waitFor(
                session, "document.querySelector('#tail').innerText", toContain: "BrowserSawThis")
            #expect(tail.contains("\"answer\": 42"), "the event's data is shown as pretty JSON: \(tail)")
            // The statistics refresh after each live event.
            try await browser.waitFor(
                session, "document.querySelector('#stats-body').innerText", toContain: "headPosition: 2")
            // Without a token the page says what is wrong instead of showing data.
            let anonymous = try await browser.open("\(server.url)/#token=wrong")
            try await browser.waitFor(
                anonymous, "document.querySelector('#error').innerText", toContain: "unauthorized")
        }
    }
}

/// A headless Chromium speaking the DevTools protocol over `--remote-debugging-pipe` (fd 3 in, fd 4 out).
final class Browser: @unchecked Sendable {
    static let isCI = ProcessInfo.processInfo.environment["CI"] == "true"

    static var path: String? {
        let directories = (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin").split(separator: ":")
        for name in ["chromium", "chromium-browser", "google-chrome"] {
            for directory in directories where FileManager.default.isExecutableFile(atPath: "\(directory)/\(name)") {
                return "\(directory)/\(name)"
            }
        }
        return nil
    }

    let pid: pid_t
    let toBrowser: Int32
    let fromBrowser: Int32
    let profile: String
    private var nextID = 0
    private var pending: [UInt8] = []

    init(path: String) throws {
        profile = NSTemporaryDirectory() + "annals-chromium-\(UUID().uuidString)"
        let input = try Spawn.pipe()
        let output = try Spawn.pipe()
        defer {
            Glibc.close(input.read)
            Glibc.close(output.write)
        }
        let arguments = [
            "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
            "--remote-debugging-pipe", "--user-data-dir=\(profile)", "about:blank",
        ]
        do {
            pid = try Spawn.start(path, arguments, output: .null, error: .null, extra: [input.read, output.write])
        } catch {
            Glibc.close(input.write)
            Glibc.close(output.read)
            throw error
        }
        toBrowser = input.write
        fromBrowser = output.read
    }

    func close() {
        kill(pid, SIGKILL)
        _ = Spawn.exitCode(of: pid)
        Glibc.close(toBrowser)
        Glibc.close(fromBrowser)
        try? FileManager.default.removeItem(atPath: profile)
    }

    /// Opens a tab on `url`; returns its session id.
    func open(_ url: String) async throws -> String {
        let target = try await offThread {
            try self.call("Target.createTarget", ["url": url])["targetId"] as? String ?? ""
        }
        let session = try await offThread {
            try self.call("Target.attachToTarget", ["targetId": target, "flatten": true])["sessionId"] as? String ?? ""
        }
        try #require(!session.isEmpty, "the browser opened no tab")
        return session
    }

    /// Evaluates `expression` until its string value contains `text` (10 s at most); returns the value.
    @discardableResult
    func waitFor(_ session: String, _ expression: String, toContain text: String) async throws -> String {
        var last = ""
        for _ in 0..<100 {
            last = try await offThread {
                let result = try self.call(
                    "Runtime.evaluate", ["expression": expression, "returnByValue": true], session: session)
                return ((result["result"] as? [String: Any])?["value"] as? String) ?? ""
            }
            if last.contains(text) { return last }
            try await Task.sleep(for: .milliseconds(100))
        }
        Issue.record("'\(expression)' never contained '\(text)'; last value: \(last)")
        return last
    }

    /// Sends one command and reads messages until its answer arrives.
    func call(_ method: String, _ parameters: [String: Any], session: String? = nil) throws -> [String: Any] {
        nextID += 1
        let id = nextID
        var message: [String: Any] = ["id": id, "method": method, "params": parameters]
        if let session { message["sessionId"] = session }
        var bytes = [UInt8](try JSONSerialization.data(withJSONObject: message))
        bytes.append(0)
        var offset = 0
        while offset < bytes.count {
            let wrote = bytes[offset...].withUnsafeBytes { write(toBrowser, $0.baseAddress, $0.count) }
            guard wrote > 0 else { throw EventStoreError(.unavailable, "the browser closed its pipe") }
            offset += wrote
        }
        while true {
            let reply = try readMessage()
            guard (reply["id"] as? Int) == id else { continue }
            if let error = reply["error"] { throw EventStoreError(.unavailable, "\(method) failed: \(error)") }
            return reply["result"] as? [String: Any] ?? [:]
        }
    }

    private func readMessage() throws -> [String: Any] {
        while true {
            if let end = pending.firstIndex(of: 0) {
                let message = Array(pending[..<end])
                pending.removeSubrange(...end)
                return (try JSONSerialization.jsonObject(with: Data(message)) as? [String: Any]) ?? [:]
            }
            var poll = pollfd(fd: fromBrowser, events: Int16(POLLIN), revents: 0)
            guard Glibc.poll(&poll, 1, 20_000) > 0 else {
                throw EventStoreError(.unavailable, "the browser did not answer")
            }
            var buffer = [UInt8](repeating: 0, count: 65_536)
            let got = read(fromBrowser, &buffer, buffer.count)
            guard got > 0 else { throw EventStoreError(.unavailable, "the browser closed its pipe") }
            pending += buffer[0..<got]
        }
    }
}
