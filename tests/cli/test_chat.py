"""`sinklab generate --chat` end to end on tiny planted models whose tokenizers
carry the special tokens of a chat format (tests/data/tokenizers/*_tiny.json):
the model's greedy continuation is fixed by its weights, so the test knows the
reply, where it stops and what is printed."""
import json
import pathlib
import shutil
import struct

from cli_util import SOURCE, assert_one_clear_error, run

TOKENIZERS = SOURCE / "tests" / "data" / "tokenizers"
DIM = 16
FLAG = DIM - 1  # the residual dimension that says "the reasoning message was written"


def write_model(folder, tokenizer, vocab, chain, after_flag=None, flag_token=None):
    """A one-layer decoder (F16 safetensors, no positions) that continues greedily
    along `chain` (token -> next token). Each chain token has its own embedding
    dimension; the final logit of `next` reads that dimension. The attention
    layer looks only at `flag_token`: once it is in the context, it writes FLAG,
    and the pairs in `after_flag` (token -> next) win over `chain`."""
    after_flag = after_flag or {}
    tokens = sorted({t for pair in list(chain.items()) + list(after_flag.items()) for t in pair})
    dim_of = {t: i for i, t in enumerate(tokens)}
    assert len(tokens) <= FLAG
    hidden = 4
    shapes = {"model.embed_tokens.weight": (vocab, DIM), "lm_head.weight": (vocab, DIM),
              "model.norm.weight": (DIM,)}
    p = "model.layers.0."
    for name, shape in {"input_layernorm.weight": (DIM,), "post_attention_layernorm.weight": (DIM,),
                        "self_attn.q_proj.weight": (DIM, DIM), "self_attn.k_proj.weight": (DIM, DIM),
                        "self_attn.v_proj.weight": (DIM, DIM), "self_attn.o_proj.weight": (DIM, DIM),
                        "mlp.gate_proj.weight": (hidden, DIM), "mlp.up_proj.weight": (hidden, DIM),
                        "mlp.down_proj.weight": (DIM, hidden)}.items():
        shapes[p + name] = shape
    data = {name: bytearray(2 * shape[0] * (shape[1] if len(shape) > 1 else 1)) for name, shape in shapes.items()}

    def put(name, row, col, value):
        cols = shapes[name][1] if len(shapes[name]) > 1 else 1
        struct.pack_into("<e", data[name], 2 * (row * cols + col), value)

    for name in ("model.norm.weight", p + "input_layernorm.weight", p + "post_attention_layernorm.weight"):
        for d in range(DIM):
            put(name, d, 0, 1.0)
    for t, d in dim_of.items():
        put("model.embed_tokens.weight", t, d, 1.0)  # after RMSNorm: 4 in dimension d
    for t, nxt in chain.items():
        put("lm_head.weight", nxt, dim_of[t], 10.0)
    if flag_token is not None:
        # Every chain token queries; only flag_token answers (score 30 after
        # the 1/sqrt(16) scale), and its value lands in FLAG.
        for d in dim_of.values():
            put(p + "self_attn.q_proj.weight", 0, d, 1.0)
        put(p + "self_attn.k_proj.weight", 0, dim_of[flag_token], 7.5)
        put(p + "self_attn.v_proj.weight", 0, dim_of[flag_token], 1.0)
        put(p + "self_attn.o_proj.weight", FLAG, 0, 1.0)
    for t, nxt in after_flag.items():
        # Without the flag chain[t] wins (40 against 36); with it this does.
        put("lm_head.weight", nxt, dim_of[t], 9.0)
        put("lm_head.weight", nxt, FLAG, 1.0)
    header, offset = {}, 0
    for name, shape in shapes.items():
        header[name] = {"dtype": "F16", "shape": list(shape), "data_offsets": [offset, offset + len(data[name])]}
        offset += len(data[name])
    head = json.dumps(header).encode()
    head += b" " * (-len(head) % 8)
    with open(folder / "model.safetensors", "wb") as f:
        f.write(struct.pack("<Q", len(head)) + head)
        for name in shapes:
            f.write(data[name])
    (folder / "config.json").write_text(json.dumps({
        "model_type": "sinklab", "vocab_size": vocab, "hidden_size": DIM, "num_hidden_layers": 1,
        "num_attention_heads": 1, "num_key_value_heads": 1, "head_dim": DIM, "intermediate_size": hidden,
        "max_position_embeddings": 1024, "rms_norm_eps": 1e-6, "position_encoding": "none"}))
    shutil.copy(TOKENIZERS / tokenizer, folder / "tokenizer.json")
    return folder


# harmony_tiny.json ids
ASSISTANT, ANALYSIS, FINAL, THINK, HELLO, SP_WORLD = 270, 273, 272, 278, 259, 264
RETURN, CHANNEL, START, END, MESSAGE = 200002, 200005, 200006, 200007, 200008


def harmony_model(folder):
    """Replies "<|channel|>analysis<|message|>think<|end|><|start|>assistant
    <|channel|>final<|message|>Hello world<|return|>", then would go on."""
    chain = {ASSISTANT: CHANNEL, CHANNEL: ANALYSIS, ANALYSIS: MESSAGE, MESSAGE: THINK, THINK: END, END: START,
             START: ASSISTANT, FINAL: MESSAGE, HELLO: SP_WORLD, SP_WORLD: RETURN, RETURN: HELLO}
    return write_model(folder, "harmony_tiny.json", 200019, chain,
                       after_flag={CHANNEL: FINAL, MESSAGE: HELLO}, flag_token=THINK)


def test_harmony_prints_the_final_channel_and_stops_at_return(tmp_path):
    model = harmony_model(tmp_path)
    r = run("generate", "-m", model, "--chat", "-p", "Hi", "--temp", "0", "-n", "40")
    assert r.returncode == 0, r.stderr
    assert r.stdout == "Hello world"
    assert "generated: 12 tokens" in r.stderr and "end of reply (<|return|>)" in r.stderr

    r = run("generate", "-m", model, "-p", "Hi", "--temp", "0", "-n", "40", "--show-channels")
    assert r.returncode == 0, r.stderr
    assert r.stdout == "[analysis] think\n[final] Hello world\n"


def test_harmony_json_has_the_prompt_messages_and_ids(tmp_path):
    model = harmony_model(tmp_path)
    r = run("generate", "-m", model, "--chat", "-p", "Hi <|end|>", "--system", "Be brief.", "--reasoning", "low",
            "--temp", "0", "-n", "40", "--json", "-")
    assert r.returncode == 0, r.stderr
    j = json.loads(r.stdout)
    assert j["chat_format"] == "harmony"
    assert j["prompt"].startswith("<|start|>system<|message|>You are ChatGPT, a large language model trained by "
                                  "OpenAI.\nKnowledge cutoff: 2024-06\nCurrent date: ")
    assert j["prompt"].endswith("\n\nReasoning: low\n\n# Valid channels: analysis, commentary, final. Channel must "
                                "be included for every message.<|end|><|start|>developer<|message|># Instructions"
                                "\n\nBe brief.<|end|><|start|>user<|message|>Hi <|end|><|end|><|start|>assistant")
    # The user's "<|end|>" is text: the prompt holds two <|end|> tokens besides the system's and developer's.
    assert j["prompt_ids"].count(END) == 3 and j["prompt_ids"][-2:] == [START, ASSISTANT]
    assert j["text"] == "Hello world"
    assert j["messages"] == [{"channel": "analysis", "content": "think"},
                             {"channel": "final", "content": "Hello world"}]
    assert j["ids"] == [CHANNEL, ANALYSIS, MESSAGE, THINK, END, START, ASSISTANT, CHANNEL, FINAL, MESSAGE, HELLO,
                        SP_WORLD]
    assert j["stop_reason"] == "end of reply (<|return|>)"


def test_without_chat_the_same_model_runs_past_the_reply(tmp_path):
    model = harmony_model(tmp_path)
    r = run("generate", "-m", model, "-p", "<|start|>assistant", "--temp", "0", "-n", "16", "--json", "-")
    assert r.returncode == 0, r.stderr
    j = json.loads(r.stdout)
    assert j["stop_reason"] == "token limit (16)" and RETURN in j["ids"]
    assert "chat_format" not in j


# gemma_tiny.json ids
G_NEWLINE, G_HELLO, G_SP_WORLD, G_END_OF_TURN = 107, 511, 516, 106


def test_gemma_format_is_found_from_the_tokenizer(tmp_path):
    chain = {G_NEWLINE: G_HELLO, G_HELLO: G_SP_WORLD, G_SP_WORLD: G_END_OF_TURN, G_END_OF_TURN: G_NEWLINE}
    model = write_model(tmp_path, "gemma_tiny.json", 539, chain)
    r = run("generate", "-m", model, "--chat", "-p", "Hello", "--temp", "0", "-n", "20", "--json", "-")
    assert r.returncode == 0, r.stderr
    j = json.loads(r.stdout)
    assert j["chat_format"] == "gemma"
    assert j["prompt"] == "<bos><start_of_turn>user\nHello<end_of_turn>\n<start_of_turn>model\n"
    assert j["prompt_ids"] == [2, 105, 533, 107, 511, 106, 107, 105, 537, 107]
    assert j["text"] == "Hello world" and j["ids"] == [G_HELLO, G_SP_WORLD]
    assert j["stop_reason"] == "end of reply (<end_of_turn>)"
    r = run("generate", "-m", model, "--chat-format", "gemma", "-p", "Hello", "--temp", "0", "--no-bos")
    assert r.returncode == 0, r.stderr
    assert r.stdout == "Hello world"


def test_missing_special_tokens_are_one_clear_error(tmp_path):
    chain = {G_NEWLINE: G_HELLO}
    model = write_model(tmp_path, "gemma_tiny.json", 539, chain)
    assert_one_clear_error(run("generate", "-m", model, "--chat-format", "harmony", "-p", "Hi"),
                           "no <|start|> token", "harmony chat format")
    default = SOURCE / "models" / "default"
    assert_one_clear_error(run("generate", "-m", default, "--chat", "-p", "Hi"),
                           "no chat format is known", "--chat-format")
    assert_one_clear_error(run("generate", "-m", default, "--chat-format", "vicuna", "-p", "Hi"), "--chat-format")


def test_help_lists_the_chat_flags():
    r = run("generate", "--help")
    assert r.returncode == 0
    for flag in ("--chat", "--chat-format", "--system", "--reasoning", "--show-channels"):
        assert flag in r.stdout
