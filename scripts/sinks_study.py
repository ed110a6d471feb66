#!/usr/bin/env python3
"""The sinks study, where sinks form: every attention variant trained on the
synthetic Bigram-Backcopy task (a sink grows within a few million tokens),
probed while it trains, streamed past its training length through dense,
window-only, sink+window and recomputed caches, and ablated.

Writes docs/results/sinks-study.md (three tables: the study, the StreamingLLM
collapse over factors, the causal checks) and docs/results/sinks-study/
(emergence curves: one HTML page and one PNG per run).

Usage (from the repository root, after scripts/build.sh):
    scripts/sinks-study.sh            # = /usr/bin/python3 scripts/sinks_study.py
Options: --runs DIR (default runs/study-bb), --out FILE, --threads N, --quick (shorter runs).
Runs already trained in --runs are reused.
"""
import argparse
import json
import math
import os
import shutil
import struct
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SINKLAB = os.path.join(ROOT, "build", "bin", "sinklab")
T = 64            # training length
STREAM = 8 * T    # streamed tokens (8x the training length)
LONG_STREAM = 4096

# (name, variant, optimizer, layers, heads, task, extra model keys)
STUDY = [(f"{v}-{opt}-{l}l", v, opt, l, 1, "bigram-backcopy", {})
         for l in (1, 3)
         for v, opt in (("vanilla", "adamw"), ("sink-token", "adamw"), ("sink-logit", "adamw"),
                        ("softmax-off-by-one", "adamw"), ("goat", "adamw"), ("alibi", "adamw"),
                        ("vanilla", "sgd"), ("relu-attention", "adamw"))]
# Extra runs for the collapse factors: depth, heads, a second task.
FACTORS = [("vanilla-adamw-4l", "vanilla", "adamw", 4, 1, "bigram-backcopy", {}),
           ("vanilla-adamw-3l-4h", "vanilla", "adamw", 3, 4, "bigram-backcopy", {}),
           ("vanilla-adamw-3l-recall", "vanilla", "adamw", 3, 1, "assoc-recall", {})]


def run(cmd, **kw):
    return subprocess.run(cmd, check=True, text=True, capture_output=True, **kw)


def train_config(name, variant, optimizer, layers, heads, task, extra, runs, steps, threads):
    data = ({"task": "bigram-backcopy", "vocab": 64, "triggers": 3, "chain_seed": 1} if task == "bigram-backcopy"
            else {"task": "assoc-recall", "vocab": 64, "keys": 8, "pair_share": 0.5})
    model = {"dim": 64, "n_layers": layers, "n_heads": heads, "seq_len": T, "variant": variant, "init_std": 0.1}
    model.update(extra)
    return {
        "comment": "sinks study (scripts/sinks_study.py): the Bigram-Backcopy recipe of models/bb-*",
        "model": model,
        "data": data,
        "train": {"batch_size": 32, "steps": steps, "lr": 5e-2 if optimizer == "sgd" else 2e-2,
                  "warmup_steps": 100, "lr_schedule": "constant", "weight_decay": 0.0, "optimizer": optimizer,
                  "eval_every": steps, "eval_batches": 4, "log_every": 100, "seed": 1, "probe_every": 100,
                  "probe_sequences": 8, "checkpoint_every": 500, "threads": threads,
                  "out_dir": os.path.join(runs, name)},
    }


def train(spec, runs, steps, threads):
    name = spec[0]
    cfg = train_config(*spec, runs=runs, steps=steps, threads=threads)
    os.makedirs(runs, exist_ok=True)
    path = os.path.join(runs, name + ".json")
    with open(path, "w") as f:
        json.dump(cfg, f, indent=1)
    out = os.path.join(runs, name)
    pointer = os.path.join(out, "checkpoint.json")
    if os.path.exists(pointer) and json.load(open(pointer))["step"] >= steps:
        return out
    legacy = os.path.join(out, "trainer_state.json")  # run folders of older sinklab builds
    if os.path.exists(legacy) and json.load(open(legacy))["step"] >= steps:
        return out
    print(f"  training {name} ({steps} steps)", flush=True)
    run([SINKLAB, "train", "--config", path, "-q"])
    return out


def safetensors(path):
    with open(path, "rb") as f:
        data = f.read()
    n = struct.unpack("<Q", data[:8])[0]
    header = json.loads(data[8:8 + n])
    out = {}
    for k, v in header.items():
        if k == "__metadata__":
            continue
        s, e = v["data_offsets"]
        raw = data[8 + n + s:8 + n + e]
        out[k] = list(struct.unpack(f"<{len(raw) // 4}f", raw))
    return out


def layer_view(e, key, layer, width):
    return e[key][layer * width:(layer + 1) * width]


def summarise(out):
    """Final probe and emergence step of one run (from its probes.json)."""
    doc = json.load(open(os.path.join(out, "probes.json")))
    recs = doc["records"]
    H = doc["n_heads"]
    L = doc["n_layers"]

    def strongest(e):
        # (alpha_free, alpha_rule, sink_logit_free, layer, head) of the head that parks the most attention
        best = None
        for l in range(L):
            for h in range(H):
                af = e["alpha_free"][l * H + h] or 0.0
                sl = e["sink_logit_free"][l * H + h] or 0.0
                key = max(af, sl)
                if best is None or key > best[0]:
                    best = (key, af, e["alpha_rule"][l * H + h] or 0.0, sl, e["sink_logit_rule"][l * H + h] or 0.0, l, h)
        return best

    last = recs[-1]["emergence"]
    key, af, ar, sl, slr, layer, head = strongest(last)
    K = last["n_kv_heads"]
    drain = min(layer_view(last, "value_drain", layer, K))
    formed_token0 = next((r["step"] for r in recs if max(x or 0 for x in r["emergence"]["alpha_free"]) > 0.5), None)
    formed_logit = next((r["step"] for r in recs if max(x or 0 for x in r["emergence"]["sink_logit_free"]) > 0.5), None)
    log = [json.loads(x) for x in open(os.path.join(out, "log.jsonl"))]
    evals = [x for x in log if "eval_loss" in x]
    return {"alpha_free": af, "alpha_rule": ar, "sink_logit_free": sl, "sink_logit_rule": slr, "layer": layer,
            "head": head, "drain": drain, "resid_ratio": max(last["resid_norm_ratio"]),
            "formed_token0": formed_token0, "formed_logit": formed_logit,
            "loss": log[-1]["loss"], "eval_loss": evals[-1]["eval_loss"] if evals else None,
            "tokens": recs[-1]["tokens"]}


def goat_first_logit(out):
    w = safetensors(os.path.join(out, "model.safetensors"))
    vals = [x for k, v in w.items() if k.endswith("prior.first_logit") for x in v]
    return max(vals) if vals else None


def ppl(out, cache, tokens=STREAM, ablate=(), threads=1):
    tmp = os.path.join(out, "ppl-tmp.json")
    cmd = [SINKLAB, "ppl", "-m", out, "--task-stream", str(tokens), "-t", str(threads), "--json", tmp] + cache
    for a in ablate:
        cmd += ["--ablate", a]
    run(cmd)
    j = json.load(open(tmp))
    os.remove(tmp)
    return j


CACHES = [("dense", ["--cache", "dense", "-c", str(STREAM)]),
          ("window 0+64", ["--cache", "window", "--window", str(T)]),
          ("sink 1+63", ["--cache", "sink", "--sink", "1", "--window", str(T - 1)]),
          ("recompute 0+64", ["--cache", "window", "--window", str(T), "--recompute"])]


def screenshot(html, png):
    chromium = shutil.which("chromium")
    if not chromium:
        return False
    try:
        run([chromium, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
             f"--screenshot={png}", "--window-size=1200,1500", "file://" + os.path.abspath(html)], timeout=120)
        return os.path.exists(png)
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired):
        return False


def fmt(x, p=3):
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "-"
    return f"{x:.{p}f}"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", default=os.path.join(ROOT, "runs", "study-bb"))
    ap.add_argument("--out", default=os.path.join(ROOT, "docs", "results", "sinks-study.md"))
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--quick", action="store_true", help="300/400-step runs (a smoke run of the script)")
    args = ap.parse_args()
    if not os.path.exists(SINKLAB):
        sys.exit("sinks_study: build/bin/sinklab not found; run scripts/build.sh first")
    steps = {1: 300 if args.quick else 1500, 3: 400 if args.quick else 2000, 4: 400 if args.quick else 2000}
    figdir = os.path.join(os.path.dirname(args.out), "sinks-study")
    os.makedirs(figdir, exist_ok=True)

    rows = []
    for spec in STUDY + FACTORS:
        out = train(spec, args.runs, steps[spec[3]], args.threads)
        s = summarise(out)
        s["spec"] = spec
        s["out"] = out
        s["goat_b"] = goat_first_logit(out) if spec[1] == "goat" else None
        s["streams"] = {label: ppl(out, cache, threads=args.threads) for label, cache in CACHES}
        html = os.path.join(figdir, spec[0] + ".html")
        shutil.copy(os.path.join(out, "probes.html"), html)
        s["png"] = spec[0] + ".png" if screenshot(html, os.path.join(figdir, spec[0] + ".png")) else None
        rows.append(s)
        print(f"  {spec[0]}: alpha_free {s['alpha_free']:.3f} rule {s['alpha_rule']:.3f} "
              f"sink-logit {s['sink_logit_free']:.3f}", flush=True)
    by_name = {r["spec"][0]: r for r in rows}

    # Budgets: the vanilla 3-layer model through smaller caches.
    budgets = []
    for budget in (16, 32, 64):
        out = by_name["vanilla-adamw-3l"]["out"]
        w = ppl(out, ["--cache", "window", "--window", str(budget)])
        sk = ppl(out, ["--cache", "sink", "--sink", "1", "--window", str(budget - 1)])
        budgets.append((budget, w, sk))

    # Causal checks on the shipped recipe (vanilla, 1 and 3 layers), BOS kept in a sink cache.
    causal = []
    sink_cache = ["--cache", "sink", "--sink", "1", "--window", str(T - 1)]
    for name in ("vanilla-adamw-1l", "vanilla-adamw-3l"):
        r = by_name[name]
        L = r["spec"][3]
        base = ppl(r["out"], sink_cache, tokens=LONG_STREAM)
        checks = [("none", [])]
        checks.append(("sink:keys=0 (BOS hidden from every query)", ["sink:keys=0"]))
        layer = r["layer"]
        checks.append((f"BOS value -> mean value (layer {layer})",
                       [f"reset:tap=blk.{layer}.v,tokens=0,dims=0..63,mode=mean"]))
        checks.append((f"BOS value -> 0 (layer {layer})", [f"reset:tap=blk.{layer}.v,tokens=0,dims=0..63,mode=zero"]))
        # The largest residual dims of BOS after the sink layer, zeroed or set to their mean.
        insp = json.loads(run([SINKLAB, "inspect", "-m", r["out"], "--json", "-", "--force", "--out",
                               os.path.join(r["out"], "inspect")]).stdout)
        entries = [e for lay in insp["massive_activations"]["layers"] if lay["layer"] == layer for e in lay["top"]
                   if e["token"] == 0]
        dims = sorted({e["dim"] for e in entries})[:3]
        if dims:
            d = ";".join(str(x) for x in dims)
            checks.append((f"BOS residual dims {d} of layer {layer} -> 0",
                           [f"reset:layer={layer},dims={d},tokens=0,mode=zero"]))
            checks.append((f"BOS residual dims {d} of layer {layer} -> mean",
                           [f"reset:layer={layer},dims={d},tokens=0,mode=mean"]))
        for label, ablate in checks:
            j = base if not ablate else ppl(r["out"], sink_cache, tokens=LONG_STREAM, ablate=ablate)
            causal.append((name, label, ablate, j))
        del L

    write_report(args, rows, by_name, budgets, causal)
    print(f"wrote {os.path.relpath(args.out, ROOT)}")


def write_report(args, rows, by_name, budgets, causal):
    rel = lambda p: os.path.relpath(p, ROOT)
    L = []
    L.append("# Sinks study: where sinks form\n")
    L.append("Made by `scripts/sinks-study.sh` (`/usr/bin/python3 scripts/sinks_study.py`"
             + (" --quick" if args.quick else "") + f"; runs in `{rel(args.runs)}`, one thread each).\n")
    L.append("Every run learns the synthetic Bigram-Backcopy task (`data.task` in the configs the script writes): "
             "64 tokens in a fixed random bigram chain (seed 1); after one of the 3 most frequent tokens (the triggers) "
             "the next token copies the token before the trigger; BOS only at position 0. Model: dim 64, 1 head "
             "(unless named), RoPE (GOAT and ALiBi: their priors), training length T = 64, 32 sequences per step, "
             "init std 0.1, AdamW at a constant lr 2e-2 after 100 warm-up steps (the SGD control: momentum 0.9, "
             "lr 5e-2; the ReLU-attention control: weights max(z, 0) without a softmax), no weight decay; 1500 steps (3.1M tokens) at 1 layer, 2000 (4.1M) at 3 and 4. "
             "Probes every 100 steps (`sinklab train --probe-every`) on the task's 8 fixed probe sequences.\n")
    L.append("## 1. The study\n")
    L.append("| run | loss | held-out | α_BOS free | α_BOS rule | sink-logit mass free / rule | value drain | "
             "resid ratio | GOAT b | sink formed at | curves |")
    L.append("|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        if r["spec"] in FACTORS:
            continue
        formed = []
        if r["formed_token0"] is not None:
            formed.append(f"token 0: step {r['formed_token0']}")
        if r["formed_logit"] is not None:
            formed.append(f"sink logit: step {r['formed_logit']}")
        curves = f"[html](sinks-study/{r['spec'][0]}.html)" + (f", [png](sinks-study/{r['png']})" if r["png"] else "")
        L.append(f"| {r['spec'][0]} | {fmt(r['loss'])} | {fmt(r['eval_loss'])} | {fmt(r['alpha_free'])} | "
                 f"{fmt(r['alpha_rule'])} | {fmt(r['sink_logit_free'])} / {fmt(r['sink_logit_rule'])} | "
                 f"{fmt(r['drain'])} | {fmt(r['resid_ratio'], 2)} | {fmt(r['goat_b'], 2)} | "
                 f"{'; '.join(formed) or 'never'} | {curves} |")
    L.append("")
    L.append("Columns: for the head that parks the most attention (on token 0 or in the sink logit) in the final "
             "probe: α_BOS = mean attention on token 0 from free (non-trigger) and rule (trigger) queries; token 0 "
             "is BOS, or the learned sink token of the sink-token runs. Sink-logit mass = 1 − Σ_j p_ij, the share "
             "the sink logit takes (0 without one; fixed logit 0 for softmax-off-by-one). Value drain = "
             "‖v_0‖ / mean ‖v_t‖ in that head's layer. Resid ratio = ‖h_0‖ / median ‖h_t‖ of the residual stream, "
             "largest over layers. GOAT b = the learned first-token logit of GOAT's key prior (largest over layers). "
             "Sink formed at = first probe step with α_BOS free > 0.5 (token 0) or sink-logit mass > 0.5.\n")

    L.append("## 2. The StreamingLLM collapse, on models made here\n")
    L.append(f"Each model streams one Bigram-Backcopy sequence of {STREAM} tokens (8T, BOS only at 0) token by token "
             "(`sinklab ppl -m RUN --task-stream 512 ...`); NLL per query kind over the whole stream (the first T "
             "predictions see no eviction). Caches: dense (every token, positions past T), window-only "
             "(the last 64, BOS evicted), sink+window (BOS + the last 63), recompute (the last 64 re-encoded from "
             "scratch for every prediction, no BOS). Reindexed positions.\n")
    L.append("| run | " + " | ".join(f"{c} free / rule" for c, _ in CACHES) + " | window-only / sink+window (free NLL) |")
    L.append("|---|" + "---|" * (len(CACHES) + 1))
    for r in rows:
        s = r["streams"]
        cells = [f"{fmt(s[c]['nll_free'])} / {fmt(s[c]['nll_rule'])}" for c, _ in CACHES]
        ratio = s["window 0+64"]["nll_free"] / s["sink 1+63"]["nll_free"]
        L.append(f"| {r['spec'][0]} | " + " | ".join(cells) + f" | {ratio:.3f} |")
    L.append("")
    L.append("Budgets (vanilla, 3 layers): free / rule NLL, window-only vs sink+window at equal budget\n")
    L.append("| budget | window-only | sink 1+(budget−1) |")
    L.append("|---|---|---|")
    for b, w, sk in budgets:
        L.append(f"| {b} | {fmt(w['nll_free'])} / {fmt(w['nll_rule'])} | {fmt(sk['nll_free'])} / {fmt(sk['nll_rule'])} |")
    L.append("")
    L.append("## 3. Causal checks\n")
    L.append(f"BOS kept (sink 1+63 cache), a {LONG_STREAM}-token stream, "
             "`sinklab ppl -m RUN --task-stream 4096 --cache sink --sink 1 --window 63 --ablate SPEC`.\n")
    L.append("| run | intervention | `--ablate` | NLL free | NLL rule |")
    L.append("|---|---|---|---|---|")
    for name, label, ablate, j in causal:
        L.append(f"| {name} | {label} | `{' '.join(ablate) or '-'}` | {fmt(j['nll_free'])} | {fmt(j['nll_rule'])} |")
    L.append("")
    with open(args.out, "w") as f:
        f.write("\n".join(L) + "\n")


if __name__ == "__main__":
    main()
