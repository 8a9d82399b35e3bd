import HTTPTypes
import Hummingbird
import NIOCore

/// The operator's console at `/`: plain HTML and JavaScript, no build chain, no external resources.
///
/// It asks for an admin token (kept in the tab's sessionStorage; `#token=…` in the URL fills it in and
/// is then cleared from the address bar), then shows the store's statistics with a live chart of
/// events/s and append latency (polling `stats` once a second), the streams a page of 25 at a time with
/// a name-prefix search, a stream's events with their data and metadata as JSON, a live tail of `$all`
/// that can be paused, and the tokens, which it can create and revoke.
///
/// Every URL the page uses is relative to the page (`stats`, `streams?…`, `subscribe/all?…`,
/// `admin/console.js`), so it works wherever Annals is mounted: at `/` or under a prefix such as
/// `/es/`, as long as the page's own URL ends with `/`. Its script and style are served as files
/// (`/admin/console.js`, `/admin/console.css`), so the Content Security Policy allows nothing inline.
///
/// What the page needs from the server: `GET streams` with `limit`, `after` and `prefix`; `GET stats`,
/// whose optional `appendLatencyMicroseconds` (a count, or null) becomes the latency chart; the token routes;
/// and `subscribe/all?from=end` with `access_token`.
enum AdminPage {
    /// What the page may load and do: its own script, style and API, nothing inline, never framed.
    static let contentSecurityPolicy =
        "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; "
        + "frame-ancestors 'none'; base-uri 'none'; form-action 'none'"

    static func response() -> Response { file(html, contentType: "text/html; charset=utf-8") }

    /// `GET /admin/console.js`.
    static func scriptResponse() -> Response { file(script, contentType: "text/javascript; charset=utf-8") }

    /// `GET /admin/console.css`.
    static func styleResponse() -> Response { file(style, contentType: "text/css; charset=utf-8") }

    private static func file(_ text: String, contentType: String) -> Response {
        var headers = HTTPFields()
        headers[.contentType] = contentType
        headers[.cacheControl] = "no-store"
        headers[HTTPField.Name("Content-Security-Policy")!] = contentSecurityPolicy
        headers[HTTPField.Name("X-Frame-Options")!] = "DENY"
        headers[HTTPField.Name("X-Content-Type-Options")!] = "nosniff"
        return Response(status: .ok, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(string: text)))
    }

    /// The page. Element ids are what the browser tests drive: `token`, `connect`, `error`, `stats-body`,
    /// `chart-events`, `chart-latency` (each with `data-points`), `streams`, `stream-prefix`, `streams-first`,
    /// `streams-next`, `events`, `events-first`, `events-next`, `tail` (`data-live` once the tail is open),
    /// `tail-pause`, `tail-status`, `tokens`, `token-create`, `token-created`.
    static let html = #"""
        <!doctype html>
        <html lang="en">
        <head>
        <meta charset="utf-8">
        <meta name="viewport" content="width=device-width, initial-scale=1">
        <title>Annals</title>
        <link rel="icon" href="data:,">
        <link rel="stylesheet" href="admin/console.css">
        </head>
        <body>
        <header>
          <h1>Annals</h1>
          <input id="token" type="password" placeholder="admin token" size="40" autocomplete="off"
            aria-label="Admin token">
          <button id="connect">Connect</button>
          <small>An admin token: the one the first start of <code>annals serve</code> printed, or one from
            <code>annals token create --name NAME --role admin</code>. Opening this page with
            <code>#token=…</code> after its address fills it in.</small>
        </header>
        <div id="error" role="alert"></div>
        <main>
          <section id="stats">
            <h2>Store</h2>
            <div id="stats-body" class="muted">Not connected.</div>
            <figure>
              <figcaption>Events/s, last 60 s <span id="chart-events-value" class="muted"></span></figcaption>
              <canvas id="chart-events" class="chart" width="300" height="64" data-points=""></canvas>
            </figure>
            <figure id="latency-figure" hidden>
              <figcaption>Append latency, ms (mean over each second)
                <span id="chart-latency-value" class="muted"></span></figcaption>
              <canvas id="chart-latency" class="chart" width="300" height="64" data-points=""></canvas>
            </figure>
          </section>
          <section id="tail-panel">
            <h2>Live tail of $all</h2>
            <div class="controls">
              <button id="tail-pause" aria-pressed="false" disabled>Pause</button>
              <span id="tail-status" class="muted" role="status"></span>
            </div>
            <div id="tail"></div>
          </section>
          <section id="streams-panel">
            <h2>Streams</h2>
            <div class="controls">
              <input id="stream-prefix" type="search" placeholder="name prefix, e.g. order-"
                aria-label="Stream name prefix" autocomplete="off">
              <button id="streams-first" disabled>First</button>
              <button id="streams-next" disabled>Next</button>
            </div>
            <table id="streams">
              <thead><tr><th>Stream</th><th class="number">Events</th><th class="number">Last revision</th></tr></thead>
              <tbody></tbody>
            </table>
            <div id="streams-status" class="muted"></div>
          </section>
          <section id="events-panel">
            <h2 id="events-title">Events</h2>
            <div class="controls">
              <button id="events-first" disabled>First</button>
              <button id="events-next" disabled>Next</button>
            </div>
            <div id="events" class="muted">Choose a stream.</div>
          </section>
          <section id="tokens-panel">
            <h2>Tokens</h2>
            <table id="tokens">
              <thead><tr><th>Id</th><th>Name</th><th>Role</th><th>Scopes</th><th>Created</th><th></th></tr></thead>
              <tbody></tbody>
            </table>
            <form id="token-create">
              <input id="token-name" required maxlength="128" placeholder="name" aria-label="New token's name"
                autocomplete="off">
              <select id="token-role" aria-label="New token's role">
                <option value="reader">reader</option>
                <option value="writer">writer</option>
                <option value="admin">admin</option>
              </select>
              <input id="token-scopes" placeholder="scopes, e.g. order- invoice- (none: every stream)"
                aria-label="New token's scopes" autocomplete="off">
              <button type="submit">Create token</button>
            </form>
            <div id="token-created" role="status"></div>
          </section>
        </main>
        <script src="admin/console.js"></script>
        </body>
        </html>
        """#

    static let style = #"""
        body { font: 14px system-ui, sans-serif; margin: 0; color: #222; }
        [hidden] { display: none !important; }
        header {
          background: #23395d; color: #fff; padding: 8px 16px;
          display: flex; gap: 12px; align-items: center; flex-wrap: wrap;
        }
        header h1 { font-size: 18px; margin: 0 12px 0 0; }
        header small { flex: 1 1 300px; color: #cdd6e4; }
        header code { color: #fff; }
        #error { background: #fdecea; color: #b00; padding: 6px 16px; border-bottom: 1px solid #f5c2bd; }
        #error:empty { display: none; }
        main {
          display: grid; grid-template-columns: minmax(320px, 2fr) 3fr; gap: 16px; padding: 16px; align-items: start;
          grid-template-areas: "stats tail" "streams events" "tokens tokens";
        }
        #stats { grid-area: stats; }
        #tail-panel { grid-area: tail; }
        #streams-panel { grid-area: streams; }
        #events-panel { grid-area: events; }
        #tokens-panel { grid-area: tokens; }
        @media (max-width: 800px) {
          main { grid-template-columns: 1fr; grid-template-areas: "stats" "tail" "streams" "events" "tokens"; }
        }
        #tail { max-height: 340px; overflow: auto; }
        #events { max-height: 70vh; overflow: auto; }
        section { border: 1px solid #ccd; border-radius: 6px; padding: 8px 12px; overflow: auto; min-width: 0; }
        h2 { font-size: 15px; margin: 4px 0 8px; }
        table { border-collapse: collapse; width: 100%; }
        td, th { text-align: left; padding: 2px 6px; border-bottom: 1px solid #eee; vertical-align: top; }
        td.number, th.number { text-align: right; }
        tr.stream { cursor: pointer; }
        tr.stream:hover, tr.stream:focus { background: #eef; outline: none; }
        tr.stream.selected { background: #dde4f6; }
        .controls { display: flex; gap: 6px; align-items: center; margin-bottom: 6px; flex-wrap: wrap; }
        .controls input[type=search] { flex: 1 1 160px; }
        pre { background: #f6f8fa; padding: 6px; margin: 2px 0 4px; white-space: pre-wrap; word-break: break-all; }
        .event { border-bottom: 1px solid #eee; padding: 4px 0; }
        .event-head { display: flex; gap: 10px; flex-wrap: wrap; align-items: baseline; }
        .event-head .type { font-weight: 600; }
        .label { font-size: 12px; color: #777; }
        .badge { font-size: 11px; border-radius: 3px; padding: 0 4px; background: #eee; color: #555; margin-left: 4px; }
        .badge.bad { background: #fdecea; color: #b00; }
        .muted { color: #777; }
        figure { margin: 8px 0 0; }
        figcaption { font-size: 12px; color: #444; }
        canvas.chart { display: block; width: 100%; height: 64px; background: #fafbfd; border: 1px solid #e3e6ee; }
        #stats-body.stats { display: grid; grid-template-columns: repeat(auto-fill, minmax(150px, 1fr)); gap: 0 12px; }
        #token-create { display: flex; gap: 6px; flex-wrap: wrap; margin-top: 8px; }
        #token-create #token-scopes { flex: 1 1 180px; }
        #token-created:not(:empty) {
          margin-top: 8px; padding: 6px 8px; background: #eef7ee; border: 1px solid #b7dcb7; border-radius: 4px;
        }
        #token-created code.secret {
          display: block; margin: 4px 0; padding: 4px; background: #fff; user-select: all; word-break: break-all;
        }
        button.danger { background: #b00; color: #fff; border: 1px solid #900; border-radius: 3px; }
        """#

    static let script = #"""
        "use strict";
        // The Annals admin console. Every URL here is relative to the page (stats, never /stats), so the
        // console works wherever Annals is mounted: at / or under a prefix such as /es/.
        const $ = (id) => document.getElementById(id);
        const STREAMS_PER_PAGE = 25;
        const EVENTS_PER_PAGE = 20;
        const TAIL_ROWS = 200;
        const CHART_POINTS = 60;

        let token =
          sessionStorage.getItem("annals-token") || new URLSearchParams(location.hash.slice(1)).get("token") || "";
        // The token came in the fragment: keep it out of the address bar and the history.
        if (location.hash) history.replaceState(null, "", location.pathname + location.search);
        $("token").value = token;

        // Bumped by each connect, so that the work of an earlier connection (a poll, a tail) stops.
        let generation = 0;
        let source = null;
        let statsTimer = null;
        let refreshTimer = null;

        // The page reports its own Content-Security-Policy violations, so a test can see that none happened.
        const violations = [];
        document.addEventListener("securitypolicyviolation", (event) => {
          violations.push(event.violatedDirective);
          document.body.dataset.cspViolations = violations.join(" ");
        });

        // MARK: DOM and API helpers

        function element(tag, cls, ...children) {
          const node = document.createElement(tag);
          if (cls) node.className = cls;
          node.append(...children);
          return node;
        }
        function text(tag, content, cls) {
          return element(tag, cls, String(content));
        }
        function button(label, onClick, cls) {
          const node = text("button", label, cls);
          node.type = "button";
          node.addEventListener("click", onClick);
          return node;
        }

        class APIError extends Error {
          constructor(status, code, message) {
            super(message);
            this.status = status;
            this.code = code;
          }
        }

        /** One path segment: every byte but A–Z a–z 0–9 - _ ~ percent-encoded ("." too: "." and ".." are names). */
        function segment(name) {
          return encodeURIComponent(name).replace(/[!'()*.]/g, (c) => "%" + c.charCodeAt(0).toString(16).toUpperCase());
        }

        /** Calls the API at `path`, relative to the page: the parsed JSON answer (null for 204), or an APIError. */
        async function api(path, { method = "GET", body } = {}) {
          if (path.startsWith("/")) throw new Error("The console's URLs are relative to the page: " + path);
          const headers = { Authorization: "Bearer " + token };
          if (body !== undefined) headers["Content-Type"] = "application/json";
          const response = await fetch(path, {
            method, headers, cache: "no-store", body: body === undefined ? undefined : JSON.stringify(body),
          });
          if (response.status === 204) return null;
          let answer = null;
          try {
            answer = await response.json();
          } catch {
            // Not JSON (a proxy's error page): the status says enough.
          }
          if (!response.ok) {
            const error = answer && answer.error;
            throw new APIError(response.status, error ? error.code : "http-" + response.status,
              error ? error.message : response.statusText || "The request failed.");
          }
          return answer;
        }

        function describe(error) {
          if (!(error instanceof APIError)) return "The server could not be reached: " + error.message;
          const message = error.code + ": " + error.message;
          if (error.status === 401) return "Wrong token (401 " + message + ")";
          if (error.status === 403) return "Not an admin token (403 " + message + ")";
          return (error.status ? error.status + " " : "") + message;
        }

        // The error bar shows the last failure. A background task (the statistics poll, the tail) clears only
        // its own error when it works again, so a failed click stays visible.
        let errorOwner = null;
        function showError(error, owner) {
          $("error").textContent = typeof error === "string" ? error : describe(error);
          errorOwner = owner;
        }
        function clearError(owner) {
          if (owner && owner !== errorOwner) return;
          $("error").textContent = "";
          errorOwner = null;
        }
        /** A click handler: clears the error bar, runs `work`, shows its failure. */
        function action(work) {
          return async (...args) => {
            clearError();
            try {
              await work(...args);
            } catch (error) {
              showError(error, "action");
            }
          };
        }

        function formatNumber(value, digits) {
          return value.toLocaleString("en-US", { maximumFractionDigits: digits });
        }
        function formatBytes(bytes) {
          const units = ["B", "KiB", "MiB", "GiB", "TiB"];
          let value = bytes;
          let unit = 0;
          while (value >= 1024 && unit < units.length - 1) {
            value /= 1024;
            unit += 1;
          }
          return (unit === 0 ? value : value.toFixed(1)) + " " + units[unit];
        }

        // MARK: Events

        function decodeBase64(base64) {
          const bytes = Uint8Array.from(atob(base64), (c) => c.charCodeAt(0));
          try {
            return { text: new TextDecoder("utf-8", { fatal: true }).decode(bytes), isText: true };
          } catch {
            return { text: base64, isText: false };
          }
        }

        /** The label and text of an event's `data` or `metadata`, whichever form the server sent; null when absent. */
        function payload(event, field) {
          if (event[field] !== undefined) {
            const value = event[field];
            if (field === "data" && event.contentType === "application/octet-stream") {
              return { label: "data (binary, base64)", text: value };
            }
            return { label: field, text: JSON.stringify(value, null, 2) };
          }
          const base64 = event[field + "Base64"];
          if (base64 === undefined) return null;
          const decoded = decodeBase64(base64);
          return decoded.isText
            ? { label: field + " (stored bytes, as text)", text: decoded.text }
            : { label: field + " (base64, not UTF-8)", text: decoded.text };
        }

        function eventView(event) {
          const head = element("div", "event-head",
            text("span", event.type, "type"),
            text("span", event.stream, "stream"),
            text("span", "revision " + event.revision),
            text("span", "position " + event.position),
            text("time", event.recordedAt, "muted"));
          const box = element("article", "event", head);
          for (const field of ["data", "metadata"]) {
            const shown = payload(event, field);
            if (shown) box.append(text("div", shown.label, "label"), text("pre", shown.text));
          }
          return box;
        }

        // MARK: Statistics and the chart

        let lastSample = null;
        const series = { events: [], latency: [], latencySeen: false };

        function record(stats) {
          const now = performance.now();
          if (lastSample) {
            const seconds = (now - lastSample.time) / 1000;
            const written = stats.eventsWritten - lastSample.eventsWritten;
            push(series.events, seconds > 0 && written >= 0 ? Math.round((written / seconds) * 10) / 10 : 0);
          }
          lastSample = { time: now, eventsWritten: stats.eventsWritten };
          drawChart($("chart-events"), series.events, "#23395d");
          const latest = series.events.length ? series.events[series.events.length - 1] : null;
          $("chart-events-value").textContent = latest === null ? "" : "now " + formatNumber(latest, 1) + " events/s";

          // Append latency is drawn once the server reports it (`appendLatencyMicroseconds`; null in a second
          // without appends).
          if ("appendLatencyMicroseconds" in stats || series.latencySeen) {
            series.latencySeen = true;
            const value = stats.appendLatencyMicroseconds;
            const latency = typeof value === "number" ? value / 1000 : null;
            push(series.latency, latency);
            $("latency-figure").hidden = false;
            drawChart($("chart-latency"), series.latency, "#b05a00");
            $("chart-latency-value").textContent =
              latency === null ? "now: no appends" : "now " + formatNumber(latency, 3) + " ms";
          }
        }
        function push(points, value) {
          points.push(value);
          if (points.length > CHART_POINTS) points.shift();
        }

        /** Draws `points` (one a second, the newest on the right, null for none) and puts them in `data-points`. */
        function drawChart(canvas, points, color) {
          canvas.dataset.points = points.map((point) => (point === null ? "" : String(point))).join(",");
          const ratio = window.devicePixelRatio || 1;
          const width = canvas.clientWidth || 300;
          const height = canvas.clientHeight || 64;
          if (canvas.width !== Math.round(width * ratio)) canvas.width = Math.round(width * ratio);
          if (canvas.height !== Math.round(height * ratio)) canvas.height = Math.round(height * ratio);
          const g = canvas.getContext("2d");
          g.setTransform(ratio, 0, 0, ratio, 0, 0);
          g.clearRect(0, 0, width, height);

          const values = points.filter((point) => point !== null);
          const top = niceCeiling(values.length ? Math.max(...values) : 0);
          const pad = { top: 12, bottom: 4 };
          const y = (value) => height - pad.bottom - (value / top) * (height - pad.top - pad.bottom);
          const x = (index) => width - 2 - (points.length - 1 - index) * ((width - 4) / (CHART_POINTS - 1));

          g.strokeStyle = "#e3e6ee";
          g.lineWidth = 1;
          g.beginPath();
          g.moveTo(0, y(top) + 0.5);
          g.lineTo(width, y(top) + 0.5);
          g.stroke();
          g.fillStyle = "#777";
          g.font = "10px system-ui, sans-serif";
          g.fillText(formatNumber(top, 3), 3, 10);

          g.strokeStyle = color;
          g.fillStyle = color;
          g.lineWidth = 1.5;
          g.beginPath();
          let drawing = false;
          points.forEach((point, index) => {
            if (point === null) {
              drawing = false;
              return;
            }
            if (drawing) g.lineTo(x(index), y(point));
            else g.moveTo(x(index), y(point));
            drawing = true;
          });
          g.stroke();
          points.forEach((point, index) => {
            const before = points[index - 1] ?? null;
            const after = points[index + 1] ?? null;
            // A point with no neighbour draws no line: mark it with a dot.
            if (point !== null && before === null && after === null) g.fillRect(x(index) - 1.5, y(point) - 1.5, 3, 3);
          });
        }
        /** 1, 2 or 5 times a power of ten, at least `value` (1 for nothing). */
        function niceCeiling(value) {
          if (!(value > 0)) return 1;
          const power = Math.pow(10, Math.floor(Math.log10(value)));
          for (const step of [1, 2, 5, 10]) if (value <= step * power) return step * power;
          return 10 * power;
        }

        function showStats(stats) {
          const body = $("stats-body");
          body.className = "stats";
          body.replaceChildren(...Object.entries(stats).map(([key, value]) => {
            let shown = value === null ? "—" : String(value);
            if (key === "bytesWritten" && typeof value === "number") shown += " (" + formatBytes(value) + ")";
            if (key === "appendLatencyMicroseconds" && typeof value === "number") shown = formatNumber(value / 1000, 3) + " ms";
            return text("div", key + ": " + shown);
          }));
        }

        async function pollStats(mine) {
          statsTimer = null;
          try {
            const stats = await api("stats");
            if (mine !== generation) return;
            clearError("stats");
            showStats(stats);
            record(stats);
          } catch (error) {
            if (mine === generation) showError(error, "stats");
          } finally {
            if (mine === generation) statsTimer = setTimeout(() => pollStats(mine), 1000);
          }
        }

        // MARK: Streams

        const streams = { prefix: "", after: null, next: null, page: 0, selected: null, ticket: 0 };

        async function loadStreams() {
          const ticket = ++streams.ticket;
          const query = new URLSearchParams({ limit: String(STREAMS_PER_PAGE) });
          if (streams.prefix) query.set("prefix", streams.prefix);
          if (streams.after !== null) query.set("after", streams.after);
          const page = await api("streams?" + query);
          // A newer search or page was asked for while this one was on its way.
          if (ticket !== streams.ticket) return;
          streams.next = page.next ?? null;
          const rows = page.streams.map((info) => {
            const name = element("td", "", info.stream);
            if (info.isTombstoned) name.append(" ", text("span", "tombstoned", "badge bad"));
            else if (info.isDeleted) name.append(" ", text("span", "deleted", "badge"));
            const row = element("tr", "stream" + (info.stream === streams.selected ? " selected" : ""), name,
              text("td", info.eventCount, "number"),
              text("td", info.lastRevision ?? "—", "number"));
            row.tabIndex = 0;
            row.dataset.stream = info.stream;
            row.addEventListener("click", action(() => openStream(info.stream)));
            row.addEventListener("keydown", (event) => {
              if (event.key === "Enter") row.click();
            });
            return row;
          });
          $("streams").tBodies[0].replaceChildren(...rows);
          $("streams-next").disabled = streams.next === null;
          $("streams-first").disabled = streams.after === null;
          const first = streams.page * STREAMS_PER_PAGE + 1;
          const filter = streams.prefix ? " starting with “" + streams.prefix + "”" : "";
          $("streams-status").textContent = rows.length === 0
            ? (streams.page === 0 ? "No streams" + filter + "." : "No more streams" + filter + ".")
            : "Streams " + first + "–" + (first + rows.length - 1) + filter
              + (streams.next === null ? ", the last page." : ".");
        }

        function firstStreams() {
          streams.after = null;
          streams.page = 0;
          return loadStreams();
        }

        let prefixTimer = null;
        $("stream-prefix").addEventListener("input", () => {
          // Searches once typing pauses, not on every key.
          clearTimeout(prefixTimer);
          prefixTimer = setTimeout(action(() => {
            streams.prefix = $("stream-prefix").value;
            return firstStreams();
          }), 250);
        });
        $("streams-first").addEventListener("click", action(firstStreams));
        $("streams-next").addEventListener("click", action(() => {
          if (streams.next === null) return;
          streams.after = streams.next;
          streams.page += 1;
          return loadStreams();
        }));

        function refreshStreamsSoon() {
          // At most one refresh of the stream list a second, however busy the tail.
          if (refreshTimer) return;
          const mine = generation;
          refreshTimer = setTimeout(() => {
            refreshTimer = null;
            if (mine === generation) loadStreams().catch(() => {});
          }, 1000);
        }

        // MARK: A stream's events

        const events = { stream: null, from: 0, next: null };

        async function openStream(name) {
          events.stream = name;
          events.from = 0;
          streams.selected = name;
          for (const row of $("streams").tBodies[0].rows) row.classList.toggle("selected", row.dataset.stream === name);
          await loadEvents();
        }

        async function loadEvents() {
          const { stream, from } = events;
          const query = new URLSearchParams({ from: String(from), limit: String(EVENTS_PER_PAGE) });
          const page = await api("streams/" + segment(stream) + "?" + query);
          if (stream !== events.stream || from !== events.from) return;
          events.next = page.next ?? null;
          $("events-title").textContent = "Events of " + stream + (from > 0 ? ", from revision " + from : "");
          const list = $("events");
          list.className = page.events.length ? "" : "muted";
          if (page.events.length) list.replaceChildren(...page.events.map(eventView));
          else list.textContent = from > 0 ? "No more events." : "No events.";
          $("events-next").disabled = events.next === null;
          $("events-first").disabled = from === 0;
        }

        $("events-next").addEventListener("click", action(() => {
          if (events.next === null) return;
          events.from = events.next;
          return loadEvents();
        }));
        $("events-first").addEventListener("click", action(() => {
          events.from = 0;
          return loadEvents();
        }));

        // MARK: The live tail

        const tail = { paused: false, held: [], heldCount: 0, state: "" };

        function showTail(list) {
          const rows = $("tail");
          for (const event of list) rows.prepend(eventView(event));
          while (rows.children.length > TAIL_ROWS) rows.lastChild.remove();
        }

        function showTailStatus() {
          const parts = [];
          if (tail.state) parts.push(tail.state);
          if (tail.paused) parts.push(tail.heldCount + " new while paused");
          $("tail-status").textContent = parts.join(" · ");
        }

        function received(event) {
          if (tail.paused) {
            // Counted, and the newest kept, until Resume shows them.
            tail.heldCount += 1;
            tail.held.push(event);
            if (tail.held.length > TAIL_ROWS) tail.held.shift();
            showTailStatus();
          } else {
            showTail([event]);
          }
          refreshStreamsSoon();
        }

        function openTail(mine) {
          const opened = new EventSource("subscribe/all?from=end&access_token=" + encodeURIComponent(token));
          source = opened;
          const deliver = (message) => {
            if (mine !== generation) return;
            let event;
            try {
              event = JSON.parse(message.data);
            } catch {
              return;
            }
            received(event);
          };
          // Events come as unnamed messages; an `event`-named frame is taken the same way.
          opened.addEventListener("message", deliver);
          opened.addEventListener("event", deliver);
          opened.addEventListener("open", () => {
            if (mine !== generation) return;
            $("tail").dataset.live = "true";
            tail.state = "";
            clearError("tail");
            showTailStatus();
          });
          opened.addEventListener("error", (message) => {
            if (mine !== generation) return;
            if (message.data) {
              // The server ended the subscription and said why.
              try {
                const error = JSON.parse(message.data).error;
                showError(new APIError(0, error.code, error.message), "tail");
              } catch {
                // Not an error body: the connection's own trouble, handled below.
              }
            }
            const closed = opened.readyState === EventSource.CLOSED;
            $("tail").dataset.live = "false";
            tail.state = closed ? "stopped; Connect starts it again" : "reconnecting…";
            showTailStatus();
          });
        }

        $("tail-pause").addEventListener("click", () => {
          tail.paused = !tail.paused;
          $("tail-pause").textContent = tail.paused ? "Resume" : "Pause";
          $("tail-pause").setAttribute("aria-pressed", String(tail.paused));
          if (!tail.paused) {
            const dropped = tail.heldCount - tail.held.length;
            showTail(tail.held);
            if (dropped > 0) {
              const note = dropped + " older events arrived while paused and are not shown.";
              $("tail").prepend(text("div", note, "muted"));
            }
            tail.held = [];
            tail.heldCount = 0;
          }
          showTailStatus();
        });

        // MARK: Tokens

        /** The public id of the console's own token: `annals_<8 characters>_<32 characters>` is `tok_<the 8>`. */
        function ownTokenID() {
          return token.length === 48 && token.startsWith("annals_") ? "tok_" + token.slice(7, 15) : null;
        }

        async function loadTokens() {
          const answer = await api("tokens");
          const own = ownTokenID();
          const rows = answer.tokens.map((info) => {
            const name = element("td", "", info.name);
            if (info.id === own) name.append(" ", text("span", "this console", "badge"));
            return element("tr", "",
              text("td", info.id),
              name,
              text("td", info.role),
              info.scopes.length ? text("td", info.scopes.join(" ")) : text("td", "every stream", "muted"),
              text("td", info.createdAt),
              element("td", "", revokeButton(info, info.id === own)));
          });
          $("tokens").tBodies[0].replaceChildren(...rows);
        }

        /** Revoke asks first: the first click arms the button for five seconds, a second click revokes. */
        function revokeButton(info, isOwn) {
          let disarm = null;
          const node = button("Revoke", action(async () => {
            if (node.dataset.armed !== "true") {
              node.dataset.armed = "true";
              node.textContent = isOwn ? "Really revoke? (this console's own token)" : "Really revoke?";
              node.classList.add("danger");
              disarm = setTimeout(() => {
                delete node.dataset.armed;
                node.textContent = "Revoke";
                node.classList.remove("danger");
              }, 5000);
              return;
            }
            clearTimeout(disarm);
            node.disabled = true;
            try {
              await api("tokens/" + segment(info.id), { method: "DELETE" });
            } finally {
              node.disabled = false;
            }
            await loadTokens();
          }));
          node.dataset.id = info.id;
          return node;
        }

        function showCreatedToken(created) {
          const box = $("token-created");
          const record = created.record || {};
          const secret = text("code", created.token, "secret");
          const copy = button("Copy", () => {
            const select = () => window.getSelection().selectAllChildren(secret);
            if (!navigator.clipboard) {
              select();
              copy.textContent = "Selected: press Ctrl+C or ⌘C";
              return;
            }
            navigator.clipboard.writeText(created.token).then(
              () => { copy.textContent = "Copied"; },
              () => { select(); copy.textContent = "Selected: press Ctrl+C or ⌘C"; });
          });
          box.replaceChildren(
            text("div", "New " + record.role + " token “" + record.name + "” (" + record.id + ")."
              + " Copy it now: it is shown only this once."),
            secret,
            element("div", "controls", copy, button("Done", () => box.replaceChildren())));
        }

        $("token-role").addEventListener("change", () => {
          // An admin token reaches every stream and takes no scopes.
          $("token-scopes").disabled = $("token-role").value === "admin";
        });
        $("token-create").addEventListener("submit", (submit) => {
          submit.preventDefault();
          action(async () => {
            const request = { name: $("token-name").value.trim(), role: $("token-role").value };
            const scopes = $("token-scopes").value.split(/[\s,]+/).filter((scope) => scope !== "");
            if (scopes.length && request.role !== "admin") request.scopes = scopes;
            $("token-created").replaceChildren();
            const created = await api("tokens", { method: "POST", body: request });
            showCreatedToken(created);
            $("token-create").reset();
            $("token-scopes").disabled = false;
            await loadTokens();
          })();
        });

        // MARK: Connecting

        function disconnect() {
          generation += 1;
          if (source) source.close();
          source = null;
          clearTimeout(statsTimer);
          clearTimeout(refreshTimer);
          statsTimer = null;
          refreshTimer = null;
          delete $("tail").dataset.live;
        }

        async function connect() {
          disconnect();
          const mine = generation;
          token = $("token").value.trim();
          sessionStorage.setItem("annals-token", token);
          clearError();
          lastSample = null;
          series.events = [];
          series.latency = [];
          series.latencySeen = false;
          Object.assign(tail, { paused: false, held: [], heldCount: 0, state: "" });
          $("tail").replaceChildren();
          $("tail-pause").textContent = "Pause";
          $("tail-pause").setAttribute("aria-pressed", "false");
          showTailStatus();
          $("token-created").replaceChildren();
          if (!token) {
            showError("Enter an admin token.", "action");
            return;
          }
          try {
            // The statistics first: they tell whether the token is an admin's.
            const stats = await api("stats");
            if (mine !== generation) return;
            showStats(stats);
            record(stats);
          } catch (error) {
            if (mine === generation) showError(error, "action");
            return;
          }
          statsTimer = setTimeout(() => pollStats(mine), 1000);
          openTail(mine);
          $("tail-pause").disabled = false;
          const failures = [];
          await Promise.all([
            firstStreams().catch((error) => failures.push(error)),
            loadTokens().catch((error) => failures.push(error)),
          ]);
          if (failures.length && mine === generation) showError(failures[0], "action");
        }

        $("connect").addEventListener("click", connect);
        $("token").addEventListener("keydown", (event) => {
          if (event.key === "Enter") connect();
        });
        if (token) connect();
        """#
}
