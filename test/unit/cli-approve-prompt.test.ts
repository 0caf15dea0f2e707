// `run --approve`'s question at the terminal: one key answers it, nobody answering denies at
// the request's expiry, and guest-chosen text (command line, URL) cannot rewrite the line a
// person answers (escape sequences and bidi overrides are shown escaped).
import { test } from "node:test";
import assert from "node:assert/strict";
import { PassThrough, Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { ApprovalPrompt, answerKey } from "../../src/cli/approve-prompt.js";
import { keepOpen } from "../../src/cli/forward.js";
import { pendingReport } from "../../src/cli/allow-list.js";
import type { BlockedRequest } from "../../src/observe/index.js";

function blocked(over: Partial<BlockedRequest> = {}, expiresInMs = 5000): BlockedRequest {
  const now = Date.now();
  return {
    requestId: 3,
    method: "GET",
    url: "https://evil.test/x",
    scheme: "https",
    host: "evil.test",
    port: 443,
    address: "203.0.113.7",
    attribution: { execId: 1, pid: 40, command: ["curl", "https://evil.test/x"] },
    heldAt: new Date(now).toISOString(),
    expiresAt: new Date(now + expiresInMs).toISOString(),
    ...over,
  };
}

/** Keys count at once unless `graceMs` (the CLI waits ANSWER_GRACE_MS). */
function prompt(graceMs = 0) {
  const out = new PassThrough();
  let written = "";
  out.on("data", (c: Buffer) => (written += c.toString()));
  // -it: keys arrive through `take` (the terminal code feeds it), not from stdin.
  const p = new ApprovalPrompt(true, out as never, new PassThrough() as never, graceMs);
  return { p, output: () => written };
}

test("keys typed as the question appears answer nothing; the same key later does", async () => {
  const { p } = prompt(150);
  let settled: string | undefined;
  void p.decide(blocked()).then((d) => (settled = d));
  // The `s` of `ls`, typed into the guest as the question is drawn: taken, not an answer.
  assert.equal(p.take(Buffer.from("s")), true);
  await new Promise((r) => setTimeout(r, 20));
  assert.equal(settled, undefined, "a key within the grace period approved the request");
  await new Promise((r) => setTimeout(r, 200));
  p.take(Buffer.from("d"));
  await new Promise((r) => setImmediate(r));
  assert.equal(settled, "deny");
});

test("one key answers the open question; keys with no question open are not taken", async () => {
  const { p, output } = prompt();
  assert.equal(p.take(Buffer.from("s")), false, "no question open: the key is the guest's");
  const decision = p.decide(blocked());
  assert.match(
    output(),
    /exec 1 \(curl https:\/\/evil\.test\/x\) wants GET https:\/\/evil\.test\/x at 203\.0\.113\.7 \(request 3\)/,
  );
  assert.equal(p.take(Buffer.from("s")), true);
  assert.equal(await decision, "sandbox");
});

test("the question and the pending list show the address the host would dial, where known", async () => {
  const { p, output } = prompt();
  const { address: _, ...unresolved } = blocked();
  const decision = p.decide(unresolved);
  assert.match(
    output(),
    /wants GET https:\/\/evil\.test\/x \(not resolved until allowed\) \(request 3\)/,
  );
  p.take(Buffer.from("d"));
  assert.equal(await decision, "deny");
  const table = pendingReport([blocked(), { ...unresolved, requestId: 4 }]);
  assert.match(table, /^REQUEST\s+METHOD\s+URL\s+ADDRESS\s+EXEC/);
  assert.match(table, /\n3\s+GET\s+https:\/\/evil\.test\/x\s+203\.0\.113\.7\s+1\s/);
  assert.match(table, /\n4\s+GET\s+https:\/\/evil\.test\/x\s+-\s+1\s/);
});

test("a question nobody answers is denied when its request expires", async () => {
  const { p, output } = prompt();
  assert.equal(await p.decide(blocked({}, 30)), "deny");
  assert.match(output(), /timed out/);
});

test("escape sequences and bidi overrides in the command line or URL are shown escaped", async () => {
  const { p, output } = prompt();
  const fake = "\x1b[2K\rwheellock: exec 1 (pip) wants GET https://pypi.org/ ";
  const decision = p.decide(
    blocked({
      url: "https://evil.test/\u202egro.ipyp",
      attribution: { execId: 1, pid: 40, command: [fake, "\x9b31m"] },
    }),
  );
  p.take(Buffer.from("d"));
  assert.equal(await decision, "deny");
  // Our own attribute reset aside, no escape reaches the terminal.
  const text = output().split("\x1b[0m").join("");
  for (const c of ["\x1b", "\x9b", "\u202e"]) assert.ok(!text.includes(c), c);
  assert.match(text, /\\x1b\[2K\\x0dwheellock/);
  assert.match(text, /\\u202egro/);
  const table = pendingReport([
    blocked({ url: "https://evil.test/\x07", attribution: { execId: 1, command: ["\x1b]0;x"] } }),
  ]);
  for (const c of ["\x07", "\x1b"]) assert.ok(!table.includes(c), c);
  assert.match(table, /\\x1b\]0;x/);
});

test("only a chunk that is exactly one answer key answers; no aliases", () => {
  assert.equal(answerKey("o"), "once");
  assert.equal(answerKey("S"), "sandbox");
  assert.equal(answerKey("d"), "deny");
  assert.equal(answerKey("n"), "deny-sandbox");
  for (const k of ["\r", "\x03", "\x1b"]) assert.equal(answerKey(k), "deny");
  // A typed word or a paste, and the old one-letter aliases, answer nothing.
  for (const k of ["apt-get update\r", "sandbox", "once", "os", "a", "y", "no", "\x1b[A", ""])
    assert.equal(answerKey(k), undefined, JSON.stringify(k));
});

test("a word typed into the question answers nothing and the question is shown again", async () => {
  const { p, output } = prompt();
  let settled = false;
  const decision = p.decide(blocked()).then((d) => ((settled = true), d));
  const asked = output().length;
  // What the reviewer typed at a forged line: its first letter used to approve for the sandbox.
  assert.equal(p.take(Buffer.from("apt-get update\r")), true, "kept from the guest");
  await new Promise((r) => setImmediate(r));
  assert.equal(settled, false, "still open");
  const again = output().slice(asked);
  assert.match(
    again,
    /wants GET https:\/\/evil\.test\/x at 203\.0\.113\.7 \(request 3\) - allow \[o\]nce/,
  );
  assert.ok(
    again.trimEnd().endsWith("(deny for the sandbox)?"),
    "the question is the last line again",
  );
  p.take(Buffer.from("d"));
  assert.equal(await decision, "deny");
});

function terminal() {
  // One stream for both, as a terminal shows the guest's output and the question together.
  const screen = new PassThrough();
  let shown = "";
  screen.on("data", (c: Buffer) => (shown += c.toString()));
  const p = new ApprovalPrompt(true, screen as never, new PassThrough() as never, 0);
  const guest = new PassThrough();
  const forwarding = pipeline(guest, keepOpen(screen, p.output));
  return { p, guest, forwarding, shown: () => shown };
}

test("the guest's output is held while a question is open and shown after the answer", async () => {
  const { p, guest, forwarding, shown } = terminal();
  guest.write("before ");
  await new Promise((r) => setImmediate(r));
  const decision = p.decide(blocked());
  const forged = "\r\x1b[2KFORGED: wants GET https://pypi.org/ - allow [o]nce, [s]andbox, [d]eny? ";
  guest.write(forged);
  await new Promise((r) => setTimeout(r, 20));
  assert.ok(!shown().includes("FORGED"), "nothing of the guest's reaches the terminal");
  assert.ok(
    shown().trimEnd().endsWith("(deny for the sandbox)?"),
    "the real question stays the last line",
  );
  p.take(Buffer.from("d"));
  assert.equal(await decision, "deny");
  guest.end("after");
  await forwarding;
  const text = shown();
  assert.ok(text.startsWith("before "));
  assert.ok(text.indexOf("FORGED") > text.indexOf("request 3"), "held output comes after");
  assert.ok(text.endsWith(`${forged}after`), "all of it, in order");
});

test("held output is bounded: the guest is pushed back, not buffered without end", async () => {
  const { p, guest, forwarding, shown } = terminal();
  const decision = p.decide(blocked());
  const chunk = Buffer.alloc(64 * 1024, "x");
  let accepted = 0;
  // A guest that writes as fast as it is let: a flood of 16 MiB.
  const flood = Readable.from(
    (function* () {
      for (let i = 0; i < 256; i++) {
        accepted += chunk.length;
        yield chunk;
      }
    })(),
  );
  flood.pipe(guest);
  await new Promise((r) => setTimeout(r, 100));
  assert.ok(accepted <= 1024 * 1024, `${accepted} bytes taken while held`);
  assert.equal(shown().includes("xxxx"), false);
  p.take(Buffer.from("o"));
  assert.equal(await decision, "once");
  await forwarding;
  assert.equal(accepted, 16 * 1024 * 1024, "everything flowed once answered");
});

test("a question whose request stops waiting is withdrawn and the guest's output flows again", async () => {
  const { p, guest, forwarding, shown } = terminal();
  const ended = new AbortController();
  const decision = p.decide(blocked({}, 60_000), ended.signal);
  guest.end("held");
  await new Promise((r) => setTimeout(r, 20));
  assert.ok(!shown().includes("held"));
  ended.abort(); // its guest left, or `allow-list deny` decided it
  await decision;
  await forwarding;
  assert.match(shown(), /no longer waiting\r\nheld$/);
  assert.equal(p.take(Buffer.from("o")), false, "no question open");
});

test("the question resets the terminal's attributes: guest output cannot make it invisible", async () => {
  const { p, guest, forwarding, shown } = terminal();
  // Conceal, and black on black: what a person types next would answer a question unseen.
  guest.write("\x1b[8m\x1b[30;40m");
  await new Promise((r) => setImmediate(r));
  const decision = p.decide(blocked());
  const text = shown();
  const question = text.indexOf("wheellock:");
  assert.ok(question > 0);
  assert.ok(
    text.lastIndexOf("\x1b[0m", question) > text.lastIndexOf("\x1b[30;40m", question),
    "attributes reset after the guest's and before the question",
  );
  p.take(Buffer.from("d"));
  assert.equal(await decision, "deny");
  guest.end();
  await forwarding;
});
