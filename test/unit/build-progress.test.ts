// Build progress: docker-style plain lines, and the bounds a hostile RUN cannot push past (a
// step printing gigabytes with no newline must not grow the host's memory or time with it).
import assert from "node:assert/strict";
import { test } from "node:test";
import { plainBuildProgress, ttyBuildProgress } from "../../src/build/index.js";
import { cpuMsSince } from "../helpers/timing.js";

test("plain lines carry the step and its time; a failed step's output stays shown", () => {
  let out = "";
  const p = plainBuildProgress((t) => (out += t));
  p.start(1, "[stage-0 1/2] RUN make");
  p.output(1, Buffer.from("compiling\npartial"));
  p.done(1, 1234);
  p.cached(2);
  assert.match(
    out,
    /^#1 \[stage-0 1\/2\] RUN make\n#1 \d+\.\d{3} compiling\n#1 partial\n#1 DONE 1\.2s\n#2 CACHED\n$/,
  );
});

test(
  "output with no newline is cut into bounded lines, in linear time",
  { timeout: 20_000 },
  async () => {
    const chunk = Buffer.alloc(64 * 1024, "x");
    for (const make of [
      plainBuildProgress,
      (w: (t: string) => void) => ttyBuildProgress(w, () => 80),
    ]) {
      let longest = 0;
      let written = 0;
      const p = make((t) => {
        written += t.length;
        for (const line of t.split("\n")) longest = Math.max(longest, line.length);
      });
      p.start(1, "RUN cat /dev/zero");
      const cpu0 = process.cpuUsage();
      // 256 MiB with no newline: before the bound, every chunk re-split everything held so far.
      for (let i = 0; i < 4096; i++) {
        p.output(1, chunk);
        // Yields now and then, so a slow (quadratic) version fails on the timeout, not hangs.
        if (i % 64 === 0) await new Promise((resolve) => setImmediate(resolve));
      }
      p.failed(1, 1);
      // CPU time: a loaded machine stretches wall time, not the work (quadratic was minutes).
      assert.ok(cpuMsSince(cpu0) < 10_000, `took ${cpuMsSince(cpu0)} ms of CPU`);
      assert.ok(longest <= 8192, `a line of ${longest} characters was written`);
      assert.ok(written > 0);
    }
  },
);

test("the terminal view shows no control characters from the step's output", () => {
  let out = "";
  const p = ttyBuildProgress(
    (t) => (out += t),
    () => 200,
  );
  p.start(1, "RUN x");
  p.output(1, Buffer.from("evil \x1b]0;title\x07 \x1b[2J text\n"));
  p.failed(1, 5);
  const shown = out.split("\n").find((l) => l.includes("evil")) ?? "";
  assert.ok(!shown.includes("\x1b") && !shown.includes("\x07"), JSON.stringify(shown));
});
