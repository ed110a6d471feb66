// The self-contained HTML page of an inspection report: the report JSON is
// embedded in a <script type="application/json"> block and drawn by inline JS
// as SVG and canvas figures. Nothing is loaded from the network.
#include <string>

#include <nlohmann/json.hpp>

#include "html_page.h"
#include "sinklab/report.h"

namespace sinklab {

namespace {

// The page-specific rules follow html::kBaseStyle.
const char* const kHeadRest = R"HTML(h3 { font-size: 14px; margin: 12px 0 4px; }
.meta { display: grid; grid-template-columns: max-content 1fr; gap: 2px 14px; }
.meta dt { color: #5b6475; } .meta dd { margin: 0; font-family: ui-monospace, "DejaVu Sans Mono", monospace; word-break: break-all; }
.preview { font-family: Georgia, serif; background: #fafbfc; border-left: 3px solid #9aa5b8; padding: 6px 10px; margin-top: 8px; white-space: pre-wrap; max-height: 7.5em; overflow: auto; }
.empty { color: #8a4b00; background: #fff6e8; border: 1px solid #f0d6a8; border-radius: 6px; padding: 8px 12px; }
tr.hot td { background: #fff0f0; }
.stack > svg { display: block; }
.row { display: flex; flex-wrap: wrap; gap: 18px; align-items: flex-start; }
.map { text-align: center; font-size: 12px; }
.map canvas { border: 1px solid #ccd2dc; image-rendering: pixelated; display: block; margin: 3px auto; }
.pill { display: inline-block; background: #eef1f6; border-radius: 10px; padding: 1px 9px; margin: 2px 4px 2px 0; font-size: 13px; }
code, .mono { font-family: ui-monospace, "DejaVu Sans Mono", monospace; }
select { font-size: 13px; padding: 2px 4px; }
#sec-verdict { border-left: 6px solid #9aa5b8; }
#sec-verdict.has-sink { border-left-color: #d62728; }
#sec-verdict.no-sink { border-left-color: #2ca02c; }
.verdict { font-size: 20px; font-weight: 600; margin: 4px 0 10px; }
.explain { max-width: 60em; line-height: 1.45; }
</style>
</head>
<body>
<main>
<header class="card" id="title"><h1>sinklab inspect</h1><div id="title-body"></div></header>
<section id="sec-verdict"><h2>Verdict</h2><div class="body"></div></section>
<section id="sec-sinks"><h2>Attention sinks: &alpha;<sub>k</sub> per layer and head</h2><div class="body"></div></section>
<section id="sec-maps"><h2>Attention maps of the top sink heads</h2><div class="body"></div></section>
<section id="sec-massive"><h2>Massive activations (residual stream)</h2><div class="body"></div></section>
<section id="sec-values"><h2>Value norms of the first tokens</h2><div class="body"></div></section>
<section id="sec-propagation"><h2>Propagation: rollout and rank collapse</h2><div class="body"></div></section>
<section id="sec-experts"><h2>Super experts (MoE)</h2><div class="body"></div></section>
<section id="sec-task"><h2>By query kind (models trained on a synthetic task)</h2><div class="body"></div></section>
</main>
<script type="application/json" id="report-data">)HTML";

const char* const kScript = R"HTML(const R = JSON.parse(document.getElementById("report-data").textContent);
const PALETTE = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#7f7f7f", "#bcbd22"];
const VIRIDIS = [[0, [68, 1, 84]], [0.25, [59, 82, 139]], [0.5, [33, 145, 140]], [0.75, [94, 201, 98]], [1, [253, 231, 37]]];

function colour(t) {
  t = Math.max(0, Math.min(1, Number.isFinite(t) ? t : 0));
  for (let i = 1; i < VIRIDIS.length; i++) {
    if (t <= VIRIDIS[i][0]) {
      const [t0, c0] = VIRIDIS[i - 1], [t1, c1] = VIRIDIS[i];
      const u = (t - t0) / (t1 - t0);
      return c0.map((c, k) => Math.round(c + u * (c1[k] - c)));
    }
  }
  return VIRIDIS[VIRIDIS.length - 1][1];
}
const rgb = (c) => `rgb(${c[0]},${c[1]},${c[2]})`;
function num(v, d = 3) {
  if (v === null || v === undefined || !Number.isFinite(v)) return "\u221e";
  const a = Math.abs(v);
  if (a !== 0 && (a >= 1e5 || a < 1e-3)) return v.toExponential(2);
  return v.toFixed(d);
}
// Round axis bounds and a step of 1, 2 or 5 times a power of ten.
function niceAxis(lo, hi, n = 4) {
  const raw = (hi - lo) / n, p = Math.pow(10, Math.floor(Math.log10(raw)));
  const step = p * (raw / p >= 7.5 ? 10 : raw / p >= 3.5 ? 5 : raw / p >= 1.5 ? 2 : 1);
  const a = Math.floor(lo / step + 1e-9) * step, b = Math.ceil(hi / step - 1e-9) * step;
  const ticks = [];
  for (let v = a; v <= b + step / 2; v += step) ticks.push(+v.toPrecision(12));
  return {lo: a, hi: b, ticks};
}
function empty(parent, msg) { h("p", {class: "empty"}, parent, msg); }
function note(parent, msg) { h("p", {class: "note"}, parent, msg); }
const tokenLabel = (i) => (R.text.tokens && R.text.tokens[i] !== undefined) ? R.text.tokens[i].replace(/\n/g, "\u21b5") : String(i);

function colourBar(parent, lo, hi, label) {
  const svg = s("svg", {width: 300, height: 42}, parent);
  const g = s("defs", {}, svg);
  const grad = s("linearGradient", {id: "grad-" + label.replace(/\W/g, ""), x1: "0", x2: "1"}, g);
  for (let i = 0; i <= 10; i++) s("stop", {offset: i / 10, "stop-color": rgb(colour(i / 10))}, grad);
  s("rect", {x: 10, y: 4, width: 240, height: 12, fill: `url(#grad-${label.replace(/\W/g, "")})`, stroke: "#999"}, svg);
  s("text", {x: 10, y: 30, "font-size": 11}, svg, num(lo, 2));
  s("text", {x: 250, y: 30, "font-size": 11, "text-anchor": "end"}, svg, num(hi, 2));
  s("text", {x: 130, y: 30, "font-size": 11, "text-anchor": "middle"}, svg, label);
}

// A grid heat map: values[r][c] in [lo, hi]; optional outline(r, c) marks cells.
function heatGrid(parent, values, rowLabel, colLabel, lo, hi, opts = {}) {
  const rows = values.length, cols = rows ? values[0].length : 0;
  const cw = Math.max(8, Math.min(52, Math.floor(900 / Math.max(cols, 1))));
  const ch = Math.max(8, Math.min(30, Math.floor(520 / Math.max(rows, 1))));
  const left = 64, top = 24, W = left + cols * cw + 10, H = top + rows * ch + 30;
  const svg = s("svg", {width: W, height: H, class: opts.cls || "heat"}, parent);
  const showText = cw >= 34 && ch >= 16;
  for (let r = 0; r < rows; r++) {
    s("text", {x: left - 6, y: top + r * ch + ch / 2 + 4, "font-size": 11, "text-anchor": "end"}, svg, rowLabel(r));
    for (let c = 0; c < cols; c++) {
      const v = values[r][c], t = (v - lo) / ((hi - lo) || 1);
      const rect = s("rect", {x: left + c * cw, y: top + r * ch, width: cw - 1, height: ch - 1, fill: rgb(colour(t))}, svg);
      s("title", {}, rect, `${rowLabel(r)}, ${colLabel(c)}: ${num(v, 4)}`);
      if (opts.outline && opts.outline(r, c))
        s("rect", {x: left + c * cw + 1, y: top + r * ch + 1, width: cw - 3, height: ch - 3, fill: "none", stroke: "#e8175d", "stroke-width": 2}, svg);
      if (showText) s("text", {x: left + c * cw + cw / 2, y: top + r * ch + ch / 2 + 4, "font-size": 10, "text-anchor": "middle", fill: t > 0.6 ? "#000" : "#fff"}, svg, num(v, 2));
    }
  }
  const step = Math.ceil(cols / Math.floor((cols * cw) / 28 || 1));
  for (let c = 0; c < cols; c += Math.max(1, step))
    s("text", {x: left + c * cw + cw / 2, y: top - 6, "font-size": 11, "text-anchor": "middle"}, svg, colLabel(c));
  if (opts.axes) {
    s("text", {x: left + (cols * cw) / 2, y: H - 8, "font-size": 11, "text-anchor": "middle", fill: "#5b6475"}, svg, opts.axes[0]);
  }
  return svg;
}

// Line chart: series = [{name, values}], x = 0..n-1 (or xs), y linear or log.
function lineChart(parent, series, opts = {}) {
  const W = opts.width || 540, H = opts.height || 250, L = 62, Rm = 12, T = 26, B = 40;
  const svg = s("svg", {width: W, height: H}, parent);
  if (opts.title) s("text", {x: L, y: 15, "font-size": 13, "font-weight": 600}, svg, opts.title);
  const all = series.flatMap((q) => q.values).filter((v) => Number.isFinite(v) && (!opts.log || v > 0));
  const n = Math.max(...series.map((q) => q.values.length), 1);
  if (!all.length) { s("text", {x: L, y: H / 2, "font-size": 12}, svg, "no finite values"); return svg; }
  let lo = opts.zero ? Math.min(0, ...all) : Math.min(...all), hi = Math.max(...all);
  if (opts.log) { lo = Math.log10(lo); hi = Math.log10(hi); }
  if (hi - lo < 1e-12) { hi += 0.5; lo -= 0.5; }
  let ticks = null;
  if (!opts.log) ({lo, hi, ticks} = niceAxis(lo, hi));
  const xs = opts.xs || [...Array(n).keys()];
  const x0 = Math.min(...xs), x1 = Math.max(...xs, x0 + 1);
  const X = (x) => L + ((x - x0) / (x1 - x0)) * (W - L - Rm);
  const Y = (v) => T + (1 - ((opts.log ? Math.log10(v) : v) - lo) / (hi - lo)) * (H - T - B);
  s("line", {x1: L, y1: H - B, x2: W - Rm, y2: H - B, stroke: "#888"}, svg);
  s("line", {x1: L, y1: T, x2: L, y2: H - B, stroke: "#888"}, svg);
  for (const v of ticks || [0, 1, 2, 3, 4].map((i) => Math.pow(10, lo + (i / 4) * (hi - lo)))) {
    const y = Y(v);
    s("line", {x1: L, y1: y, x2: W - Rm, y2: y, stroke: "#eee"}, svg);
    s("text", {x: L - 5, y: y + 4, "font-size": 10, "text-anchor": "end"}, svg, num(v, 2));
  }
  const xt = Math.max(1, Math.ceil((x1 - x0) / 8));
  for (let x = x0; x <= x1; x += xt) s("text", {x: X(x), y: H - B + 14, "font-size": 10, "text-anchor": "middle"}, svg, String(x));
  if (opts.xlabel) s("text", {x: (L + W - Rm) / 2, y: H - 6, "font-size": 11, "text-anchor": "middle", fill: "#5b6475"}, svg, opts.xlabel);
  series.forEach((q, si) => {
    const col = q.colour || PALETTE[si % PALETTE.length];
    const pts = q.values.map((v, i) => [xs[i], v]).filter(([, v]) => Number.isFinite(v) && (!opts.log || v > 0));
    s("polyline", {points: pts.map(([x, v]) => `${X(x).toFixed(1)},${Y(v).toFixed(1)}`).join(" "), fill: "none", stroke: col, "stroke-width": 1.8}, svg);
    for (const [x, v] of pts) { const c = s("circle", {cx: X(x), cy: Y(v), r: 2.6, fill: col}, svg); s("title", {}, c, `${q.name}, ${x}: ${num(v, 4)}`); }
  });
  if (series.length > 1 || opts.legend) {
    let lx = W - Rm - series.reduce((a, q) => a + 18 + 6.2 * q.name.length, 0);
    series.forEach((q, si) => {
      const col = q.colour || PALETTE[si % PALETTE.length];
      s("rect", {x: lx, y: 6, width: 10, height: 10, fill: col}, svg);
      s("text", {x: lx + 13, y: 15, "font-size": 10}, svg, q.name);
      lx += 18 + 6.2 * q.name.length;
    });
  }
  return svg;
}

// Bar chart of values with optional reference line values (ref).
function barChart(parent, values, opts = {}) {
  const W = opts.width || 1100, H = opts.height || 230, L = 62, Rm = 12, T = 24, B = 40;
  const svg = s("svg", {width: W, height: H}, parent);
  if (opts.title) s("text", {x: L, y: 15, "font-size": 13, "font-weight": 600}, svg, opts.title);
  const n = values.length, fin = values.filter(Number.isFinite);
  if (!n || !fin.length) { s("text", {x: L, y: H / 2, "font-size": 12}, svg, "no values"); return svg; }
  const logy = !!opts.log;
  const tr = (v) => (logy ? Math.log10(Math.max(v, opts.floor || 1e-6)) : v);
  const all = fin.concat(opts.ref ? opts.ref.filter(Number.isFinite) : []);
  let lo = logy ? Math.min(...all.map(tr)) : 0, hi = Math.max(...all.map(tr));
  if (logy) { lo = Math.floor(lo); hi = Math.ceil(hi); }
  if (hi - lo < 1e-12) hi = lo + 1;
  const axis = logy ? null : niceAxis(lo, hi);
  if (axis) ({lo, hi} = axis);
  const nt = axis ? axis.ticks.length - 1 : Math.round(hi - lo);
  const bw = (W - L - Rm) / n;
  const Y = (v) => T + (1 - (tr(v) - lo) / (hi - lo)) * (H - T - B);
  for (let i = 0; i <= nt; i++) {
    const f = lo + (i / nt) * (hi - lo), v = logy ? Math.pow(10, f) : f, y = T + (1 - i / nt) * (H - T - B);
    s("line", {x1: L, y1: y, x2: W - Rm, y2: y, stroke: "#eee"}, svg);
    s("text", {x: L - 5, y: y + 4, "font-size": 10, "text-anchor": "end"}, svg, logy ? String(+v.toPrecision(2)) : num(v, 3));
  }
  values.forEach((v, i) => {
    if (!Number.isFinite(v)) return;
    const y = Y(v), base = H - B;
    const r = s("rect", {x: L + i * bw + (bw > 4 ? 0.5 : 0), y: Math.min(y, base), width: Math.max(bw - (bw > 4 ? 1 : 0), 0.6), height: Math.abs(base - y), fill: opts.colourOf ? opts.colourOf(i) : "#3b6fb6"}, svg);
    s("title", {}, r, (opts.label ? opts.label(i) : String(i)) + ": " + num(v, 4));
    if (opts.ref && Number.isFinite(opts.ref[i]))
      s("line", {x1: L + i * bw, x2: L + (i + 1) * bw, y1: Y(opts.ref[i]), y2: Y(opts.ref[i]), stroke: "#d62728", "stroke-width": 2}, svg);
  });
  s("line", {x1: L, y1: H - B, x2: W - Rm, y2: H - B, stroke: "#888"}, svg);
  const xt = Math.max(1, Math.ceil(n / 16));
  for (let i = 0; i < n; i += xt) s("text", {x: L + i * bw + bw / 2, y: H - B + 14, "font-size": 10, "text-anchor": "middle"}, svg, opts.tick ? opts.tick(i) : String(i));
  if (opts.xlabel) s("text", {x: (L + W - Rm) / 2, y: H - 6, "font-size": 11, "text-anchor": "middle", fill: "#5b6475"}, svg, opts.xlabel);
  return svg;
}

function table(parent, headers, rows, hot) {
  const t = h("table", {}, parent);
  const tr = h("tr", {}, h("thead", {}, t));
  headers.forEach((x, i) => h("th", i === 0 || x.startsWith("token") ? {class: "l"} : {}, tr, x));
  const tb = h("tbody", {}, t);
  rows.forEach((r, ri) => {
    const row = h("tr", hot && hot(ri) ? {class: "hot"} : {}, tb);
    r.forEach((x, i) => h("td", i === 0 || headers[i].startsWith("token") ? {class: "l mono"} : {}, row, String(x)));
  });
  return t;
}
)HTML";

const char* const kSections = R"HTML(
function renderTitle(body) {
  const m = R.model, t = R.text;
  const dl = h("dl", {class: "meta"}, body);
  const add = (k, v) => { h("dt", {}, dl, k); h("dd", {}, dl, v); };
  add("model", m.path);
  add("architecture", `${m.arch} (${m.format}): ${m.n_layers} layers, ${m.n_heads} heads (kv ${m.n_kv_heads}, head dim ${m.head_dim}), dim ${m.dim}, ${m.n_params.toLocaleString("en")} parameters` + (m.moe ? `, ${m.n_experts} experts` : ""));
  add("text", t.source || "(not named)");
  add("tokens", `${t.n_tokens} (first: ${t.tokens.slice(0, 8).map((x, i) => JSON.stringify(tokenLabel(i))).join(" ")} \u2026)`);
  add("options", `eps = ${R.options.eps}, first_k = ${R.options.first_k}`);
  if (R.options.ablate && R.options.ablate.length) add("interventions", R.options.ablate.join(" + "));
  if (t.preview) h("div", {class: "preview"}, body, t.preview);
}

function renderVerdict(body) {
  const v = R.verdict;
  if (!v) { empty(body, "This report has no verdict (it was written by an older sinklab)."); return; }
  document.getElementById("sec-verdict").classList.add(v.sink ? "has-sink" : "no-sink");
  h("p", {class: "verdict", id: "verdict-text"}, body, v.text);
  const pills = h("div", {}, body);
  h("span", {class: "pill"}, pills, `heads with α₀ > ε: ${v.heads_above} of ${v.heads_total}`);
  h("span", {class: "pill"}, pills, `max α₀ = ${num(v.max_alpha0, 3)}`);
  h("span", {class: "pill"}, pills, "value drain " + (v.value_drain === null ? "n/a" : `${num(v.value_drain, 3)} (layer ${v.value_drain_layer})`));
  h("span", {class: "pill"}, pills, "massive ratio " + (v.massive_ratio === null ? "n/a" : `${num(v.massive_ratio, 1)} (layer ${v.massive_ratio_layer})`));
  h("p", {class: "explain", id: "verdict-explanation"}, body, v.explanation);
  note(body, v.definitions);
}

function renderTask(body) {
  const e = R.sink_emergence;
  if (!e) { empty(body, "Not a model trained on a synthetic task (no task.json beside it): every query is of one kind."); return; }
  note(body, `Task ${R.task.task}: ${e.sequences} probe sequences, ${e.rule_queries} rule queries (the next token is a copy or a recall) and ${e.free_queries} free ones. A head with an attention sink parks its free queries on token 0 (or in its sink logit) and looks elsewhere on rule queries.`);
  const H = e.n_heads, K = e.n_kv_heads, rows = [];
  for (let l = 0; l < e.n_layers; l++)
    for (let hh = 0; hh < H; hh++)
      rows.push([`L${l}H${hh}`, num(e.alpha_free[l * H + hh], 3), num(e.alpha_rule[l * H + hh], 3),
                 num(e.sink_logit_free[l * H + hh], 3), num(e.sink_logit_rule[l * H + hh], 3),
                 num(e.value_drain[l * K + Math.floor(hh * K / H)], 3), num(e.resid_norm_ratio[l], 2)]);
  table(body, ["head", "α₀ free", "α₀ rule", "sink logit free", "sink logit rule", "value drain ‖v₀‖/mean", "resid ‖h₀‖/median"], rows);
  if (R.emergence_page) {
    const p = h("p", {}, body);
    h("a", {href: R.emergence_page, id: "emergence-link"}, p, "Emergence curves of the training run");
    p.appendChild(document.createTextNode(` (${R.emergence_records} probes during training).`));
  }
}

function renderSinkLogits(body) {
  const sl = R.sink_logits;
  if (!sl) return;
  h("h3", {}, body, "Learned sink logits (per layer and head)");
  note(body, "A head's sink logit s enters only its softmax denominator: the share exp(s) / (exp(s) + Σⱼ exp(zⱼ)) of its attention goes to no value at all.");
  const heads = sl.length ? sl[0].length : 0;
  table(body, ["layer", ...[...Array(heads).keys()].map((x) => `h${x}`)], sl.map((row, l) => [`L${l}`, ...row.map((x) => num(x, 3))]));
  const sc = R.sink_scores, mass = sc.sink_logit_mass;
  if (!mass || !mass.length) return;
  h("h3", {}, body, "Where the spare attention goes: the sink logit or token 0");
  note(body, "Per measured layer and head: the mean share of attention the learned sink logit takes (1 − Σⱼ pᵢⱼ) next to α₀, the mean attention on token 0. A head whose logit takes more has replaced the BOS sink with its logit.");
  const H = sc.n_heads, K = sc.n_keys, rows = [];
  sc.layers.forEach((l, li) => { for (let hh = 0; hh < H; hh++) { const m = mass[li * H + hh], a0 = sc.alpha[(li * H + hh) * K]; rows.push([`L${l}H${hh}`, num(sl[l] ? sl[l][hh] : NaN, 3), num(m, 3), num(a0, 3), m > a0 ? "sink logit" : "token 0"]); } });
  table(body, ["head", "sink logit", "mass → sink logit", "α₀ (mass → token 0)", "takes more"], rows);
}

function renderSinks(body) {
  const sc = R.sink_scores, K = sc.n_keys, H = sc.n_heads, Ls = sc.layers;
  note(body, `\u03b1\u2096 = mean attention that queries i \u2265 k give to key k (Gu et al.). Sink\u2096^\u03b5 = share of (layer, head) pairs with \u03b1\u2096 > \u03b5 = ${sc.eps}.`);
  if (!Ls.length || !K || !H) { empty(body, "No sink scores were measured."); return; }
  const pills = h("div", {}, body);
  sc.sink_percent.forEach((p, k) => h("span", {class: "pill", id: `sink-pct-${k}`}, pills, `Sink_${k}^${sc.eps} = ${p.toFixed(1)}% (token ${JSON.stringify(tokenLabel(k))})`));
  const ctl = h("p", {}, body);
  h("label", {for: "key-select"}, ctl, "key k: ");
  const sel = h("select", {id: "key-select"}, ctl);
  for (let k = 0; k < K; k++) h("option", {value: k}, sel, `${k} (${tokenLabel(k)})`);
  const pair = h("div", {class: "row"}, body);
  const holder = h("div", {class: "stack"}, pair), side = h("div", {}, pair);
  const draw = () => {
    const k = Number(sel.value);
    holder.textContent = "";
    const vals = Ls.map((_, li) => [...Array(H).keys()].map((hh) => sc.alpha[(li * H + hh) * K + k]));
    heatGrid(holder, vals, (r) => `layer ${Ls[r]}`, (c) => `h${c}`, 0, 1,
             {outline: (r, c) => vals[r][c] > sc.eps, axes: ["head"], cls: "heat sink-heat"});
    colourBar(holder, 0, 1, `\u03b1_${k} (outlined: > \u03b5)`);
  };
  sel.addEventListener("change", draw);
  draw();
  const top = sc.top_heads.slice(0, 8);
  h("h3", {}, side, "Top sink heads (by \u03b1\u2080)");
  table(side, ["head", "\u03b1\u2080", `mass on first ${sc.first_k} keys`],
        top.map((x) => [`L${x.layer} H${x.head}`, num(x.alpha0, 3), num(x.mass_first_k, 3)]));
  renderSinkLogits(h("div", {id: "sink-logits"}, body));
}

function renderMaps(body) {
  const maps = R.attention_maps;
  if (!maps.length) { empty(body, "No attention maps were captured."); return; }
  note(body, `Attention probabilities A[i, j] (row = query i, column = key j) of the first ${maps[0].size} positions; colour = \u221aA to show small values.`);
  const row = h("div", {class: "row"}, body);
  for (const m of maps) {
    const box = h("div", {class: "map"}, row);
    h("div", {}, box, `layer ${m.layer}, head ${m.head}`);
    const n = m.size, scale = Math.max(2, Math.floor(200 / n));
    const cv = h("canvas", {width: n * scale, height: n * scale}, box);
    const ctx = cv.getContext("2d");
    for (let i = 0; i < n; i++)
      for (let j = 0; j < n; j++) {
        ctx.fillStyle = j > i ? "#f2f2f2" : rgb(colour(Math.sqrt(Math.max(0, m.probs[i * n + j]))));
        ctx.fillRect(j * scale, i * scale, scale, scale);
      }
    h("div", {class: "note"}, box, `\u03b1\u2080 = ${num(m.alpha0, 3)}`);
  }
  colourBar(body, 0, 1, "\u221aA (grey: masked)");
}

function renderMassive(body) {
  const ma = R.massive_activations, Ls = ma.layers;
  note(body, `Residual stream after each block. An entry is massive when |h| > ${ma.abs_threshold} and |h| > ${ma.ratio_threshold} \u00d7 the layer's median |h| (Sun et al.).`);
  if (!Ls.length) { empty(body, "No layers were measured."); return; }
  const pair = h("div", {class: "row"}, body);
  barChart(pair, Ls.map((l) => l.max_abs), {log: true, ref: Ls.map((l) => l.median_abs), width: 540, title: "max |h| (bars) vs median |h| (red), log scale",
           label: (i) => `layer ${Ls[i].layer}`, tick: (i) => `L${Ls[i].layer}`, xlabel: "layer"});
  table(h("div", {}, pair), ["layer", "median |h|", "max |h|", "max / median", "flagged"],
        Ls.map((l) => [l.layer, num(l.median_abs, 4), num(l.max_abs, 3), num(l.max_ratio, 1), l.n_flagged]), (i) => Ls[i].n_flagged > 0);
  const flagged = Ls.flatMap((l) => l.flagged.map((e) => ({layer: l.layer, ...e})));
  const lists = h("div", {class: "row"}, body);
  const left = h("div", {}, lists), right = h("div", {}, lists);
  h("h3", {}, left, "Flagged entries");
  if (!flagged.length) empty(left, `No massive activations: no entry exceeds both thresholds in any layer.`);
  else table(left, ["layer", "dim", "token pos", "token", "value", "ratio"],
             flagged.slice(0, 60).map((e) => [e.layer, e.dim, e.token, JSON.stringify(tokenLabel(e.token)), num(e.value, 2), num(e.ratio, 1)]));
  h("h3", {}, right, "Largest |h| per layer");
  const top = Ls.flatMap((l) => l.top.slice(0, 2).map((e) => ({layer: l.layer, ...e})));
  table(right, ["layer", "dim", "token pos", "token", "value", "ratio"],
        top.map((e) => [e.layer, e.dim, e.token, JSON.stringify(tokenLabel(e.token)), num(e.value, 3), num(e.ratio, 1)]));
}

function renderValues(body) {
  const v = R.value_norms, G = v.n_kv_heads, T = v.n_tokens;
  note(body, "\u2016v_t\u2016 per layer (mean over kv heads) for the first tokens; sink tokens often carry small value vectors.");
  if (!v.layers.length || !T || !G) { empty(body, "No value norms were measured."); return; }
  const series = v.layers.map((l, li) => ({name: `L${l}`, values: [...Array(T).keys()].map((t) => {
    let sum = 0; for (let g = 0; g < G; g++) sum += v.norms[(li * G + g) * T + t]; return sum / G; })}));
  lineChart(body, series, {width: 1100, height: 270, title: "mean \u2016v\u2016 by token position", xlabel: "token position", zero: true, legend: true});
  const labels = h("p", {class: "note"}, body);
  labels.textContent = "tokens: " + [...Array(T).keys()].map((t) => `${t}=${JSON.stringify(tokenLabel(t))}`).join("  ");
}

function renderPropagation(body) {
  const p = R.propagation;
  note(body, "Rollout P = \u03a0\u2097(A\u2097/2 + I/2) with head-averaged attention: the last row says how much each position can influence the last token. Rank collapse per layer of the residual stream X.");
  if (!p.n_tokens || !p.influence_on_last.length) empty(body, "No rollout was computed.");
  else barChart(body, p.influence_on_last, {title: "rollout influence on the last token, by position", xlabel: "position",
                 label: (i) => `position ${i} ${JSON.stringify(tokenLabel(i))}`, colourOf: (i) => (i === 0 ? "#d62728" : "#3b6fb6")});
  if (!p.layers.length) { empty(body, "No per-layer measures."); return; }
  const row = h("div", {class: "row"}, body);
  const xs = p.layers.map((l) => l.layer);
  lineChart(row, [{name: "\u2016X\u22121x\u0304\u1d40\u2016/\u2016X\u2016", values: p.layers.map((l) => l.centered_ratio)}], {xs, width: 360, title: "centered ratio", xlabel: "layer", zero: true});
  lineChart(row, [{name: "effective rank", values: p.layers.map((l) => l.effective_rank), colour: "#2ca02c"}], {xs, width: 360, title: "effective rank", xlabel: "layer", zero: true});
  lineChart(row, [{name: "Dirichlet energy / \u2016X\u2016\u00b2", values: p.layers.map((l) => l.dirichlet_energy_normalized), colour: "#9467bd"}], {xs, width: 360, title: "Dirichlet energy (normalised)", xlabel: "layer", zero: true});
}

function renderExperts(body) {
  const se = R.super_experts;
  if (!se.moe) { empty(body, `Not applicable: ${se.reason || "dense model"}.`); return; }
  note(body, `Max |down_proj output| per expert; super experts (outlined): above P99.5 = ${num(se.percentile_value, 2)} and above max/10 = ${num(se.overall_max / 10, 2)}, in layers < 0.75 L.`);
  if (!se.experts.length) { empty(body, "No experts were measured."); return; }
  const E = se.n_experts, vals = [], sup = new Set(se.supers.map((x) => `${x.layer}/${x.expert}`));
  for (let l = 0; l < se.n_layers; l++) vals.push(se.experts.slice(l * E, (l + 1) * E).map((x) => x.max_out));
  const hi = Math.max(...se.experts.map((x) => x.max_out), 1e-9);
  heatGrid(body, vals, (r) => `layer ${r}`, (c) => `e${c}`, 0, hi, {outline: (r, c) => sup.has(`${r}/${c}`), axes: ["expert"]});
  colourBar(body, 0, hi, "max |out|");
  if (!se.supers.length) empty(body, "No super experts were flagged.");
  else table(body, ["layer", "expert", "max |out|", "dim", "routed"], se.supers.map((x) => [x.layer, x.expert, num(x.max_out, 2), x.argmax_dim, x.routed]));
}

const SECTIONS = [["title", renderTitle], ["sec-verdict", renderVerdict], ["sec-sinks", renderSinks], ["sec-maps", renderMaps], ["sec-massive", renderMassive],
                  ["sec-values", renderValues], ["sec-propagation", renderPropagation], ["sec-experts", renderExperts],
                  ["sec-task", renderTask]];
const complete = renderSections(SECTIONS, (id, root) => id === "title" ? document.getElementById("title-body") : root.querySelector(".body"));
document.title = `sinklab inspect: ${R.model.arch}, ${R.text.n_tokens} tokens` + (complete ? "" : " (errors)");
</script>
</body>
</html>
)HTML";

}  // namespace

std::string inspect_report_html(const nlohmann::json& report) {
  return html::assemble_page("sinklab inspect", kHeadRest, report, {kScript, kSections});
}

}  // namespace sinklab
