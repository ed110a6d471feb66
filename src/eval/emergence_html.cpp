// The emergence page of a training run: one line chart per measure of
// SinkEmergence over training steps, a line per layer (the strongest head).
#include "html_page.h"
#include "sinklab/report.h"

namespace sinklab {

namespace {

const char* const kEmergenceBody = R"HTML(.chart { display: inline-block; vertical-align: top; margin: 6px 14px 6px 0; }
.legend span { display: inline-block; margin-right: 12px; font-size: 12px; }
</style>
</head>
<body>
<main>
<header class="card"><h1>Sink emergence</h1><p class="note" id="sub"></p>
<p class="note">An attention sink is a token (here token 0: BOS, or the learned sink token) on which a head parks
the attention it does not need: a head that only sometimes has work to do (a copy after a trigger, a recall of a
bound key) learns to attend to token 0 on every other query, and to make that token's value nearly zero so the
parked attention adds nothing (the value drain). Deeper models also grow a massive residual norm on that token.
These curves show each of the three forming while the model trains.</p></header>
<section id="alpha"><h2>Attention on token 0</h2><p class="note">Per layer, the head with the largest mean attention on token 0 from <b>free</b> queries (solid), and the same head's attention from <b>rule</b> queries (dashed: copies or recalls, which must look elsewhere).</p><div class="body"></div></section>
<section id="logit"><h2>Attention given to the sink logit</h2><p class="note">1 − Σ<sub>j</sub> p<sub>ij</sub>: the share of a head's attention that goes to its sink logit (sink-logit and softmax-off-by-one models; zero otherwise). Per layer, the head with the largest share from free queries (solid) and its share from rule queries (dashed).</p><div class="body"></div></section>
<section id="drain"><h2>Value drain</h2><p class="note">||v<sub>0</sub>|| / mean ||v<sub>t</sub>|| of the other tokens, per layer (smallest over kv heads). Below 1: token 0's value is drained.</p><div class="body"></div></section>
<section id="massive"><h2>Massive residual norm</h2><p class="note">||h<sub>0</sub>|| / median ||h<sub>t</sub>|| of the residual stream after each layer (log scale).</p><div class="body"></div></section>
<section id="loss"><h2>Training loss</h2><div class="body"></div></section>
</main>
<script id="data" type="application/json">)HTML";

const char* const kEmergenceScript = R"JS(const doc = JSON.parse(document.getElementById("data").textContent);
const recs = doc.records || [];
const L = doc.n_layers, H = doc.n_heads;
const colors = ["#1f6feb", "#d1242f", "#1a7f37", "#9a6700", "#8250df", "#bf3989", "#0a7f8a", "#57606a"];
document.getElementById("sub").textContent = doc.variant + " variant" +
  (doc.task ? ", task " + doc.task.task : ", text") + "; " + recs.length + " probes of " +
  doc.probe.sequences + " sequences x " + doc.probe.length + " tokens";
function chart(body, series, opts) {
  const W = 520, Hh = 260, m = {l: 52, r: 12, t: 10, b: 36};
  const pts = series.flatMap(s => s.points.filter(p => p[1] !== null && isFinite(p[1])));
  if (!pts.length) { h("p", {class: "note"}, body, "no data"); return; }
  const xs = pts.map(p => p[0]), ys = pts.map(p => p[1]);
  const ty = v => opts.log ? Math.log10(Math.max(v, 1e-3)) : v;
  let x0 = Math.min(...xs), x1 = Math.max(...xs); if (x1 === x0) x1 = x0 + 1;
  let y0 = opts.y0 !== undefined ? ty(opts.y0) : Math.min(...ys.map(ty));
  let y1 = opts.y1 !== undefined ? Math.max(ty(opts.y1), ...ys.map(ty)) : Math.max(...ys.map(ty));
  if (y1 === y0) y1 = y0 + 1;
  const X = v => m.l + (v - x0) / (x1 - x0) * (W - m.l - m.r);
  const Y = v => Hh - m.b - (ty(v) - y0) / (y1 - y0) * (Hh - m.t - m.b);
  const wrap = h("div", {class: "chart"}, body);
  const svg = s("svg", {width: W, height: Hh, role: "img"}, wrap);
  for (let i = 0; i <= 4; i++) {
    const yv = y0 + (y1 - y0) * i / 4, yy = Hh - m.b - i / 4 * (Hh - m.t - m.b);
    s("line", {x1: m.l, x2: W - m.r, y1: yy, y2: yy, stroke: "#e6e9ef"}, svg);
    s("text", {x: m.l - 6, y: yy + 4, "text-anchor": "end", "font-size": 11}, svg,
      opts.log ? (10 ** yv).toPrecision(2) : yv.toFixed(2));
    const xv = x0 + (x1 - x0) * i / 4;
    s("text", {x: X(xv), y: Hh - m.b + 16, "text-anchor": "middle", "font-size": 11}, svg,
      xv >= 1e6 ? (xv / 1e6).toFixed(1) + "M" : xv >= 1e3 ? (xv / 1e3).toFixed(0) + "k" : String(Math.round(xv)));
  }
  s("text", {x: (W + m.l) / 2, y: Hh - 4, "text-anchor": "middle", "font-size": 12}, svg, opts.xlabel || "tokens seen");
  for (const se of series) {
    const p = se.points.filter(q => q[1] !== null && isFinite(q[1]));
    if (!p.length) continue;
    s("polyline", {points: p.map(q => X(q[0]) + "," + Y(q[1])).join(" "), fill: "none", stroke: se.color,
                   "stroke-width": 2, "stroke-dasharray": se.dash || ""}, svg);
  }
  const lg = h("div", {class: "legend"}, wrap);
  for (const se of series) if (!se.hideLegend) h("span", {style: "color:" + se.color}, lg, (se.dash ? "- - " : "— ") + se.name);
}
function bestHead(e, l) {
  let best = 0;
  for (let hh = 0; hh < H; hh++) if ((e.alpha_free[l * H + hh] ?? -1) > (e.alpha_free[l * H + best] ?? -1)) best = hh;
  return best;
}
const sections = [
  ["alpha", body => {
    const series = [];
    for (let l = 0; l < L; l++) {
      const c = colors[l % colors.length];
      series.push({name: "layer " + l + " free", color: c, points: recs.map(r => [r.tokens, r.emergence.alpha_free[l * H + bestHead(r.emergence, l)]])});
      series.push({name: "layer " + l + " rule", color: c, dash: "5 4", points: recs.map(r => [r.tokens, r.emergence.alpha_rule[l * H + bestHead(r.emergence, l)]])});
    }
    chart(body, series, {y0: 0, y1: 1});
  }],
  ["logit", body => {
    if (!recs.length || !recs[0].emergence.sink_logit_free) { h("p", {class: "note"}, body, "Not recorded in this run's probes."); return; }
    const series = [];
    const best = (e, l) => { let b = 0; for (let hh = 1; hh < H; hh++) if ((e.sink_logit_free[l * H + hh] ?? -1) > (e.sink_logit_free[l * H + b] ?? -1)) b = hh; return b; };
    for (let l = 0; l < L; l++) {
      const c = colors[l % colors.length];
      series.push({name: "layer " + l + " free", color: c, points: recs.map(r => [r.tokens, r.emergence.sink_logit_free[l * H + best(r.emergence, l)]])});
      series.push({name: "layer " + l + " rule", color: c, dash: "5 4", points: recs.map(r => [r.tokens, r.emergence.sink_logit_rule[l * H + best(r.emergence, l)]])});
    }
    chart(body, series, {y0: 0, y1: 1});
  }],
  ["drain", body => {
    const K = recs.length ? recs[0].emergence.n_kv_heads : 1;
    chart(body, Array.from({length: L}, (_, l) => ({name: "layer " + l, color: colors[l % colors.length],
      points: recs.map(r => [r.tokens, Math.min(...r.emergence.value_drain.slice(l * K, l * K + K))])})), {y0: 0});
  }],
  ["massive", body => {
    chart(body, Array.from({length: L}, (_, l) => ({name: "layer " + l, color: colors[l % colors.length],
      points: recs.map(r => [r.tokens, r.emergence.resid_norm_ratio[l]])})), {log: true});
  }],
  ["loss", body => {
    chart(body, [{name: "training loss", color: colors[0], points: recs.filter(r => r.loss !== null).map(r => [r.tokens, r.loss])}], {});
  }],
];
renderSections(sections, (id, root) => root.querySelector(".body"));
</script>
</body>
</html>
)JS";

}  // namespace

std::string emergence_html(const nlohmann::json& probes) {
  return html::assemble_page("sinklab: sink emergence", kEmergenceBody, probes, {kEmergenceScript});
}

}  // namespace sinklab
