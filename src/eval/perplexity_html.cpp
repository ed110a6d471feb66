// perplexity_json and the comparison page: the running mean of each run's NLL
// against the token position (the StreamingLLM figure), one line per cache.
#include <cmath>
#include <string>

#include <nlohmann/json.hpp>

#include "html_page.h"
#include "sinklab/perplexity.h"

namespace sinklab {

namespace {

const char* const kHeadRest = R"HTML(.legend span { display: inline-block; margin-right: 14px; font-size: 13px; }
.legend i { display: inline-block; width: 14px; height: 3px; vertical-align: middle; margin-right: 5px; }
</style>
</head>
<body>
<main>
<header class="card"><h1>sinklab ppl: caches compared on one stream</h1><div id="title-body"></div></header>
<section id="sec-nll"><h2>Running mean of the NLL by position</h2><div class="body"></div></section>
<section id="sec-table"><h2>Runs</h2><div class="body"></div></section>
</main>
<script type="application/json" id="ppl-data">)HTML";

const char* const kScript = R"HTML(const R = JSON.parse(document.getElementById("ppl-data").textContent);
const PALETTE = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#17becf"];
const num = (v, d = 3) => Number.isFinite(v) ? v.toFixed(d) : String(v);
function runningMean(a) { const out = []; let s = 0; a.forEach((v, i) => { s += v; out.push(s / (i + 1)); }); return out; }
function renderTitle(body) {
  h("p", {}, body, `model ${R.model}, text ${R.text}, ${R.runs.length ? R.runs[0].predicted : 0} predicted tokens`);
  h("p", {class: "note"}, body, "Each line is the mean NLL (nats) of the tokens up to that position. A cache that loses what the model needs bends upward where it starts to evict (at its capacity).");
}
function renderNll(body) {
  const l = h("div", {class: "legend"}, body);
  R.runs.forEach((r, i) => { const sp = h("span", {}, l); h("i", {style: "background:" + PALETTE[i % PALETTE.length]}, sp); sp.appendChild(document.createTextNode(r.cache + (r.positions === "recompute" ? " (recompute)" : ""))); });
  const curves = R.runs.map((r) => runningMean(r.token_nll || []));
  const all = curves.flat().filter(Number.isFinite);
  const W = 760, H = 320, L = 56, B = 42, T = 14, Rm = 14;
  const n = Math.max(1, ...curves.map((c) => c.length));
  const lo = Math.min(...all), hi = Math.max(...all), pad = (hi - lo) * 0.08 || 0.5;
  const x = (i) => L + (i / Math.max(n - 1, 1)) * (W - L - Rm), y = (v) => T + (1 - (v - lo + pad) / (hi - lo + 2 * pad)) * (H - T - B);
  const svg = s("svg", {width: W, height: H, viewBox: `0 0 ${W} ${H}`, "data-chart": "nll"}, body);
  s("line", {x1: L, y1: H - B, x2: W - Rm, y2: H - B, stroke: "#888"}, svg);
  s("line", {x1: L, y1: T, x2: L, y2: H - B, stroke: "#888"}, svg);
  for (let k = 0; k <= 4; k++) {
    const v = lo - pad + (hi - lo + 2 * pad) * k / 4;
    s("text", {class: "tick", x: L - 6, y: y(v) + 4, "text-anchor": "end", "font-size": 11}, svg, num(v, 2));
    s("line", {x1: L, y1: y(v), x2: W - Rm, y2: y(v), stroke: "#eee"}, svg);
    s("text", {class: "tick", x: x((n - 1) * k / 4), y: H - B + 15, "text-anchor": "middle", "font-size": 11}, svg, String(Math.round((n - 1) * k / 4) + 1));
  }
  s("text", {class: "axis-title", x: (L + W) / 2, y: H - 6, "text-anchor": "middle", "font-size": 11}, svg, "token position");
  s("text", {class: "axis-title", x: 13, y: (T + H - B) / 2, "text-anchor": "middle", "font-size": 11, transform: `rotate(-90 13 ${(T + H - B) / 2})`}, svg, "mean NLL so far");
  curves.forEach((c, i) => {
    const step = Math.max(1, Math.floor(c.length / 600));
    const pts = [];
    for (let k = 0; k < c.length; k += step) pts.push(`${x(k).toFixed(1)},${y(c[k]).toFixed(1)}`);
    if (c.length) pts.push(`${x(c.length - 1).toFixed(1)},${y(c[c.length - 1]).toFixed(1)}`);
    s("polyline", {fill: "none", stroke: PALETTE[i % PALETTE.length], "stroke-width": 2, points: pts.join(" ")}, svg);
  });
}
function renderTable(body) {
  const t = h("table", {}, body);
  const hr = h("tr", {}, t);
  for (const c of ["cache", "positions", "capacity", "ppl", "KL to the first", "KV MiB", "tok/s", "windows"]) h("th", {class: c === "cache" ? "l" : ""}, hr, c);
  for (const r of R.runs) {
    const tr = h("tr", {}, t);
    h("td", {class: "l"}, tr, r.cache);
    for (const v of [r.positions, r.capacity, num(r.ppl), num(r.kl, 5), num(r.kv_bytes / 1048576, 2), num(r.tokens_per_s, 1), r.windows]) h("td", {}, tr, String(v));
  }
}
const SECTIONS = [["title-body", renderTitle], ["sec-nll", renderNll], ["sec-table", renderTable]];
const complete = renderSections(SECTIONS, (id, root) => root.querySelector(".body") || root);
document.title = "sinklab ppl: caches compared" + (complete ? "" : " (errors)");
</script>
</body>
</html>
)HTML";

}  // namespace

nlohmann::json perplexity_json(const PerplexityResult& r) {
  nlohmann::json chunks = nlohmann::json::array();
  for (const PerplexityChunk& c : r.chunks)
    chunks.push_back({{"start", c.start}, {"tokens", c.count}, {"nll", c.nll / double(c.count)},
                      {"ppl", std::exp(c.nll / double(c.count))}, {"kl", c.kl / double(c.count)}});
  nlohmann::json j = {{"cache", r.cache},
                      {"positions", r.positions},
                      {"capacity", r.capacity},
                      {"predicted", r.predicted},
                      {"nll", r.nll},
                      {"ppl", r.ppl},
                      {"kl", r.kl},
                      {"windows", r.windows},
                      {"tokens_per_s", r.seconds > 0 ? double(r.predicted) / r.seconds : 0.0},
                      {"kv_bytes", r.kv_bytes},
                      {"kv_sliding_bytes", r.kv_sliding_bytes},
                      {"chunks", chunks}};
  if (!r.token_nll.empty()) j["token_nll"] = r.token_nll;
  return j;
}

std::string perplexity_compare_html(const nlohmann::json& comparison) {
  return html::assemble_page("sinklab ppl", kHeadRest, comparison, {kScript});
}

}  // namespace sinklab
