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

    /// `rows=N;first,second,…`: the stream names the list shows.
    static let streamRows = """
        (() => { const rows = [...document.querySelectorAll('#streams tbody tr')];
          return 'rows=' + rows.length + ';' + rows.map((row) => row.dataset.stream).join(','); })()
        """

    @Test(
        "the stream list shows 25 streams a page, Next the rest, and a prefix search only the matching ones",
        .timeLimit(.minutes(2)))
    func streamPages() async throws {
        let path = try #require(Browser.path, "CI=true needs Chromium (.ci/run installs it)")
        try await TestServer.with { server in
            // Created in this order, which is the list's order: order-10 … order-29, then user-10 … user-19.
            for number in 10...29 { try await server.appendJSON(#"{"type":"T","data":{}}"#, to: "order-\(number)") }
            for number in 10...19 { try await server.appendJSON(#"{"type":"T","data":{}}"#, to: "user-\(number)") }
            let browser = try Browser(path: path)
            defer { browser.close() }
            let session = try await browser.open("\(server.url)/#token=\(server.admin)")
            let first = try await browser.waitFor(session, Self.streamRows, toContain: "rows=25;")
            #expect(first.hasPrefix("rows=25;order-10,order-11,") && first.hasSuffix(",user-13,user-14"), "\(first)")
            try await browser.click(session, "#streams-next")
            let second = try await browser.waitFor(session, Self.streamRows, toContain: "rows=5;")
            #expect(second == "rows=5;user-15,user-16,user-17,user-18,user-19")
            let isLast = try await browser.evaluate(session, "String(document.querySelector('#streams-next').disabled)")
            #expect(isLast == "true", "the last page offers no Next")
            try await browser.click(session, "#streams-first")
            try await browser.waitFor(session, Self.streamRows, toContain: "rows=25;order-10,")
            try await browser.evaluate(
                session,
                """
                (() => { const box = document.querySelector('#stream-prefix');
                  box.value = 'order-'; box.dispatchEvent(new Event('input')); })()
                """)
            let filtered = try await browser.waitFor(session, Self.streamRows, toContain: "rows=20;")
            #expect(filtered.hasPrefix("rows=20;order-10,") && !filtered.contains("user-"), "\(filtered)")
        }
    }

    @Test(
        "clicking a stream shows its events with their data and metadata as JSON, 20 a page",
        .timeLimit(.minutes(2)))
    func streamEvents() async throws {
        let path = try #require(Browser.path, "CI=true needs Chromium (.ci/run installs it)")
        try await TestServer.with { server in
            try await server.appendJSON(
                #"[{"type":"OrderPlaced","data":{"total":12},"metadata":{"correlationId":"c-1"}}]"#, to: "order-7")
            let counted = (1...24).map { #"{"type":"Counted","data":{"n":\#($0)}}"# }.joined(separator: ",")
            try await server.appendJSON("[\(counted)]", to: "order-7")
            try await server.appendJSON(#"{"type":"Elsewhere","data":{}}"#, to: "user-1")
            let browser = try Browser(path: path)
            defer { browser.close() }
            let session = try await browser.open("\(server.url)/#token=\(server.admin)")
            try await browser.waitFor(session, "document.querySelector('#streams').innerText", toContain: "order-7")
            try await browser.click(session, "#streams tr[data-stream='order-7']")
            let page = try await browser.waitFor(
                session, "document.querySelector('#events').innerText", toContain: #""total": 12"#)
            #expect(page.contains("OrderPlaced") && page.contains(#""correlationId": "c-1""#), "\(page)")
            #expect(
                page.contains(#""n": 19"#) && !page.contains(#""n": 20"#), "the first page holds 20 events: \(page)")
            #expect(!page.contains("Elsewhere"), "only the chosen stream's events")
            try await browser.click(session, "#events-next")
            let next = try await browser.waitFor(
                session, "document.querySelector('#events').innerText", toContain: #""n": 24"#)
            #expect(next.contains("revision 20") && !next.contains(#""n": 19"#), "\(next)")
            let violations = try await browser.evaluate(session, "document.body.dataset.cspViolations || 'none'")
            #expect(violations == "none", "the page broke its own Content-Security-Policy")
        }
    }

    @Test("a paused tail counts new events without showing them, and shows them on resume", .timeLimit(.minutes(2)))
    func pausedTail() async throws {
        let path = try #require(Browser.path, "CI=true needs Chromium (.ci/run installs it)")
        try await TestServer.with { server in
            let browser = try Browser(path: path)
            defer { browser.close() }
            let session = try await browser.open("\(server.url)/#token=\(server.admin)")
            try await browser.waitFor(session, "document.querySelector('#tail').dataset.live || ''", toContain: "true")
            try await server.appendJSON(#"{"type":"BeforePause","data":{}}"#, to: "order-1")
            try await browser.waitFor(session, "document.querySelector('#tail').innerText", toContain: "BeforePause")
            try await browser.click(session, "#tail-pause")
            try await server.appendJSON(#"{"type":"WhilePaused","data":{"held":true}}"#, to: "order-1")
            // The count proves the event arrived; the tail must still not show it.
            try await browser.waitFor(
                session, "document.querySelector('#tail-status').innerText", toContain: "1 new while paused")
            let paused = try await browser.evaluate(session, "document.querySelector('#tail').innerText")
            #expect(!paused.contains("WhilePaused"), "\(paused)")
            let button = try await browser.evaluate(session, "document.querySelector('#tail-pause').textContent")
            #expect(button == "Resume")
            try await browser.click(session, "#tail-pause")
            let resumed = try await browser.waitFor(
                session, "document.querySelector('#tail').innerText", toContain: "WhilePaused")
            #expect(resumed.contains(#""held": true"#), "\(resumed)")
            if let held = resumed.range(of: "WhilePaused"), let before = resumed.range(of: "BeforePause") {
                #expect(held.lowerBound < before.lowerBound, "the newest event is on top")
            }
            let status = try await browser.evaluate(session, "document.querySelector('#tail-status').innerText")
            #expect(!status.contains("while paused"), "\(status)")
        }
    }

    @Test(
        "the statistics chart draws events per second and append latency from the polled /stats",
        .timeLimit(.minutes(2)))
    func statisticsChart() async throws {
        let path = try #require(Browser.path, "CI=true needs Chromium (.ci/run installs it)")
        try await TestServer.with { server in
            let browser = try Browser(path: path)
            defer { browser.close() }
            let session = try await browser.open("\(server.url)/#token=\(server.admin)")
            // A point needs two polls: wait for the first, so that the appends below fall between two.
            try await browser.waitFor(
                session, "document.querySelector('#chart-events').dataset.points ? 'sampled' : 'empty'",
                toContain: "sampled")
            let moving = """
                (document.querySelector('#chart-events').dataset.points || '').split(',').some((p) => Number(p) > 0)
                  ? 'moving' : 'flat'
                """
            let measured = """
                (document.querySelector('#chart-latency').dataset.points || '').split(',').some((p) => p !== '')
                  && !document.querySelector('#latency-figure').hidden ? 'measured' : 'none'
                """
            // Latency is a mean over a second, so keep appending (for 10 s at most) until a poll has seen some.
            for _ in 0..<50 {
                try await server.appendJSON(#"[{"type":"T","data":{}},{"type":"T","data":{}}]"#, to: "load-1")
                if try await browser.evaluate(session, moving) == "moving",
                    try await browser.evaluate(session, measured) == "measured"
                {
                    break
                }
                try await Task.sleep(for: .milliseconds(200))
            }
            try await browser.waitFor(session, moving, toContain: "moving")
            try await browser.waitFor(session, measured, toContain: "measured")
        }
    }

    @Test(
        "an admin creates a reader token in the page, sees its secret once, then revokes it, after a second click",
        .timeLimit(.minutes(2)))
    func tokenManagement() async throws {
        let path = try #require(Browser.path, "CI=true needs Chromium (.ci/run installs it)")
        try await TestServer.with { server in
            let browser = try Browser(path: path)
            defer { browser.close() }
            let session = try await browser.open("\(server.url)/#token=\(server.admin)")
            try await browser.waitFor(session, "document.querySelector('#tokens').innerText", toContain: "writer")
            try await browser.evaluate(
                session,
                """
                (() => { document.querySelector('#token-name').value = 'console-made';
                  document.querySelector('#token-role').value = 'reader';
                  document.querySelector('#token-create').requestSubmit(); })()
                """)
            try await browser.waitFor(
                session, "document.querySelector('#token-created').innerText", toContain: "annals_")
            let secret = try await browser.evaluate(
                session, "document.querySelector('#token-created code').textContent")
            #expect(secret.hasPrefix("annals_") && secret.count == 48, "\(secret)")
            try await browser.waitFor(session, "document.querySelector('#tokens').innerText", toContain: "console-made")
            #expect(try await server.request(.GET, "/head", token: secret).status == 200, "the new token works")
            // Shown once: the list never holds it, and after Done it is gone from the page.
            let list = try await browser.evaluate(session, "document.querySelector('#tokens').innerText")
            #expect(!list.contains(secret), "the list never shows a secret")
            try await browser.evaluate(
                session,
                "[...document.querySelectorAll('#token-created button')].find((b) => b.textContent === 'Done').click()")
            let page = try await browser.evaluate(session, "document.body.innerText")
            #expect(!page.contains(secret), "the secret stays on the page after Done")

            let revoke = """
                [...document.querySelectorAll('#tokens tbody tr')]
                  .find((row) => row.innerText.includes('console-made')).querySelector('button')
                """
            try await browser.evaluate(session, revoke + ".click()")
            try await browser.waitFor(session, revoke + ".textContent", toContain: "Really revoke?")
            #expect(try await server.request(.GET, "/head", token: secret).status == 200, "one click revokes nothing")
            try await browser.evaluate(session, revoke + ".click()")
            try await browser.waitFor(
                session, "document.querySelector('#tokens').innerText.includes('console-made') ? 'listed' : 'gone'",
                toContain: "gone")
            let refused = try await server.request(.GET, "/head", token: secret)
            #expect(refused.status == 401, "the revoked token is refused: \(refused.status)")
            let violations = try await browser.evaluate(session, "document.body.dataset.cspViolations || 'none'")
            #expect(violations == "none", "the page broke its own Content-Security-Policy")
        }
    }
}

/// The console outside a browser.
@Suite("Admin console")
struct AdminConsoleTests {
    @Test("the console's URLs are relative to the page, so it also works where Annals is mounted under a prefix")
    func relativeURLs() async throws {
        try await TestServer.with { server in
            let page = try await server.request(.GET, "/")
            let script = try await server.request(.GET, "/admin/console.js")
            #expect(page.status == 200 && script.status == 200)
            for attribute in ["href=\"/", "src=\"/", "action=\"/"] {
                #expect(!page.body.contains(attribute), "the page links to an absolute path: \(attribute)")
            }
            // Any string literal that starts with "/" would be an absolute URL.
            let absolute = script.body.matches(of: /["'`]\/[A-Za-z]/).map { String(script.body[$0.range]) }
            #expect(absolute.isEmpty, "absolute URLs in console.js: \(absolute)")
            for relative in [#"api("stats")"#, #"new EventSource("subscribe/all?from=end"#, #"api("tokens""#] {
                #expect(script.body.contains(relative), "\(relative)")
            }
        }
    }
}

extension TestServer {
    /// Appends `events` (a JSON event or array) to `stream` with the admin token, and expects it stored.
    fileprivate func appendJSON(_ events: String, to stream: String) async throws {
        let answer = try await request(
            .POST, "/streams/\(stream)", token: admin, headers: ["Content-Type": "application/json"],
            body: Array(events.utf8))
        #expect(answer.status == 201, "append to \(stream): \(answer.status) \(answer.body)")
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

    /// Evaluates `expression` once; returns its string value ("" for any other). An exception fails the test.
    @discardableResult
    func evaluate(_ session: String, _ expression: String) async throws -> String {
        let (value, exception) = try await offThread { () -> (String, String?) in
            let result = try self.call(
                "Runtime.evaluate", ["expression": expression, "returnByValue": true], session: session)
            let details = result["exceptionDetails"] as? [String: Any]
            let exception = details.map { details in
                ((details["exception"] as? [String: Any])?["description"] as? String) ?? "\(details)"
            }
            return (((result["result"] as? [String: Any])?["value"] as? String) ?? "", exception)
        }
        if let exception { Issue.record("'\(expression)' threw: \(exception)") }
        return value
    }

    /// Clicks the first element that matches the CSS `selector` (one without double quotes).
    func click(_ session: String, _ selector: String) async throws {
        try await evaluate(session, "document.querySelector(\"\(selector)\").click()")
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
