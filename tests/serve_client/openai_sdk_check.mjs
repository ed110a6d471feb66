// Drives `sinklab serve` with the official openai npm client (tests/cli/test_serve_openai.py).
// Usage: node openai_sdk_check.mjs BASE_URL API_KEY   (BASE_URL ends in /v1)
// Prints one line per check; exits 1 at the first failure.
import assert from "node:assert/strict";
import OpenAI from "openai";

const [baseURL, apiKey] = process.argv.slice(2);
const client = new OpenAI({ baseURL, apiKey, maxRetries: 0, timeout: 120000 });
const checks = [];
const check = (name, fn) => checks.push([name, fn]);

check("models.list", async () => {
  const models = await client.models.list();
  assert.equal(models.data.length, 1);
  assert.equal(models.data[0].object, "model");
});

check("completions non-streaming", async () => {
  const r = await client.completions.create({ model: "default", prompt: "Once upon a time", max_tokens: 10, temperature: 0 });
  assert.equal(r.object, "text_completion");
  assert.equal(typeof r.choices[0].text, "string");
  assert.ok(["length", "stop"].includes(r.choices[0].finish_reason));
  assert.equal(r.usage.total_tokens, r.usage.prompt_tokens + r.usage.completion_tokens);
  assert.ok(r.usage.completion_tokens >= 1 && r.usage.completion_tokens <= 10);
});

check("completions streaming equals non-streaming", async () => {
  const args = { model: "default", prompt: "The little dog", max_tokens: 16, temperature: 0 };
  const whole = (await client.completions.create(args)).choices[0].text;
  const stream = await client.completions.create({ ...args, stream: true, stream_options: { include_usage: true } });
  let text = "", usage = null, finish = null;
  for await (const chunk of stream) {
    if (chunk.usage) usage = chunk.usage;
    if (chunk.choices.length) {
      text += chunk.choices[0].text;
      finish = chunk.choices[0].finish_reason ?? finish;
    }
  }
  assert.equal(text, whole);
  assert.ok(["length", "stop"].includes(finish));
  assert.ok(usage && usage.completion_tokens >= 1);
});

check("chat non-streaming and streaming", async () => {
  const args = { model: "default", messages: [{ role: "user", content: "Tell me a story." }], max_tokens: 12, temperature: 0 };
  const r = await client.chat.completions.create(args);
  assert.equal(r.object, "chat.completion");
  assert.equal(r.choices[0].message.role, "assistant");
  const stream = await client.chat.completions.create({ ...args, stream: true });
  let text = "", role = null;
  for await (const chunk of stream) {
    role = chunk.choices[0]?.delta?.role ?? role;
    text += chunk.choices[0]?.delta?.content ?? "";
  }
  assert.equal(role, "assistant");
  assert.equal(text, r.choices[0].message.content);
});

check("stop sequences", async () => {
  const args = { model: "default", prompt: "Tom and Lily", max_tokens: 40, temperature: 0 };
  const whole = (await client.completions.create(args)).choices[0].text;
  const words = whole.split(" ").filter((w) => w);
  assert.ok(words.length > 3, whole);
  const stop = " " + words[2];
  const r = await client.completions.create({ ...args, stop: [stop] });
  assert.equal(r.choices[0].finish_reason, "stop");
  assert.equal(r.choices[0].text, whole.slice(0, whole.indexOf(stop)));
});

check("a conversation keeps its cache", async () => {
  const first = await client.chat.completions.create({
    model: "default", messages: [{ role: "user", content: "Hello." }], max_tokens: 6, temperature: 0, persist: true,
  });
  assert.ok(first.conversation_id.startsWith("conv-"));
  const next = await client.chat.completions.create({
    model: "default", messages: [{ role: "user", content: "Go on." }], max_tokens: 6, temperature: 0,
    conversation_id: first.conversation_id,
  });
  assert.equal(next.usage.prompt_tokens_details.cached_tokens, first.sinklab.n_past);
  // Only the new turn is fed: fewer tokens than the history already cached.
  assert.ok(next.usage.prompt_tokens < first.usage.prompt_tokens + first.usage.completion_tokens);
});

const expectError = async (cls, status, fn) => {
  try {
    await fn();
  } catch (e) {
    assert.ok(e instanceof cls, `expected ${cls.name}, got ${e.constructor.name}: ${e.message}`);
    assert.equal(e.status, status);
    return e;
  }
  assert.fail(`expected ${cls.name}`);
};

check("errors surface as the SDK's error types", async () => {
  const bad = await expectError(OpenAI.BadRequestError, 400, () =>
    client.completions.create({ model: "default", prompt: "x", max_tokens: "many" }));
  assert.equal(bad.param, "max_tokens");
  await expectError(OpenAI.BadRequestError, 400, () =>
    client.chat.completions.create({ model: "default", messages: [{ role: "wizard", content: "x" }] }));
  await expectError(OpenAI.NotFoundError, 404, () =>
    client.chat.completions.create({ model: "default", messages: [{ role: "user", content: "x" }], conversation_id: "conv-missing" }));
  const wrongKey = new OpenAI({ baseURL, apiKey: apiKey + "x", maxRetries: 0 });
  await expectError(OpenAI.AuthenticationError, 401, () => wrongKey.models.list());
  await expectError(OpenAI.BadRequestError, 400, async () => {
    const s = await client.completions.create({ model: "default", prompt: "x", temperature: 9, stream: true });
    for await (const _ of s) { /* the error comes before the stream */ }
  });
});

for (const [name, fn] of checks) {
  try {
    await fn();
    console.log("ok   " + name);
  } catch (e) {
    console.log("FAIL " + name + ": " + (e.stack || e));
    process.exit(1);
  }
}
