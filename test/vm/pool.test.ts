// Sandbox.pool(): sandboxes kept started, handed out at once, each its own machine.
import { test } from "node:test";
import assert from "node:assert/strict";
import { Sandbox, type VmSandbox } from "../../src/index.js";
import { waitUntil } from "../helpers/lifecycle.js";
import { childQemuPids, isolateDataDir, runDirEntries } from "../helpers/vm.js";

const dataDir = isolateDataDir();

test("a pool hands out ready, independent sandboxes and cleans up what it kept", async () => {
  // The timeout must count from acquire, not from the start in the background.
  const pool = Sandbox.pool({ size: 2, timeoutSeconds: 8 });
  const acquired: VmSandbox[] = [];
  try {
    await pool.whenFull();
    assert.equal(pool.available, 2);
    // Idle in the pool for longer than the sandboxes' timeout.
    await new Promise((r) => setTimeout(r, 9000));
    const t = performance.now();
    // Handed over without starting anything: acquire settles before the event loop turns even
    // once (a start, restore or boot, needs I/O). Structural, not a time limit: a loaded CI
    // machine can take any number of milliseconds for the same work.
    const a = await Promise.race([
      pool.acquire(),
      new Promise<undefined>((r) => setImmediate(() => r(undefined))),
    ]);
    const acquireMs = performance.now() - t;
    assert.ok(a, "acquire waited for I/O instead of handing over a started sandbox");
    acquired.push(a);
    // Still running after idling longer than its timeout: the timeout counts from acquire.
    assert.equal(a.running, true);
    const first = await a.exec("hostname");
    const firstExecMs = performance.now() - t;
    process.stderr.write(
      `pool: acquire ${acquireMs.toFixed(1)} ms, acquire + first exec ${firstExecMs.toFixed(0)} ms\n`,
    );
    assert.equal(first.stdout.trim(), a.id);
    assert.equal(pool.available, 1);

    const b = await pool.acquire();
    acquired.push(b);
    assert.equal(b.running, true);
    assert.notEqual(a.id, b.id);
    const rand = "head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \\n'";
    const [ra, rb] = await Promise.all([a.exec(rand), b.exec(rand)]);
    assert.notEqual(ra.stdout, rb.stdout, "pooled sandboxes must not share RNG state");
    await a.writeFile("/root/mine", "a");
    await assert.rejects(b.readFile("/root/mine"));
  } finally {
    // Closes what the pool kept, including a replacement still starting.
    await pool.close();
  }
  await assert.rejects(pool.acquire(), /closed/);
  assert.equal(childQemuPids().length, acquired.length, "only the acquired sandboxes remain");
  // The timeout (8 s from acquire) does fire: wait for it with a deadline rather than a fixed
  // sleep (a loaded machine stops a VM late).
  await waitUntil(
    "the acquired sandboxes' timeouts stop them",
    () => acquired.every((sb) => !sb.running),
    120_000,
  );
  for (const sb of acquired) await sb.close();
  assert.deepEqual(childQemuPids(), []);
  assert.deepEqual(runDirEntries(dataDir), []);
});
