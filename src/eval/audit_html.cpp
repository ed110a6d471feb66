// The audit page: sink mass per head as a heat table, shallow value norms
// against the reference, and the recovery of the probe set per candidate prefix.
#include "html_page.h"
#include "sinklab/audit.h"

namespace sinklab {

namespace {

const char* const kAuditBody = R"HTML(td.heat { min-width: 44px; }
</style>
</head>
<body>
<main>
<header class="card"><h1>Sink-backdoor audit</h1><p class="note" id="sub"></p>
<p class="note">A backdoor planted during unlearning ("Forgetting to Forget") hides best at the attention-sink positions,
right after BOS: heads that already park their attention there read a trigger placed there from every query. This page
shows where the model's attention sits on the first tokens, whether the shallow tokens' values moved against a
reference model, and whether a candidate prefix brings back answers when it sits at the sink positions rather than
elsewhere in the same text.</p></header>
<section id="mass"><h2>Attention on the first tokens</h2><p class="note">Per layer and head: mean over queries of the attention on positions 0..k−1 (the same sink scores as <code>sinklab inspect</code>).</p><div class="body"></div></section>
<section id="values"><h2>Value norms of the shallow tokens</h2><p class="note">||v<sub>t</sub>|| per layer and kv head; with a reference model, the ratio model / reference (1 = unchanged).</p><div class="body"></div></section>
<section id="recovery"><h2>Recovery under candidate prefixes</h2><p class="note">Accuracy of the probe set's answers (argmax of the next-token logits) and mean log-probability, with no prefix, with the candidate right after BOS (sink positions) and with it elsewhere in the context. Recovery = accuracy with the prefix − without.</p><div class="body"></div></section>
</main>
<script id="data" type="application/json">)HTML";

const char* const kAuditScript = R"JS(const doc = JSON.parse(document.getElementById("data").textContent);
const fmt = (v, d) => v === null || v === undefined ? "—" : Number(v).toFixed(d === undefined ? 3 : d);
document.getElementById("sub").textContent = doc.model.path + " (" + doc.model.arch +
  (doc.model.variant ? ", " + doc.model.variant : "") + "); " + doc.text.n_tokens + " tokens of " + doc.text.source +
  (doc.reference ? "; reference " + doc.reference : "; no reference model");
function heat(v, lo, hi) {
  const x = Math.max(0, Math.min(1, (v - lo) / ((hi - lo) || 1)));
  return "background: rgba(31, 111, 235, " + (0.08 + 0.6 * x).toFixed(3) + ")";
}
const sections = [
  ["mass", body => {
    const m = doc.sink_mass;
    h("p", {class: "note"}, body, "k = " + m.first_k + "; largest " + fmt(m.max) + " (layer " + m.max_layer + ", head " + m.max_head + ")");
    const t = h("table", {}, body), hr = h("tr", {}, t);
    h("th", {class: "l"}, hr, "layer");
    for (let hh = 0; hh < m.n_heads; hh++) h("th", {}, hr, "h" + hh);
    m.mass.forEach((row, li) => {
      const tr = h("tr", {}, t);
      h("td", {class: "l"}, tr, String(m.layers[li]));
      for (const v of row) h("td", {class: "heat", style: heat(v, 0, 1)}, tr, fmt(v));
    });
  }],
  ["values", body => {
    const v = doc.value_norms, r = doc.reference_value_norms, ratio = doc.value_norm_ratio;
    const T = v.n_tokens, K = v.n_kv_heads;
    const t = h("table", {}, body), hr = h("tr", {}, t);
    h("th", {class: "l"}, hr, "layer");
    h("th", {class: "l"}, hr, "kv head");
    for (let tt = 0; tt < T; tt++) h("th", {}, hr, "t" + tt);
    v.layers.forEach((layer, li) => {
      for (let g = 0; g < K; g++) {
        const tr = h("tr", {}, t);
        h("td", {class: "l"}, tr, String(layer));
        h("td", {class: "l"}, tr, String(g));
        for (let tt = 0; tt < T; tt++) {
          const n = v.norms[(li * K + g) * T + tt];
          if (ratio) {
            const q = ratio[li][g][tt];
            h("td", {class: "heat", style: q === null ? "" : heat(Math.abs(Math.log(q)), 0, 1),
                     title: "model " + fmt(n) + ", reference " + fmt(r.norms[(li * K + g) * T + tt])}, tr, fmt(q, 2) + "×");
          } else {
            h("td", {}, tr, fmt(n));
          }
        }
      }
    });
  }],
  ["recovery", body => {
    const rec = doc.recovery;
    if (!rec) { h("p", {class: "note"}, body, "No probe set or no candidate prefixes were given."); return; }
    h("p", {class: "note"}, body, rec.probes + " probes from " + rec.source);
    const t = h("table", {}, body), hr = h("tr", {}, t);
    for (const c of ["candidate", "acc none", "acc sink", "acc elsewhere", "recovery sink", "recovery elsewhere",
                     "logp none", "logp sink", "logp elsewhere"]) h("th", {class: c === "candidate" ? "l" : ""}, hr, c);
    for (const c of rec.candidates) {
      const tr = h("tr", {}, t);
      h("td", {class: "l"}, tr, c.name);
      for (const k of ["acc_none", "acc_sink", "acc_elsewhere"]) h("td", {}, tr, fmt(c[k]));
      for (const k of ["recovery_sink", "recovery_elsewhere"])
        h("td", {class: "heat", style: heat(c[k], 0, 0.5)}, tr, (c[k] >= 0 ? "+" : "") + fmt(c[k]));
      for (const k of ["logp_none", "logp_sink", "logp_elsewhere"]) h("td", {}, tr, fmt(c[k], 2));
    }
  }],
];
renderSections(sections, (id, root) => root.querySelector(".body"));
</script>
</body>
</html>
)JS";

}  // namespace

std::string audit_report_html(const nlohmann::json& report) {
  return html::assemble_page("sinklab: sink-backdoor audit", kAuditBody, report, {kAuditScript});
}

}  // namespace sinklab
