// A node's token sent over plain HTTP to another machine is readable by anyone on the path, and
// tokens do not expire: the SDK (and so the CLI's --remote) warns once per node. Loopback and
// https:// stay quiet.
import { test } from "node:test";
import assert from "node:assert/strict";
import { resolveRemote } from "../../src/sdk/index.js";

async function warningsFrom(fn: () => void): Promise<string[]> {
  const seen: string[] = [];
  const onWarning = (w: Error) => {
    if (w.name === "WheellockInsecureWarning") seen.push(w.message);
  };
  process.on("warning", onWarning);
  try {
    fn();
    // Warnings are emitted on the next tick.
    await new Promise((resolve) => setImmediate(resolve));
    return seen;
  } finally {
    process.off("warning", onWarning);
  }
}

test("plain HTTP to another machine warns once per node; loopback and https do not", async () => {
  const env = {};
  const token = "tok-never-printed-42";
  const warned = await warningsFrom(() => {
    resolveRemote({ url: ["http://10.1.2.3:7777", "http://10.1.2.4:7777"], token }, env);
    resolveRemote({ url: "http://10.1.2.3:7777", token }, env);
  });
  assert.equal(warned.length, 2);
  assert.match(warned[0] ?? "", /http:\/\/10\.1\.2\.3:7777 goes over plain HTTP/);
  assert.ok(!warned.join("\n").includes(token), "the token itself is never printed");
  const quiet = await warningsFrom(() => {
    for (const url of ["http://127.0.0.1:7777", "http://localhost:7777", "http://[::1]:7777"])
      resolveRemote({ url, token }, env);
    resolveRemote({ url: "https://10.1.2.5:7777", token }, env);
  });
  assert.deepEqual(quiet, []);
});
