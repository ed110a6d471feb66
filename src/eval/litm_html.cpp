// The self-contained HTML page of a litm result: the JSON is embedded in a
// <script type="application/json"> block and inline JS draws one SVG U-curve
// per metric and list size, one line per condition. Nothing is fetched.
#include <string>

#include <nlohmann/json.hpp>

#include "sinklab/litm.h"

namespace sinklab {

namespace {

const char* const kHead = R"HTML(<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>sinklab litm</title>
<style>
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif; margin: 0; background: #f4f5f7; color: #1d2330; }
main { max-width: 1180px; margin: 0 auto; padding: 18px 22px 40px; }
h1 { font-size: 24px; margin: 4px 0 10px; } h2 { font-size: 18px; margin: 0 0 6px; }
section, header.card { background: #fff; border: 1px solid #dde1e8; border-radius: 8px; padding: 14px 18px; margin: 14px 0; }
.note { color: #5b6475; font-size: 13px; margin: 2px 0 8px; }
.err { color: #a40000; background: #ffecec; border: 1px solid #f3b5b5; border-radius: 6px; padding: 8px 12px; }
.row { display: flex; flex-wrap: wrap; gap: 18px; }
.legend span { display: inline-block; margin-right: 14px; font-size: 13px; }
.legend i { display: inline-block; width: 14px; height: 3px; vertical-align: middle; margin-right: 5px; }
table { border-collapse: collapse; font-size: 13px; } th, td { border-bottom: 1px solid #e6e9ef; padding: 3px 9px; text-align: right; }
th { background: #f0f2f6; } td.l, th.l { text-align: left; }
code { font-family: ui-monospace, "DejaVu Sans Mono", monospace; }
svg text { font-family: system-ui, "DejaVu Sans", sans-serif; }
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

const char* const kScript = R"HTML(</script>
<script>
"use strict";
const R = JSON.parse(document.getElementById("litm-data").textContent);
const NS = "http://www.w3.org/2000/svg";
const PALETTE = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b"];
function h(tag, attrs, parent, text) {
  const e = document.createElement(tag);
  for (const k in attrs || {}) e.setAttribute(k, attrs[k]);
  if (text !== undefined) e.textContent = text;
  if (parent) parent.appendChild(e);
  return e;
}
function s(tag, attrs, parent, text) {
  const e = document.createElementNS(NS, tag);
  for (const k in attrs || {}) e.setAttribute(k, attrs[k]);
  if (text !== undefined) e.textContent = text;
  if (parent) parent.appendChild(e);
  return e;
}
const num = (v, d = 3) => Number.isFinite(v) ? v.toFixed(d) : String(v);
function legend(parent) {
  const l = h("div", {class: "legend"}, parent);
  R.conditions.forEach((c, i) => { const sp = h("span", {}, l); h("i", {style: "background:" + PALETTE[i % PALETTE.length]}, sp); sp.appendChild(document.createTextNode(c.name)); });
}
function chart(parent, n, key, lo, hi, label) {
  const W = 360, H = 230, L = 48, B = 36, T = 22, Rm = 12;
  const svg = s("svg", {width: W, height: H, viewBox: `0 0 ${W} ${H}`, "data-chart": key + "-" + n}, parent);
  s("text", {x: W / 2, y: 14, "text-anchor": "middle", "font-size": 13}, svg, `${n} pairs`);
  const x = (t) => L + t * (W - L - Rm), y = (v) => T + (1 - (v - lo) / (hi - lo || 1)) * (H - T - B);
  s("line", {x1: L, y1: H - B, x2: W - Rm, y2: H - B, stroke: "#888"}, svg);
  s("line", {x1: L, y1: T, x2: L, y2: H - B, stroke: "#888"}, svg);
  for (let i = 0; i <= 4; i++) {
    const v = lo + (hi - lo) * i / 4;
    s("text", {x: L - 5, y: y(v) + 4, "text-anchor": "end", "font-size": 11}, svg, num(v, 2));
    s("line", {x1: L, y1: y(v), x2: W - Rm, y2: y(v), stroke: "#eee"}, svg);
    s("text", {x: x(i / 4), y: H - B + 14, "text-anchor": "middle", "font-size": 11}, svg, num(i / 4, 2));
  }
  s("text", {x: (L + W) / 2, y: H - 4, "text-anchor": "middle", "font-size": 11}, svg, "position of the queried pair, g / (n - 1)");
  s("text", {x: 12, y: (T + H - B) / 2, "text-anchor": "middle", "font-size": 11, transform: `rotate(-90 12 ${(T + H - B) / 2})`}, svg, label);
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
const done = [];
for (const [id, fn] of SECTIONS) {
  const root = document.getElementById(id);
  const body = root.querySelector(".body") || root;
  try { fn(body); root.setAttribute("data-rendered", "ok"); done.push(id); }
  catch (e) { root.setAttribute("data-rendered", "error"); h("p", {class: "err"}, body, "This section could not be drawn: " + e); console.error("sinklab-report-error: section " + id + ": " + e); }
}
document.body.setAttribute("data-sections-rendered", done.join(" "));
document.title = `sinklab litm: ${R.model.arch}, ${R.options.task}` + (done.length === SECTIONS.length ? "" : " (errors)");
</script>
</body>
</html>
)HTML";

}  // namespace

std::string litm_html(const nlohmann::json& litm) {
  const std::string data = litm.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  std::string page = kHead;
  // '<' occurs only inside JSON strings; escaping it keeps "</script>" out of the block.
  for (char ch : data) {
    if (ch == '<')
      page += "\\u003c";
    else
      page += ch;
  }
  page += kScript;
  return page;
}

}  // namespace sinklab
