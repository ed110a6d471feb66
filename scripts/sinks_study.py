#!/usr/bin/env python3
"""The sinks study: trains (or reuses) four attention variants with the same
budget at training length T and writes docs/results/sinks-study.md with, per
variant: Sink_1^0.3 and the massive-activation ratio (`sinklab inspect`),
dense perplexity on held-out text inside T and at 4T, window-only and
sink+window streaming perplexity beyond T, and the training loss.

Usage (from the repository root, after scripts/build.sh):
    scripts/sinks-study.sh            # = python3 scripts/sinks_study.py
Options: --runs DIR (default runs/study), --steps N, --out FILE, --threads N.
"""
import argparse
import json
import math
import os
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SINKLAB = os.path.join(ROOT, "build", "bin", "sinklab")
sys.path.insert(0, os.path.join(ROOT, "build", "python"))

VARIANTS = ["vanilla", "sink-token", "sink-logit", "goat"]
T = 128            # training length
SINK_TOKENS = 4    # S of the sink+window cache


def model_config(variant):
    return {"dim": 128, "n_layers": 4, "n_heads": 4, "n_kv_heads": 4, "seq_len": T, "variant": variant,
            "goat_rank": 8, "goat_abs_rank": 8, "goat_u_hidden": 16}


def train_config(variant, runs, steps, threads):
    return {
        "comment": "sinks study (scripts/sinks_study.py): same data, steps, batch and schedule for every variant",
        "model": model_config(variant),
        "train": {"train_text": os.path.join(ROOT, "data/corpus/train.txt"),
                  "valid_text": os.path.join(ROOT, "data/corpus/valid.txt"),
                  "tokenizer": os.path.join(runs, "tokenizer.json"),
                  "batch_size": 16, "steps": steps, "lr": 2e-3, "warmup_steps": 40, "min_lr_ratio": 0.1,
                  "weight_decay": 0.1, "grad_clip": 1.0, "seed": 7, "eval_every": 0, "eval_batches": 16,
                  "log_every": 25, "checkpoint_every": 100, "out_dir": os.path.join(runs, variant),
                  "threads": threads},
    }


def run(cmd, **kw):
    print("+", " ".join(cmd), flush=True)
    return subprocess.run(cmd, check=True, **kw)


def trained_steps(out_dir):
    try:
        with open(os.path.join(out_dir, "trainer_state.json")) as f:
            return json.load(f)["step"]
    except (OSError, ValueError, KeyError):
        return 0


def last_log(out_dir):
    loss, eval_loss, tps = None, None, None
    with open(os.path.join(out_dir, "log.jsonl")) as f:
        for line in f:
            j = json.loads(line)
            loss = j["loss"]
            eval_loss = j.get("eval_loss", eval_loss)
            tps = j.get("tokens_per_s", tps)
    return loss, eval_loss, tps


def nll_np(np, logits, target):
    z = logits.astype(np.float64)
    m = z.max()
    return float(m + np.log(np.exp(z - m).sum()) - z[target])


def dense_ppl(sinklab, np, model, ids, length, windows, prefix):
    """Mean NLL over `windows` consecutive windows of `length` tokens, each in a fresh dense session."""
    total, count = 0.0, 0
    for w in range(windows):
        chunk = prefix + ids[w * length:(w + 1) * length]
        s = sinklab.Session(model, cache="dense", context=len(chunk))
        for i in range(len(chunk) - 1):
            s.feed([chunk[i]])
            if i + 1 >= len(prefix):
                total += nll_np(np, s.next_logits(), chunk[i + 1])
                count += 1
    return math.exp(total / count)


def stream_ppl(sinklab, np, model, ids, cache, sink, window, skip):
    """Perplexity of a token-by-token stream through a cache, scored after the first `skip` tokens."""
    s = sinklab.Session(model, cache=cache, sink=sink, window=window)
    total, count = 0.0, 0
    for i in range(len(ids) - 1):
        s.feed([ids[i]])
        if i + 1 > skip:
            total += nll_np(np, s.next_logits(), ids[i + 1])
            count += 1
    return math.exp(total / count)


def inspect(model_dir, text):
    report = os.path.join(model_dir, "inspect")
    out = subprocess.run([SINKLAB, "inspect", "-m", model_dir, "-f", text, "--tokens", str(T), "--json",
                          "--out", report],
                         check=True, capture_output=True, text=True).stdout
    j = json.loads(out)
    sink1 = j["sink_scores"]["sink_percent"][0]
    alpha = max(h["alpha0"] for h in j["sink_scores"]["top_heads"])
    ratio = max(layer["max_ratio"] for layer in j["massive_activations"]["layers"])
    return sink1, ratio, alpha


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", default=os.path.join(ROOT, "runs", "study"))
    ap.add_argument("--steps", type=int, default=400)
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--out", default=os.path.join(ROOT, "docs", "results", "sinks-study.md"))
    ap.add_argument("--eval-only", action="store_true", help="do not train; evaluate what --runs holds")
    args = ap.parse_args()
    runs = os.path.abspath(args.runs)
    os.makedirs(runs, exist_ok=True)
    corpus = os.path.join(ROOT, "data", "corpus")
    if not os.path.exists(os.path.join(corpus, "train.txt")):
        run([os.path.join(ROOT, "scripts", "make-corpus.sh"), corpus])
    tok = os.path.join(runs, "tokenizer.json")
    if not os.path.exists(tok):
        run([SINKLAB, "train-tokenizer", "-f", os.path.join(corpus, "train.txt"), "--vocab", "2048",
             "--special", "<|endoftext|>", "--special", "<|sink|>", "-o", tok])
    for v in VARIANTS:
        cfg_path = os.path.join(runs, v + ".json")
        with open(cfg_path, "w") as f:
            json.dump(train_config(v, runs, args.steps, args.threads), f, indent=2)
        if not args.eval_only and trained_steps(os.path.join(runs, v)) < args.steps:
            run([SINKLAB, "train", "--config", cfg_path, "--quiet"])

    import numpy as np
    import sinklab
    valid = os.path.join(corpus, "valid.txt")
    rows = []
    for v in VARIANTS:
        d = os.path.join(runs, v)
        t0 = time.time()
        model = sinklab.Model(d)
        text = open(valid, encoding="utf-8").read()
        ids = model.tokenize(text, add_bos=False)
        prefix = model.tokenize("", add_bos=True)  # the sink token for the sink-token variant, else nothing
        sink1, ratio, alpha0 = inspect(d, valid)
        row = {"variant": v, "sink1": sink1, "alpha0": alpha0, "massive_ratio": ratio}
        row["ppl_T"] = dense_ppl(sinklab, np, model, ids, T, 16, prefix)
        row["ppl_4T"] = dense_ppl(sinklab, np, model, ids, 4 * T, 4, prefix)
        stream = prefix + ids[:8 * T]
        row["window"] = stream_ppl(sinklab, np, model, stream, "window", None, T, T)
        row["sink_window"] = stream_ppl(sinklab, np, model, stream, "sink", SINK_TOKENS, T - SINK_TOKENS, T)
        row["loss"], row["eval_loss"], row["tokens_per_s"] = last_log(d)
        rows.append(row)
        print(f"{v}: {row} ({time.time() - t0:.0f}s)", flush=True)
    write_markdown(args.out, rows, args.steps)
    print("wrote", args.out)


def write_markdown(path, rows, steps):
    m = model_config("vanilla")
    lines = [
        "# Sinks study: four attention variants, one budget",
        "",
        "Made by `scripts/sinks-study.sh` (that is, `python3 scripts/sinks_study.py --steps %d`): it builds the"
        " corpus (`scripts/make-corpus.sh`: King James Bible + Jane Austen), trains a 2048-token BPE tokenizer,"
        " trains each variant with `sinklab train` (configs written to `runs/study/<variant>.json`) and"
        " evaluates them on the held-out split `data/corpus/valid.txt`." % steps,
        "",
        "Every variant: dim %d, %d layers, %d heads, training length T = %d, %d steps of 16 x %d tokens"
        " (%.2fM tokens), AdamW lr 2e-3 with warm-up and cosine decay, seed 7. Vanilla, sink-token and"
        " sink-logit use RoPE; GOAT uses its prior and no RoPE."
        % (m["dim"], m["n_layers"], m["n_heads"], T, steps, T, steps * 16 * T / 1e6),
        "",
        "| variant | Sink_1^0.3 (%% heads) | max alpha_1 | max massive-activation ratio | train loss | held-out loss |"
        " dense ppl, T = %d | dense ppl, 4T = %d | window 0+%d ppl | sink %d+%d ppl |"
        % (T, 4 * T, T, SINK_TOKENS, T - SINK_TOKENS),
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append("| %s | %.1f | %.3f | %.1f | %.3f | %.3f | %.2f | %.2f | %.2f | %.2f |" % (
            r["variant"], r["sink1"], r["alpha0"], r["massive_ratio"], r["loss"], r["eval_loss"] if r["eval_loss"] else float("nan"),
            r["ppl_T"], r["ppl_4T"], r["window"], r["sink_window"]))
    lines += [
        "",
        "Columns:",
        "- Sink_1^0.3: percentage of (layer, head) pairs whose mean attention on the first token exceeds 0.3,"
        " over the first T tokens of the held-out text (`sinklab inspect --tokens %d --json`,"
        " `sink_scores.sink_percent[0]`). For the sink-token variant the first token is the learned sink token;"
        " for the others it is the first text token. max alpha_1: the largest mean attention on the first"
        " token of any head." % T,
        "- massive-activation ratio: the largest |h| of the residual stream divided by the layer's median |h|,"
        " maximised over layers (`massive_activations.layers[*].max_ratio`).",
        "- dense ppl, T: 16 consecutive windows of T held-out tokens, each in a fresh dense session"
        " (the sink-token variant gets its sink token first, unscored). 4T: 4 windows of 4T tokens"
        " (extrapolation beyond the training length).",
        "- window / sink: the first 8T held-out tokens streamed token by token through a cache of T tokens"
        " (window: the last T; sink: the first %d + the last %d), reindexed positions, scored after the first"
        " T tokens, i.e. only where the cache has started to evict." % (SINK_TOKENS, T - SINK_TOKENS),
        "",
        "## What it shows (computed from the table)",
        "",
    ]
    for r in rows:
        lines.append("- %s: 4T / T dense perplexity %.2fx; sink+window / window-only %.3fx; the strongest"
                     " first-token head puts %.0f%% of its attention there." % (
                         r["variant"], r["ppl_4T"] / r["ppl_T"], r["sink_window"] / r["window"], 100 * r["alpha0"]))
    if all(r["sink1"] == 0 for r in rows):
        lines += ["",
                  "No variant formed a first-token sink (Sink_1^0.3 = 0 everywhere) at this budget, and keeping"
                  " the first tokens in the cache changes window perplexity by well under 1%: the StreamingLLM"
                  " collapse of window-only attention needs a model that relies on a sink, which these short runs"
                  " did not produce. The differences between variants here are those of the training loss."
                  " Rerun with more steps (`scripts/sinks-study.sh --steps N`; checkpoints are reused and"
                  " resumed) to look for the effect at a larger budget."]
    lines.append("")
    with open(path, "w") as f:
        f.write("\n".join(lines))


if __name__ == "__main__":
    main()
