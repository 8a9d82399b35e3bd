import HTTPTypes
import Hummingbird
import NIOCore

/// The admin page at `/`: plain HTML and JavaScript, no build chain. It asks for an admin token (kept in
/// the tab's sessionStorage; `#token=…` in the URL fills it in and is then cleared from the address
/// bar), then shows statistics, the streams, a stream's events and a live tail of `$all`. Its script
/// and style are served as files (`/admin/console.js`, `/admin/console.css`), so the Content Security
/// Policy allows nothing inline.
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

    static let html = #"""
        <!doctype html>
        <html lang="en">
        <head>
        <meta charset="utf-8">
        <title>Annals</title>
        <link rel="stylesheet" href="admin/console.css">
        </head>
        <body>
        <header>
          <h1>Annals</h1>
          <input id="token" type="password" placeholder="admin token" size="40" autocomplete="off">
          <button id="connect">Connect</button>
          <small>An admin token: the one the first start of <code>annals serve</code> printed, or one from
            <code>annals token create --name NAME --role admin</code>. Opening this page as
            <code>/#token=…</code> fills it in.</small>
          <span id="error" role="alert"></span>
        </header>
        <main>
          <div>
            <section id="stats"><h2>Store</h2><div id="stats-body" class="muted">Not connected.</div></section>
            <section><h2>Streams</h2><table id="streams"><thead><tr><th>Stream</th><th>Events</th></tr></thead><tbody></tbody></table></section>
          </div>
          <div>
            <section><h2 id="events-title">Events</h2><div id="events" class="muted">Choose a stream.</div></section>
            <section><h2>Live tail of $all</h2><div id="tail"></div></section>
          </div>
        </main>
        <script src="admin/console.js"></script>
        </body>
        </html>
        """#

    static let style = #"""
          body { font: 14px system-ui, sans-serif; margin: 0; color: #222; }
          header { background: #23395d; color: #fff; padding: 8px 16px; display: flex; gap: 12px; align-items: center; }
          header h1 { font-size: 18px; margin: 0 12px 0 0; }
          main { display: grid; grid-template-columns: 320px 1fr; gap: 16px; padding: 16px; }
          section { border: 1px solid #ccd; border-radius: 6px; padding: 8px 12px; overflow: auto; }
          h2 { font-size: 15px; margin: 4px 0 8px; }
          table { border-collapse: collapse; width: 100%; }
          td, th { text-align: left; padding: 2px 6px; border-bottom: 1px solid #eee; }
          tr.stream { cursor: pointer; } tr.stream:hover { background: #eef; }
          pre { background: #f6f8fa; padding: 6px; margin: 4px 0; white-space: pre-wrap; word-break: break-all; }
          #error { color: #b00; }
          .muted { color: #777; }
        """#

    static let script = #"""
        "use strict";
        const $ = (id) => document.getElementById(id);
        let token = sessionStorage.getItem("annals-token") || new URLSearchParams(location.hash.slice(1)).get("token") || "";
        // The token came in the fragment: keep it out of the address bar and the history.
        if (location.hash) history.replaceState(null, "", location.pathname + location.search);
        let source = null;
        $("token").value = token;

        function text(tag, content, cls) {
          const node = document.createElement(tag);
          node.textContent = content;
          if (cls) node.className = cls;
          return node;
        }
        async function api(path) {
          const response = await fetch(path, { headers: { Authorization: "Bearer " + token } });
          const body = await response.json();
          if (!response.ok) throw new Error(body.error ? body.error.code + ": " + body.error.message : response.status);
          return body;
        }
        function eventView(event) {
          const box = document.createElement("div");
          box.className = "event";
          box.appendChild(text("div", "#" + event.position + "  " + event.stream + "@" + event.revision + "  " + event.type + "  " + event.recordedAt, "muted"));
          const payload = event.data !== undefined ? event.data : event.dataBase64;
          box.appendChild(text("pre", typeof payload === "string" ? payload : JSON.stringify(payload, null, 2)));
          return box;
        }
        async function loadStats() {
          const stats = await api("/stats");
          const body = $("stats-body");
          body.replaceChildren();
          body.className = "";
          for (const [key, value] of Object.entries(stats)) body.appendChild(text("div", key + ": " + value));
        }
        async function loadStreams() {
          const rows = $("streams").querySelector("tbody");
          rows.replaceChildren();
          let after = null;
          for (let page = 0; page < 20; page++) {
            const result = await api("/streams?limit=500" + (after ? "&after=" + encodeURIComponent(after) : ""));
            for (const info of result.streams) {
              const row = document.createElement("tr");
              row.className = "stream";
              row.appendChild(text("td", info.stream));
              row.appendChild(text("td", String(info.eventCount)));
              row.addEventListener("click", () => showStream(info.stream));
              rows.appendChild(row);
            }
            if (!result.next) break;
            after = result.next;
          }
        }
        async function showStream(name) {
          $("events-title").textContent = "Events of " + name;
          const result = await api("/streams/" + encodeURIComponent(name) + "?limit=200");
          const list = $("events");
          list.className = "";
          list.replaceChildren(...result.events.map(eventView));
        }
        let refreshTimer = null;
        function refreshSoon() {
          // At most one refresh of the statistics and the stream list per second, however busy the tail.
          if (refreshTimer) return;
          refreshTimer = setTimeout(() => {
            refreshTimer = null;
            loadStats().catch(() => {});
            loadStreams().catch(() => {});
          }, 1000);
        }
        function tail() {
          if (source) source.close();
          source = new EventSource("/subscribe/all?from=end&access_token=" + encodeURIComponent(token));
          source.onmessage = (message) => {
            const event = JSON.parse(message.data);
            const list = $("tail");
            list.prepend(eventView(event));
            while (list.children.length > 100) list.lastChild.remove();
            refreshSoon();
          };
          source.onopen = () => { $("tail").dataset.live = "true"; };
        }
        async function connect() {
          token = $("token").value.trim();
          sessionStorage.setItem("annals-token", token);
          $("error").textContent = "";
          try {
            await loadStats();
            await loadStreams();
            tail();
          } catch (error) {
            $("error").textContent = error.message;
          }
        }
        $("connect").addEventListener("click", connect);
        if (token) connect();
        """#
}
