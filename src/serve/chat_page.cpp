// GET /: a self-contained chat page (no external assets) that streams replies
// and shows, live, the cache of the current conversation.
#include <string>

namespace sinklab::serve {

const std::string& chat_page_html() {
  static const std::string page = R"HTML(<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>sinklab serve</title>
<style>
body{margin:0;font:15px/1.45 system-ui,sans-serif;color:#1d2330;background:#f4f5f7;display:flex;height:100vh}
main{flex:1;display:flex;flex-direction:column;min-width:0}
aside{width:340px;border-left:1px solid #d8dbe2;background:#fff;padding:14px 16px;overflow:auto}
header{padding:10px 16px;border-bottom:1px solid #d8dbe2;background:#fff;display:flex;gap:12px;align-items:center}
header b{font-size:16px} header span{color:#667}
#log{flex:1;overflow:auto;padding:16px}
.msg{max-width:760px;margin:0 0 12px;padding:9px 12px;border-radius:8px;white-space:pre-wrap;word-wrap:break-word}
.user{background:#dfe9ff;margin-left:auto} .assistant{background:#fff;border:1px solid #e0e3ea}
.meta{font-size:12px;color:#778;margin-top:4px}
form{display:flex;gap:8px;padding:12px 16px;border-top:1px solid #d8dbe2;background:#fff}
textarea{flex:1;resize:none;height:48px;font:inherit;padding:6px 8px;border:1px solid #c9ced8;border-radius:6px}
button{font:inherit;padding:6px 14px;border:1px solid #3b5bdb;background:#3b5bdb;color:#fff;border-radius:6px;cursor:pointer}
button.plain{background:#fff;color:#3b5bdb}
h2{font-size:14px;margin:14px 0 6px;color:#334} .row{display:flex;justify-content:space-between;font-size:13px}
.bar{height:10px;background:#e8eaf0;border-radius:5px;overflow:hidden;margin:4px 0 8px}
.bar i{display:block;height:100%;background:#3b5bdb}
.chips span{display:inline-block;margin:2px;padding:1px 6px;border-radius:4px;background:#fff3bf;border:1px solid #f0d264;font:12px monospace}
#window{font:12px monospace;background:#f6f7f9;padding:6px;border-radius:4px;white-space:pre-wrap;max-height:140px;overflow:auto}
.layers{display:flex;align-items:flex-end;gap:2px;height:44px;margin:4px 0}
.layers i{flex:1;background:#f08c00;min-height:1px}
#key{display:none;gap:6px} #err{color:#c92a2a;font-size:13px}
</style></head><body>
<main>
<header><b>sinklab serve</b><span id="model">…</span>
<span id="key"><input id="apikey" type="password" placeholder="API key"></span>
<button class="plain" id="new" type="button">New conversation</button></header>
<div id="log"></div>
<div id="err"></div>
<form id="form"><textarea id="text" placeholder="Message (Enter sends, Shift+Enter for a new line)"></textarea>
<input id="max" type="number" value="128" min="1" style="width:70px" title="max_tokens">
<button id="send">Send</button></form>
</main>
<aside>
<h2>Cache of this conversation</h2>
<div class="row"><span>policy</span><span id="cache">–</span></div>
<div class="row"><span>tokens fed</span><span id="npast">0</span></div>
<div class="row"><span>cached / capacity</span><span id="cached">0 / 0</span></div>
<div class="bar"><i id="fill" style="width:0"></i></div>
<div class="row"><span>evicted</span><span id="evicted">0</span></div>
<h2>Sink tokens</h2><div class="chips" id="sinks"><span>none yet</span></div>
<h2>Attention on the sinks, last step</h2>
<div class="row"><span>mean over layers and heads</span><span id="mass">–</span></div>
<div class="bar"><i id="massbar" style="width:0;background:#f08c00"></i></div>
<div class="layers" id="layers"></div>
<h2>Newest tokens in the window</h2><div id="window"></div>
</aside>
<script>
"use strict";
let conv = null, busy = false;
const $ = id => document.getElementById(id);
function headers() {
  const h = {"Content-Type": "application/json"};
  if ($("apikey").value) h["Authorization"] = "Bearer " + $("apikey").value;
  return h;
}
function add(role, text) {
  const d = document.createElement("div");
  d.className = "msg " + role; d.textContent = text;
  $("log").appendChild(d); $("log").scrollTop = 1e9; return d;
}
async function showCache() {
  if (!conv) return;
  const r = await fetch("/v1/conversations/" + conv, {headers: headers()});
  if (!r.ok) return;
  const c = await r.json();
  $("cache").textContent = c.cache; $("npast").textContent = c.n_past;
  $("cached").textContent = c.cached_tokens + " / " + c.capacity;
  $("fill").style.width = (100 * c.cached_tokens / Math.max(1, c.capacity)) + "%";
  $("evicted").textContent = c.evicted_tokens;
  $("sinks").innerHTML = "";
  for (const s of c.sink_tokens) {
    const e = document.createElement("span"); e.textContent = s.text; e.title = "id " + s.id; $("sinks").appendChild(e);
  }
  if (!c.sink_tokens.length) $("sinks").innerHTML = "<span>none (this policy keeps no sink)</span>";
  $("mass").textContent = c.sink_mass == null ? "–" : c.sink_mass.toFixed(3);
  $("massbar").style.width = c.sink_mass == null ? "0" : (100 * c.sink_mass) + "%";
  $("layers").innerHTML = "";
  c.sink_mass_by_layer.forEach((m, l) => {
    const e = document.createElement("i"); e.style.height = (m == null ? 0 : 100 * m) + "%";
    e.title = "layer " + l + ": " + (m == null ? "not measured" : m.toFixed(3)); $("layers").appendChild(e);
  });
  $("window").textContent = c.recent_text;
}
async function send(text) {
  busy = true; $("err").textContent = "";
  add("user", text);
  const out = add("assistant", "");
  const body = {messages: [{role: "user", content: text}], stream: true, observe_attention: true,
                max_tokens: +$("max").value || 128};
  if (conv) body.conversation_id = conv; else body.persist = true;
  const poll = setInterval(showCache, 400);
  try {
    const r = await fetch("/v1/chat/completions", {method: "POST", headers: headers(), body: JSON.stringify(body)});
    if (!r.ok) {
      const e = await r.json().catch(() => ({error: {message: r.statusText}}));
      if (r.status == 401) $("key").style.display = "flex";
      throw new Error(e.error.message);
    }
    conv = r.headers.get("X-Conversation-Id") || conv;
    const reader = r.body.getReader(), dec = new TextDecoder();
    let buf = "", last = null;
    for (;;) {
      const {value, done} = await reader.read();
      if (done) break;
      buf += dec.decode(value, {stream: true});
      let cut;
      while ((cut = buf.indexOf("\n\n")) >= 0) {
        const ev = buf.slice(0, cut); buf = buf.slice(cut + 2);
        if (!ev.startsWith("data: ") || ev == "data: [DONE]") continue;
        const j = JSON.parse(ev.slice(6)); last = j;
        const d = j.choices.length ? j.choices[0].delta : {};
        if (d.content) { out.textContent += d.content; $("log").scrollTop = 1e9; }
      }
    }
    if (last && last.choices.length) {
      const m = document.createElement("div"); m.className = "meta";
      m.textContent = last.choices[0].finish_reason + " · " + last.evicted_tokens + " tokens evicted so far";
      out.appendChild(m);
    }
  } catch (e) { $("err").textContent = e.message; }
  clearInterval(poll); busy = false; showCache();
}
$("form").onsubmit = e => {
  e.preventDefault();
  const t = $("text").value.trim();
  if (t && !busy) { $("text").value = ""; send(t); }
};
$("text").onkeydown = e => { if (e.key == "Enter" && !e.shiftKey) { e.preventDefault(); $("form").requestSubmit(); } };
$("new").onclick = () => {
  if (conv) fetch("/v1/conversations/" + conv, {method: "DELETE", headers: headers()});
  conv = null; $("log").innerHTML = ""; $("sinks").innerHTML = ""; $("window").textContent = "";
};
fetch("/v1/models", {headers: headers()}).then(r => {
  if (r.status == 401) { $("key").style.display = "flex"; return null; }
  return r.json();
}).then(j => {
  if (!j) return;
  const m = j.data[0];
  $("model").textContent = m.id + " · " + m.sinklab.cache + " · chat format " + m.sinklab.chat_format;
});
</script></body></html>
)HTML";
  return page;
}

}  // namespace sinklab::serve
