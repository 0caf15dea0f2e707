import assert from "node:assert/strict";
import { Writable } from "node:stream";
import { test } from "node:test";
import { terminalProgress } from "../../src/cli/pull-progress.js";

function fakeTerminal(isTTY: boolean): { out: NodeJS.WriteStream; text: () => string } {
  let text = "";
  const w = new Writable({
    write(chunk: Buffer, _enc, done) {
      text += chunk.toString();
      done();
    },
  });
  return {
    out: Object.assign(w, { isTTY, columns: 100 }) as unknown as NodeJS.WriteStream,
    text: () => text,
  };
}

test("progress: one line per layer on a terminal, redrawn in place", () => {
  const t = fakeTerminal(true);
  const p = terminalProgress("Pulling x", t.out);
  assert.ok(p);
  const a = `sha256:${"a".repeat(64)}`;
  const b = `sha256:${"b".repeat(64)}`;
  p.layer(a, 2 * 1024 * 1024, false);
  p.layer(b, 1024 * 1024, true);
  p.bytes(a, 2 * 1024 * 1024);
  p.layerDone(a);
  p.status("unpacking");
  const last = t.text().split("\x1b[3A").pop() ?? "";
  assert.match(last, /Pulling x: unpacking/);
  assert.match(last, /aaaaaaaaaaaa \[#+\] 2\.0\/2\.0 MB done/);
  assert.match(last, /bbbbbbbbbbbb \[#+\] 1\.0\/1\.0 MB cached/);
});

test("progress: nothing at all when stderr is not a terminal", () => {
  assert.equal(terminalProgress("Pulling x", fakeTerminal(false).out), undefined);
});
