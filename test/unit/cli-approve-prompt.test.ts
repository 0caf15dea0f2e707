// `run --approve`'s question at the terminal: one key answers it, nobody answering denies at
// the request's expiry, and guest-chosen text (command line, URL) cannot rewrite the line a
// person answers (escape sequences and bidi overrides are shown escaped).
import { test } from "node:test";
import assert from "node:assert/strict";
import { PassThrough } from "node:stream";
import { ApprovalPrompt } from "../../src/cli/approve-prompt.js";
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
    attribution: { execId: 1, pid: 40, command: ["curl", "https://evil.test/x"] },
    heldAt: new Date(now).toISOString(),
    expiresAt: new Date(now + expiresInMs).toISOString(),
    ...over,
  };
}

function prompt() {
  const out = new PassThrough();
  let written = "";
  out.on("data", (c: Buffer) => (written += c.toString()));
  // -it: keys arrive through `take` (the terminal code feeds it), not from stdin.
  const p = new ApprovalPrompt(true, out as never, new PassThrough() as never);
  return { p, output: () => written };
}

test("one key answers the open question; keys with no question open are not taken", async () => {
  const { p, output } = prompt();
  assert.equal(p.take(Buffer.from("s")), false, "no question open: the key is the guest's");
  const decision = p.decide(blocked());
  assert.match(
    output(),
    /exec 1 \(curl https:\/\/evil\.test\/x\) wants GET https:\/\/evil\.test\/x \(request 3\)/,
  );
  assert.equal(p.take(Buffer.from("s")), true);
  assert.equal(await decision, "sandbox");
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
  const text = output();
  for (const c of ["\x1b", "\x9b", "\u202e"]) assert.ok(!text.includes(c), c);
  assert.match(text, /\\x1b\[2K\\x0dwheellock/);
  assert.match(text, /\\u202egro/);
  const table = pendingReport([
    blocked({ url: "https://evil.test/\x07", attribution: { execId: 1, command: ["\x1b]0;x"] } }),
  ]);
  for (const c of ["\x07", "\x1b"]) assert.ok(!table.includes(c), c);
  assert.match(table, /\\x1b\]0;x/);
});
