"""A `sinklab serve` conversation of 20x the default model's context over 200
turns: it keeps answering at flat memory, and every reply equals what a
sinklab.Session with the same cache gives when fed the same tokens."""
import os
import pathlib
import sys

import numpy as np
import pytest

import sinklab

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "cli"))
from serve_util import Server  # noqa: E402

SOURCE = pathlib.Path(__file__).resolve().parents[2]
MODEL = SOURCE / "models" / "default"


def test_long_conversation_flat_memory_and_same_answers_as_a_session():
    if not os.environ.get("SINKLAB_BIN"):
        pytest.skip("set SINKLAB_BIN to the sinklab binary")
    model = sinklab.Model(str(MODEL))
    with Server("-m", MODEL, "--parallel", "1") as server:
        conv, session, rss_warm = None, None, None
        for turn in range(200):
            body = {"messages": [{"role": "user", "content": f"Tell me about the dog called Rex {turn}."}],
                    "max_tokens": 16, "temperature": 0, "return_tokens": True}
            if conv:
                body["conversation_id"] = conv
            else:
                body["persist"] = True
            status, reply, _ = server.post("/v1/chat/completions", body)
            assert status == 200, reply
            conv = reply["conversation_id"]
            info = reply["sinklab"]
            if session is None:
                session = sinklab.Session(model, cache=info["cache"])
            prompt, completion = info["prompt_ids"], info["completion_ids"]
            if turn > 0:
                assert prompt[0] == last_completion[-1]  # the last sampled token is fed first
            session.feed(prompt)
            for i, want in enumerate(completion):
                got = int(np.argmax(session.next_logits()))
                assert got == want, (turn, i, got, want)
                if i + 1 < len(completion):
                    session.feed([got])
            last_completion = completion
            assert reply["evicted_tokens"] == session.evict_stats()["evicted"]
            if turn == 20:
                rss_warm = server.rss_kib()
        context = 256
        assert info["n_past"] >= 20 * context, info
        assert reply["evicted_tokens"] > 0 and info["cached_tokens"] <= context
        rss_end = server.rss_kib()
        print(f"{info['n_past']} tokens over 200 turns, {reply['evicted_tokens']} evicted; RSS {rss_warm} KiB after 20 turns, {rss_end} KiB after 200")
        assert rss_end <= 1.15 * rss_warm
