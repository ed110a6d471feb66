"""`sinklab serve` through urllib: the routes, streaming, conversations that
keep their cache, and every client error as the right status with a JSON error."""
import json
import socket

import pytest

from serve_util import Server, wait_until


@pytest.fixture(scope="module")
def server():
    with Server("--parallel", "2") as s:
        yield s


def completion(server, prompt, **kw):
    status, body, _ = server.post("/v1/completions", {"prompt": prompt, "temperature": 0, **kw})
    assert status == 200, body
    return body


def test_health_models_and_page(server):
    assert server.get("/health")[:2] == (200, {"status": "ok"})
    status, body, _ = server.get("/v1/models")
    assert status == 200 and body["object"] == "list"
    model = body["data"][0]
    assert model["id"] == "default" and model["sinklab"]["cache"].startswith("sink:")
    assert model["sinklab"]["chat_format"] == "plain"
    status, page, hdrs = server.get("/")
    assert status == 200 and hdrs["Content-Type"].startswith("text/html")
    assert "<script>" in page and "http" not in page.split("<script>")[1].split("fetch(")[0]
    assert "src=" not in page and "<link" not in page  # no external assets


def test_completion_fields_and_usage(server):
    body = completion(server, "Once upon a time", max_tokens=12, return_tokens=True)
    assert body["object"] == "text_completion" and body["id"].startswith("cmpl-")
    choice = body["choices"][0]
    assert choice["finish_reason"] in ("length", "stop") and isinstance(choice["text"], str)
    usage = body["usage"]
    ids = body["sinklab"]
    assert usage["prompt_tokens"] == len(ids["prompt_ids"]) > 1
    assert usage["completion_tokens"] == len(ids["completion_ids"])
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    if choice["finish_reason"] == "length":
        assert usage["completion_tokens"] == 12
    # Greedy decoding is reproducible.
    assert completion(server, "Once upon a time", max_tokens=12)["choices"][0]["text"] == choice["text"]


def test_stream_equals_the_whole_reply(server):
    whole = completion(server, "The old house", max_tokens=20)["choices"][0]["text"]
    events = server.events("/v1/completions", {"prompt": "The old house", "max_tokens": 20, "temperature": 0,
                                                "stream": True, "stream_options": {"include_usage": True}})
    assert events[-1] == "[DONE]"
    usage = events[-2]
    assert usage["choices"] == [] and usage["usage"]["completion_tokens"] > 0
    chunks = events[:-2]
    assert chunks[-1]["choices"][0]["finish_reason"] in ("length", "stop")
    assert all(c["choices"][0]["finish_reason"] is None for c in chunks[:-1])
    assert "".join(c["choices"][0]["text"] for c in chunks) == whole


def test_stop_sequence_cuts_the_reply(server):
    whole = completion(server, "Tom and Lily", max_tokens=40)["choices"][0]["text"]
    words = whole.split()
    assert len(words) > 3, whole
    stop = " " + words[2]
    cut = completion(server, "Tom and Lily", max_tokens=40, stop=[stop])
    assert cut["choices"][0]["finish_reason"] == "stop"
    assert cut["choices"][0]["text"] == whole[:whole.index(stop)]
    streamed = server.events("/v1/completions", {"prompt": "Tom and Lily", "max_tokens": 40, "temperature": 0,
                                                  "stop": stop, "stream": True})
    assert "".join(e["choices"][0]["text"] for e in streamed[:-1]) == cut["choices"][0]["text"]


def test_chat_conversation_feeds_only_new_tokens(server):
    first = server.post("/v1/chat/completions", {"messages": [{"role": "user", "content": "Hello there."}],
                                                 "persist": True, "max_tokens": 8, "temperature": 0})
    assert first[0] == 200, first[1]
    reply = first[1]
    conv = reply["conversation_id"]
    assert first[2]["X-Conversation-Id"] == conv
    assert reply["object"] == "chat.completion" and reply["choices"][0]["message"]["role"] == "assistant"
    n1 = reply["sinklab"]["n_past"]
    # The whole history again: the turns already in the cache are skipped.
    history = [{"role": "user", "content": "Hello there."},
               {"role": "assistant", "content": reply["choices"][0]["message"]["content"]},
               {"role": "user", "content": "Tell me more."}]
    again = server.post("/v1/chat/completions", {"messages": history, "conversation_id": conv, "max_tokens": 8,
                                                 "temperature": 0, "return_tokens": True})[1]
    only_new = server.post("/v1/chat/completions", {"messages": [{"role": "user", "content": "And then?"}],
                                                    "max_tokens": 8, "temperature": 0},
                           headers={"X-Conversation-Id": conv})[1]
    assert again["usage"]["prompt_tokens_details"]["cached_tokens"] == n1
    # "Tell me more." and its turn markup, not the history (which alone is the n1 tokens cached).
    assert 0 < again["usage"]["prompt_tokens"] < n1, again["usage"]
    assert only_new["conversation_id"] == conv and only_new["usage"]["prompt_tokens"] < n1
    status, view, _ = server.get("/v1/conversations/" + conv)
    assert status == 200 and view["n_past"] == only_new["sinklab"]["n_past"]
    assert [t["text"] for t in view["sink_tokens"]] and view["evicted_tokens"] == 0
    assert server.request("DELETE", "/v1/conversations/" + conv)[0] == 200
    assert server.get("/v1/conversations/" + conv)[0] == 404


def test_streamed_chat_chunks(server):
    events = server.events("/v1/chat/completions", {"messages": [{"role": "user", "content": "Hi"}],
                                                     "max_tokens": 6, "temperature": 0, "stream": True})
    assert events[-1] == "[DONE]"
    assert events[0]["choices"][0]["delta"]["role"] == "assistant"
    assert all(e["object"] == "chat.completion.chunk" for e in events[:-1])
    assert events[-2]["choices"][0]["finish_reason"] in ("length", "stop")


@pytest.mark.parametrize("body,param", [
    ({"prompt": "x", "max_tokens": "ten"}, "max_tokens"),
    ({"prompt": "x", "temperature": 5}, "temperature"),
    ({"prompt": 7}, "prompt"),
    ({}, "prompt"),
    ({"prompt": "x", "n": 2}, "n"),
    ({"prompt": "x", "stop": ["a", "b", "c", "d", "e"]}, "stop"),
    ({"prompt": "x", "stream": "yes"}, "stream"),
    ({"prompt": "x", "logprobs": 3}, "logprobs"),
    ({"prompt": [1, -2]}, "prompt"),
    ({"prompt": [999999]}, "prompt"),
])
def test_bad_fields_are_400_naming_the_field(server, body, param):
    status, err, _ = server.post("/v1/completions", body)
    assert status == 400, err
    assert err["error"]["type"] == "invalid_request_error" and err["error"]["param"] == param, err


@pytest.mark.parametrize("body,param", [
    ({"messages": "hi"}, "messages"),
    ({"messages": [{"role": "robot", "content": "hi"}]}, "messages[0].role"),
    ({"messages": [{"role": "user"}]}, "messages[0].content"),
    ({"messages": [{"role": "user", "content": "a"}, {"role": "system", "content": "b"}]}, "messages[1].role"),
    ({"messages": [{"role": "user", "content": "a"}], "persist": True, "conversation_id": "x"}, "persist"),
])
def test_bad_chat_fields(server, body, param):
    status, err, _ = server.post("/v1/chat/completions", body)
    assert status == 400 and err["error"]["param"] == param, err


def test_malformed_and_hostile_bodies(server):
    for raw in (b"{not json", b"[1, 2]", b"[" * 100000 + b"]" * 100000, b"\xff\xfe"):
        status, err, _ = server.request("POST", "/v1/completions", raw=raw)
        assert status in (400, 413), (raw[:10], status)
        assert "error" in err and err["error"]["message"]
    status, err, _ = server.request("POST", "/v1/completions", raw=b"{" + b" " * (2 << 20) + b"}")
    assert status == 413 and err["error"]["type"] == "request_too_large"
    status, err, _ = server.get("/v1/nothing/here")
    assert status == 404 and "error" in err
    # Paths never reach the filesystem.
    assert server.get("/../../etc/passwd")[0] == 404
    assert server.get("/v1/conversations/..%2F..%2Fetc%2Fpasswd")[0] == 404


def test_unknown_conversation_is_404(server):
    status, err, _ = server.post("/v1/completions", {"prompt": "x", "conversation_id": "conv-nope"})
    assert status == 404 and err["error"]["code"] == "conversation_not_found"


def test_conversation_endpoint_mismatch_is_400(server):
    reply = server.post("/v1/completions", {"prompt": "x", "persist": True, "max_tokens": 1})[1]
    status, err, _ = server.post("/v1/chat/completions", {"messages": [{"role": "user", "content": "y"}],
                                                          "conversation_id": reply["conversation_id"]})
    assert status == 400 and err["error"]["param"] == "conversation_id"


def test_metrics_are_prometheus_text(server):
    completion(server, "A cat", max_tokens=3)
    status, text, hdrs = server.get("/metrics")
    assert status == 200 and hdrs["Content-Type"].startswith("text/plain")
    values = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            values[name] = float(value)
    assert values["sinklab_generated_tokens_total"] >= 3
    assert values["sinklab_decode_tokens_per_second"] > 0
    assert values["sinklab_kv_bytes"] > 0 and "sinklab_evicted_tokens_total" in values
    assert values['sinklab_requests_total{route="/v1/completions",status="200"}'] >= 1


def test_api_key_is_required_and_compared():
    with Server("--api-key", "s3cret") as s:
        assert s.get("/health")[0] == 200  # open, for load balancers
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "s3cret"},
                        {"Authorization": "Bearer s3cret2"}):
            status, err, _ = s.get("/v1/models", headers=headers)
            assert status == 401 and err["error"]["code"] == "invalid_api_key"
        assert s.get("/v1/models", headers={"Authorization": "Bearer s3cret"})[0] == 200


def test_kv_budget_refuses_new_conversations_cleanly():
    # The default model's sink cache holds 256 tokens: 1 MiB of KV per session.
    with Server("--kv-budget", "2") as s:
        ids = [s.post("/v1/completions", {"prompt": "a", "persist": True, "max_tokens": 1})[1]["conversation_id"]
               for _ in range(2)]
        status, err, _ = s.post("/v1/completions", {"prompt": "a", "persist": True, "max_tokens": 1})
        assert status == 503 and err["error"]["code"] == "kv_budget_full"
        status, err, _ = s.post("/v1/completions", {"prompt": "a", "max_tokens": 1})
        assert status == 503
        s.request("DELETE", "/v1/conversations/" + ids[0])
        assert s.post("/v1/completions", {"prompt": "a", "max_tokens": 1})[0] == 200


def test_idle_conversations_expire():
    with Server("--idle-expiry", "1") as s:
        conv = s.post("/v1/completions", {"prompt": "a", "persist": True, "max_tokens": 1})[1]["conversation_id"]
        assert wait_until(lambda: s.get("/v1/conversations/" + conv)[0] == 404, timeout=20)


def test_binds_to_loopback_by_default(server):
    assert "http://127.0.0.1:" in server.banner


def test_disconnect_mid_stream_frees_the_slot():
    with Server("--parallel", "1") as s:
        host, port = s.url.split("//")[1].split(":")
        body = json.dumps({"prompt": "Once", "max_tokens": 100000, "stream": True}).encode()
        sock = socket.create_connection((host, int(port)))
        sock.sendall(b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
        received = b""
        while b"data: " not in received:
            chunk = sock.recv(4096)
            assert chunk, received
            received += chunk
        sock.close()
        # The only slot is free again: a short request completes.
        status, reply, _ = s.post("/v1/completions", {"prompt": "Hi", "max_tokens": 2}, timeout=60)
        assert status == 200 and reply["usage"]["completion_tokens"] >= 1
        text = s.get("/metrics")[1]
        assert "sinklab_cancelled_requests_total 1" in text


def test_observing_the_sinks_leaves_the_reply_unchanged(server):
    body = {"prompt": "Once upon a time there was", "max_tokens": 24, "temperature": 0, "return_tokens": True,
            "persist": True}
    plain = server.post("/v1/completions", body)[1]
    observed = server.post("/v1/completions", {**body, "observe_attention": True})[1]
    assert observed["sinklab"]["completion_ids"] == plain["sinklab"]["completion_ids"]
    view = server.get("/v1/conversations/" + observed["conversation_id"])[1]
    assert 0 < view["sink_mass"] <= 1
    assert len(view["sink_mass_by_layer"]) == 4 and all(0 <= m <= 1 for m in view["sink_mass_by_layer"])
    assert server.get("/v1/conversations/" + plain["conversation_id"])[1]["sink_mass"] is None
