// The chat page of `sinklab serve` in Debian's chromium (playwright-core):
// a message streams a reply, and the cache panel fills in.
// Usage: node chat_page_check.mjs BASE_URL SCREENSHOT.png
import assert from "node:assert/strict";
import { chromium } from "playwright-core";

const [base, shot] = process.argv.slice(2);
const browser = await chromium.launch({ executablePath: process.env.SINKLAB_CHROMIUM || "/usr/bin/chromium",
                                        args: ["--no-sandbox"] });
try {
  const page = await browser.newPage({ viewport: { width: 1100, height: 700 } });
  const problems = [];
  page.on("console", (m) => { if (m.type() === "error" || m.type() === "warning") problems.push(m.text()); });
  page.on("pageerror", (e) => problems.push(String(e)));
  page.on("request", (r) => { if (!r.url().startsWith(base)) problems.push("external request " + r.url()); });
  await page.goto(base + "/");
  await page.waitForFunction(() => document.getElementById("model").textContent.includes("sink:"));
  for (const text of ["Tell me a story.", "What happened next?"]) {
    await page.fill("#text", text);
    await page.press("#text", "Enter");
    await page.waitForFunction((n) => document.querySelectorAll(".assistant .meta").length === n, text === "Tell me a story." ? 1 : 2,
                               { timeout: 60000 });
  }
  const replies = await page.$$eval(".assistant", (els) => els.map((e) => e.firstChild ? e.firstChild.textContent : ""));
  assert.equal(replies.length, 2);
  assert.ok(replies.every((r) => r.length > 0), JSON.stringify(replies));
  await page.waitForFunction(() => document.getElementById("mass").textContent !== "–");
  const mass = Number(await page.textContent("#mass"));
  assert.ok(mass >= 0 && mass <= 1, String(mass));
  assert.equal(await page.$$eval("#sinks span", (s) => s.length), 4);
  assert.equal(await page.$$eval("#layers i", (s) => s.length), 4);
  assert.ok(Number(await page.textContent("#npast")) > 10);
  await page.screenshot({ path: shot });
  assert.deepEqual(problems, []);
  console.log("ok   chat page: 2 replies, sink mass " + mass);
} finally {
  await browser.close();
}
