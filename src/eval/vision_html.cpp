// The self-contained HTML page of a vision inspection: the image the model saw
// (embedded PNG) under each layer's CLS -> patch attention, the per-layer
// norm maps with the high-norm tokens outlined, and a table of the layers.
// A second run (e.g. with test-time registers) is drawn beside the first.
#include <string>

#include <nlohmann/json.hpp>

#include "html_page.h"
#include "sinklab/report.h"

namespace sinklab {

namespace {

const char* const kHeadRest = R"HTML(.row { display: flex; flex-wrap: wrap; gap: 14px; }
figure { margin: 0; font-size: 12px; text-align: center; width: 168px; }
figure svg { display: block; }
code { font-family: ui-monospace, "DejaVu Sans Mono", monospace; }
</style>
</head>
<body>
<main>
<header class="card"><h1>sinklab inspect: vision</h1><div id="title-body"></div></header>
<section id="sec-attention"><h2>CLS &rarr; patch attention over the image (head mean, per layer)</h2><div class="body"></div></section>
<section id="sec-norms"><h2>Token norms ||blk.L.resid_out|| (patch grid; high-norm tokens outlined)</h2><div class="body"></div></section>
<section id="sec-table"><h2>Layers</h2><div class="body"></div></section>
<section id="sec-quant"><h2>Simulated quantization, without and with RegCache</h2><div class="body"></div></section>
<section id="sec-decomp"><h2>Attention pool: neuron &times; head decomposition of the embedding</h2><div class="body"></div></section>
</main>
<script type="application/json" id="vision-data">)HTML";

const char* const kScript = R"HTML(const R = JSON.parse(document.getElementById("vision-data").textContent);
const RUNS = [R].concat(R.after ? [R.after] : []);
const SIZE = 168;
const num = (v, d = 2) => Number.isFinite(v) ? v.toFixed(d) : String(v);
function tokenName(run, t) {
  const P = run.grid[0] * run.grid[1], pre = run.n_prefix, cls = R.model.cls_token ? 1 : 0;
  if (t < cls) return "cls";
  if (t < pre) return "reg" + (t - cls);
  if (t < pre + P) { const p = t - pre; return `(${Math.floor(p / run.grid[1])},${p % run.grid[1]})`; }
  return "ttr" + (t - pre - P);
}
// Attention: the image darkened where the value is low (value / hi). Norms: a
// colour scale from the lowest (lo, blue) to the highest (hi, red) value.
function grid(parent, run, values, lo, hi, withImage, outlined, caption) {
  const [gh, gw] = run.grid, cw = SIZE / gw, ch = cw;
  const fig = h("figure", {}, parent);
  const svg = s("svg", {width: SIZE, height: ch * gh, viewBox: `0 0 ${SIZE} ${ch * gh}`}, fig);
  if (withImage) s("image", {href: R.image_png, x: 0, y: 0, width: SIZE, height: ch * gh, preserveAspectRatio: "none"}, svg);
  for (let p = 0; p < gh * gw; p++) {
    const v = hi > lo ? Math.min(1, Math.max(0, (values[p] - lo) / (hi - lo))) : 0;
    const r = s("rect", {x: (p % gw) * cw, y: Math.floor(p / gw) * ch, width: cw, height: ch,
      fill: withImage ? "#000" : `rgb(${Math.round(255 * v)},${Math.round(80 * v)},${Math.round(255 * (1 - v))})`,
      "fill-opacity": withImage ? (0.85 * (1 - v)).toFixed(3) : 1}, svg);
    r.appendChild(document.createElementNS(NS, "title")).textContent = `${tokenName(run, run.n_prefix + p)}: ${num(values[p], 4)}`;
    if (outlined.has(run.n_prefix + p)) s("rect", {x: (p % gw) * cw + 1, y: Math.floor(p / gw) * ch + 1, width: cw - 2, height: ch - 2, fill: "none", stroke: "#00e0ff", "stroke-width": 2}, svg);
  }
  h("figcaption", {}, fig, caption);
}
function renderTitle(body) {
  const m = R.model;
  if (R.decomposition) h("p", {}, body, `model ${m.path} (CLIP ModifiedResNet: blocks ${m.blocks.join("/")}, width ${m.width}, ${m.heads} attention-pool heads, embedding ${m.embed_dim})`);
  else h("p", {}, body, `model ${m.path} (${m.arch}, ${m.model_type}): ${m.layers} layers, ${m.heads} heads, dim ${m.dim}, patch ${m.patch_size}, ${m.registers} learned registers`);
  h("p", {}, body, `image ${R.image}: ${R.grid[0]} x ${R.grid[1]} patches, ${R.tokens} tokens`);
  h("p", {class: "note"}, body, R.threshold_rule);
  if (R.after) h("p", {class: "note"}, body, `Second run: ${R.after.label}.`);
}
function renderAttention(body) {
  if (!R.layers.length) { h("p", {class: "note"}, body, "A convolutional model: see the attention pool below."); return; }
  if (!R.layers[0].cls_to_patches) { h("p", {class: "note"}, body, "This model has no CLS token (SigLIP pools with an attention head)."); return; }
  for (const run of RUNS) {
    h("h3", {}, body, run.label || "this image");
    const row = h("div", {class: "row"}, body);
    run.layers.forEach((L) => {
      const hi = Math.max(...L.cls_to_patches);
      const others = L.cls_to_others.reduce((a, b) => a + b, 0);
      grid(row, run, L.cls_to_patches, 0, hi, true, new Set(), `layer ${L.layer}: max ${num(hi, 3)}, on non-patch tokens ${num(others, 3)}`);
    });
  }
}
function renderNorms(body) {
  if (!R.layers.length) { h("p", {class: "note"}, body, "No transformer layers."); return; }
  for (const run of RUNS) {
    h("h3", {}, body, run.label || "this image");
    const row = h("div", {class: "row"}, body);
    run.layers.forEach((L) => {
      const P = run.grid[0] * run.grid[1];
      const patch = L.norms.slice(run.n_prefix, run.n_prefix + P);
      const rest = L.norms.map((v, t) => [t, v]).filter(([t]) => t < run.n_prefix || t >= run.n_prefix + P);
      const extra = rest.map(([t, v]) => `${tokenName(run, t)} ${num(v, 1)}`).join(", ");
      grid(row, run, patch, Math.min(...L.norms), Math.max(...L.norms), false, new Set(L.high_norm_tokens), `layer ${L.layer}: median ${num(L.median_patch_norm, 1)}, max ${num(L.max_norm, 1)}` + (extra ? `; ${extra}` : ""));
    });
  }
}
function renderTable(body) {
  if (!R.layers.length) { h("p", {class: "note"}, body, "No transformer layers."); return; }
  for (const run of RUNS) {
    h("h3", {}, body, run.label || "this image");
    const t = h("table", {}, body);
    const hr = h("tr", {}, t);
    for (const x of ["layer", "median patch norm", "threshold", "max norm", "high-norm tokens"]) h("th", {class: x === "high-norm tokens" ? "l" : ""}, hr, x);
    for (const L of run.layers) {
      const tr = h("tr", {}, t);
      for (const v of [L.layer, num(L.median_patch_norm), num(L.threshold), num(L.max_norm)]) h("td", {}, tr, String(v));
      h("td", {class: "l"}, tr, L.high_norm_tokens.map((x) => tokenName(run, x)).join(" ") || "none");
    }
  }
}
function renderQuant(body) {
  const Q = R.quant;
  if (!Q) { h("p", {class: "note"}, body, "Not measured (sinklab inspect --image ... --quant)."); return; }
  const rc = Q.regcache;
  h("p", {}, body, `RegCache: keys and values of ${rc.prefix_tokens.length} register tokens of a blank image prefixed from layer ${rc.first_layer}; ${rc.deleted_tokens.length} input tokens above norm ${num(rc.delete_threshold)} deleted before it. The prefix changes the float32 embedding by ${num(rc.pooled_change_float32, 4)} (relative).`);
  h("p", {class: "note"}, body, "Errors are relative (||quantized - float32|| / ||float32||) against the float32 run of the same configuration.");
  const t = h("table", {}, body);
  const hr = h("tr", {}, t);
  const L = Q.rows[0].layer_errors.length;
  for (const x of ["setting", "RegCache", "embedding"].concat([...Array(L).keys()].map((l) => "layer " + l))) h("th", {class: x === "setting" ? "l" : ""}, hr, x);
  for (const row of Q.rows) {
    const tr = h("tr", {}, t);
    h("td", {class: "l"}, tr, row.setting);
    h("td", {}, tr, row.regcache ? "yes" : "no");
    for (const v of [row.pooled_error].concat(row.layer_errors)) h("td", {}, tr, num(v, 4));
  }
}
function renderDecomp(body) {
  const Dc = R.decomposition;
  if (!Dc) { h("p", {class: "note"}, body, "Only for CLIP ModifiedResNet models."); return; }
  h("p", {}, body, `The embedding is the sum of one term per (neuron n of the last stage, attention-pool head h), C_h W_h[:, n] sum_j a_hj f_jn, plus the position, value-bias and output-bias terms; the terms sum back to the embedding within ${num(Dc.sum_error, 9)} (relative).`);
  const row = h("div", {class: "row"}, body);
  Dc.head_attention.forEach((a, hd) => grid(row, R, a.slice(1), 0, Math.max(...a.slice(1)), true, new Set(), `head ${hd}: on the mean token ${num(a[0], 3)}`));
  const t = h("table", {}, body);
  const hr = h("tr", {}, t);
  for (const x of ["rank", "neuron", "head", "||term||", "share of the embedding"]) h("th", {}, hr, x);
  Dc.top.forEach((p, i) => { const tr = h("tr", {}, t); for (const v of [i + 1, p.neuron, p.head, num(p.norm, 4), num(p.share, 4)]) h("td", {}, tr, String(v)); });
}
const SECTIONS = [["title-body", renderTitle], ["sec-attention", renderAttention], ["sec-norms", renderNorms], ["sec-table", renderTable], ["sec-quant", renderQuant], ["sec-decomp", renderDecomp]];
const complete = renderSections(SECTIONS, (id, root) => root.querySelector(".body") || root);
document.title = `sinklab inspect: ${R.model.arch} on ${R.image}` + (complete ? "" : " (errors)");
</script>
</body>
</html>
)HTML";

}  // namespace

std::string vision_inspect_html(const nlohmann::json& report) {
  return html::assemble_page("sinklab inspect: vision", kHeadRest, report, {kScript});
}

}  // namespace sinklab
