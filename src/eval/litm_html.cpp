// The self-contained HTML page of a litm result: the JSON is embedded in a
// <script type="application/json"> block and inline JS draws one SVG U-curve
// per metric and list size, one line per condition. Nothing is fetched.
#include <string>

#include <nlohmann/json.hpp>

#include "html_page.h"
#include "sinklab/litm.h"

namespace sinklab {

namespace {

// The page-specific rules follow html::kBaseStyle.
const char* const kHeadRest = R"HTML(.row { display: flex; flex-wrap: wrap; gap: 18px; }
.legend span { display: inline-block; margin-right: 14px; font-size: 13px; }
.legend i { display: inline-block; width: 14px; height: 3px; vertical-align: middle; margin-right: 5px; }
code { font-family: ui-monospace, "DejaVu Sans Mono", monospace; }
</style>
</head>
<body>
<main>
<header class="card"><h1>sinklab litm: lost in the middle</h1><div id="title-body"></div></header>
<section id="sec-accuracy"><h2>Accuracy by position of the queried pair</h2><div class="body"></div></section>
<section id="sec-logprob"><h2>Mean log-probability of the value tokens by position</h2><div class="body"></div></section>
<section id="sec-table"><h2>All cells</h2><div class="body"></div></section>
</main>
<script type="application/json" id="litm-data">)HTML";

const char* const kScript = R"HTML(const R = JSON.parse(document.getElementById("litm-data").textContent);
const PALETTE = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b"];
const num = (v, d = 3) => Number.isFinite(v) ? v.toFixed(d) : String(v);
function legend(parent) {
  const l = h("div", {class: "legend"}, parent);
  R.conditions.forEach((c, i) => { const sp = h("span", {}, l); h("i", {style: "background:" + PALETTE[i % PALETTE.length]}, sp); sp.appendChild(document.createTextNode(c.name)); });
}
function chart(parent, n, key, lo, hi, label) {
  const W = 360, H = 230, L = 60, B = 36, T = 22, Rm = 12;
  const svg = s("svg", {width: W, height: H, viewBox: `0 0 ${W} ${H}`, "data-chart": key + "-" + n}, parent);
  s("text", {x: W / 2, y: 14, "text-anchor": "middle", "font-size": 13}, svg, `${n} pairs`);
  const x = (t) => L + t * (W - L - Rm), y = (v) => T + (1 - (v - lo) / (hi - lo || 1)) * (H - T - B);
  s("line", {x1: L, y1: H - B, x2: W - Rm, y2: H - B, stroke: "#888"}, svg);
  s("line", {x1: L, y1: T, x2: L, y2: H - B, stroke: "#888"}, svg);
  for (let i = 0; i <= 4; i++) {
    const v = lo + (hi - lo) * i / 4;
    s("text", {class: "tick", x: L - 5, y: y(v) + 4, "text-anchor": "end", "font-size": 11}, svg, num(v, 2));
    s("line", {x1: L, y1: y(v), x2: W - Rm, y2: y(v), stroke: "#eee"}, svg);
    s("text", {class: "tick", x: x(i / 4), y: H - B + 14, "text-anchor": "middle", "font-size": 11}, svg, num(i / 4, 2));
  }
  s("text", {class: "axis-title", x: (L + W) / 2, y: H - 4, "text-anchor": "middle", "font-size": 11}, svg, "position of the queried pair, g / (n - 1)");
  s("text", {class: "axis-title", x: 12, y: (T + H - B) / 2, "text-anchor": "middle", "font-size": 11, transform: `rotate(-90 12 ${(T + H - B) / 2})`}, svg, label);
  R.conditions.forEach((c, ci) => {
    const cells = R.cells.filter((e) => e.condition === ci && e.n_pairs === n).sort((a, b) => a.relative - b.relative);
    const col = PALETTE[ci % PALETTE.length];
    s("polyline", {fill: "none", stroke: col, "stroke-width": 2, points: cells.map((e) => `${x(e.relative)},${y(e[key])}`).join(" ")}, svg);
    for (const e of cells) s("circle", {cx: x(e.relative), cy: y(e[key]), r: 3.5, fill: col}, svg).appendChild(document.createElementNS(NS, "title")).textContent = `${c.name}: g=${e.position}, ${key}=${num(e[key])}`;
  });
}
function sizes() { return [...new Set(R.cells.map((c) => c.n_pairs))].sort((a, b) => a - b); }
function renderTitle(body) {
  const o = R.options;
  h("p", {}, body, `model ${R.model.path} (${R.model.arch}), task ${o.task}, ${o.trials} trials per cell, seed ${o.seed}, longest prompt ${R.max_prompt_tokens} tokens`);
  h("p", {class: "note"}, body, "Accuracy: the value is found (uuid: in the greedy continuation; synthetic: greedy reproduces it token for token). Log-probability: teacher-forced mean over the value tokens, so weak models still draw a curve.");
}
function renderAccuracy(body) { legend(body); const row = h("div", {class: "row"}, body); for (const n of sizes()) chart(row, n, "accuracy", 0, 1, "accuracy"); }
function renderLogprob(body) {
  legend(body);
  const v = R.cells.map((c) => c.logprob).filter(Number.isFinite);
  const lo = Math.min(...v), hi = Math.max(...v);
  const pad = (hi - lo) * 0.1 || 0.5;
  const row = h("div", {class: "row"}, body);
  for (const n of sizes()) chart(row, n, "logprob", lo - pad, hi + pad, "mean log p(value)");
}
function renderTable(body) {
  const t = h("table", {}, body);
  const hr = h("tr", {}, t);
  for (const x of ["condition", "pairs", "g", "g/(n-1)", "accuracy", "exact", "logprob", "rank"]) h("th", {class: x === "condition" ? "l" : ""}, hr, x);
  for (const c of R.cells) {
    const tr = h("tr", {}, t);
    h("td", {class: "l"}, tr, R.conditions[c.condition].name);
    for (const v of [c.n_pairs, c.position, num(c.relative, 2), num(c.accuracy, 2), num(c.exact, 2), num(c.logprob), num(c.rank, 1)]) h("td", {}, tr, String(v));
  }
}
const SECTIONS = [["title-body", renderTitle], ["sec-accuracy", renderAccuracy], ["sec-logprob", renderLogprob], ["sec-table", renderTable]];
const complete = renderSections(SECTIONS, (id, root) => root.querySelector(".body") || root);
document.title = `sinklab litm: ${R.model.arch}, ${R.options.task}` + (complete ? "" : " (errors)");
</script>
</body>
</html>
)HTML";

}  // namespace

std::string litm_html(const nlohmann::json& litm) {
  return html::assemble_page("sinklab litm", kHeadRest, litm, {kScript});
}

}  // namespace sinklab
