import { test } from "node:test";
import assert from "node:assert/strict";
import { WarmPool, MAX_POOL_SIZE, type PoolMember } from "../../src/sandbox/warm-pool.js";

class Fake implements PoolMember {
  running = true;
  closed = false;
  constructor(readonly n: number) {}
  async close(): Promise<void> {
    this.closed = true;
    this.running = false;
  }
}

/** A start function whose calls the test finishes by hand. */
function controlledStarts() {
  const pending: { resolve(m: Fake): void; reject(e: Error): void }[] = [];
  let count = 0;
  const start = () =>
    new Promise<Fake>((resolve, reject) => {
      count++;
      pending.push({ resolve, reject });
    });
  const tick = () => new Promise((r) => setImmediate(r));
  return {
    start,
    get started() {
      return count;
    },
    async finish(n = count): Promise<Fake> {
      const member = new Fake(n);
      pending.shift()!.resolve(member);
      await tick();
      return member;
    },
    async fail(message: string) {
      pending.shift()!.reject(new Error(message));
      await tick();
    },
    tick,
    /** Closes the pool, finishing any start it waits for. */
    async close(pool: WarmPool<Fake>) {
      const closing = pool.close();
      while (pending.length > 0) pending.shift()!.resolve(new Fake(-1));
      await closing;
    },
  };
}

test("fills to size one start at a time, hands out ready members at once and refills", async () => {
  const s = controlledStarts();
  const pool = new WarmPool(s.start, 2);
  await s.tick();
  assert.equal(s.started, 1, "starts run one after another");
  await s.finish();
  await s.finish();
  assert.equal(pool.available, 2);
  assert.equal(s.started, 2, "no start beyond the size");
  const a = await pool.acquire();
  assert.equal(a.n, 1);
  assert.equal(pool.available, 1);
  await s.tick();
  assert.equal(s.started, 3, "acquiring starts a replacement");
  await s.finish();
  assert.equal(pool.available, 2);
  await s.close(pool);
});

test("an acquire with nothing ready waits for the next start", async () => {
  const s = controlledStarts();
  const pool = new WarmPool(s.start, 1);
  const waiting = pool.acquire();
  await s.finish();
  assert.equal((await waiting).n, 1);
  await s.tick();
  assert.equal(s.started, 2, "and the pool refills behind it");
  await s.close(pool);
});

test("a failed start surfaces on acquire, once, and the pool does not spin", async () => {
  const s = controlledStarts();
  const pool = new WarmPool(s.start, 2);
  await s.fail("disk full");
  await s.tick();
  assert.equal(s.started, 1, "no retry until someone acquires");
  await assert.rejects(pool.whenFull(), /disk full/);
  await assert.rejects(pool.acquire(), /disk full/);
  await s.tick();
  assert.equal(s.started, 2, "acquire retries");
  await s.finish();
  assert.equal((await pool.acquire()).n, 2);
  await s.close(pool);
});

test("a waiting acquire gets the error of the start it waited for", async () => {
  const s = controlledStarts();
  const pool = new WarmPool(s.start, 1);
  await s.finish();
  await pool.acquire(); // the refill is now in flight
  const waiting = assert.rejects(pool.acquire(), /kernel panic/);
  await s.fail("kernel panic");
  await waiting;
  await s.close(pool);
});

test("members that died while idle are skipped and closed", async () => {
  const s = controlledStarts();
  const pool = new WarmPool(s.start, 2);
  const first = await s.finish();
  const second = await s.finish();
  first.running = false; // its VM crashed while it waited
  const got = await pool.acquire();
  assert.equal(got, second);
  assert.equal(first.closed, true);
  await s.close(pool);
});

test("close stops idle members and one still starting, rejects waiters, keeps acquired ones", async () => {
  const s = controlledStarts();
  const pool = new WarmPool(s.start, 2);
  await s.finish();
  const mine = await pool.acquire(); // refill: start 2 in flight
  const idle = await s.finish(); // ready: [2]; start 3 in flight
  const closing = pool.close();
  const late = await s.finish(); // start 3 ends after close: it must be closed, not kept
  await closing;
  assert.equal(idle.closed, true);
  assert.equal(late.closed, true);
  assert.equal(mine.closed, false, "an acquired member belongs to the caller");
  assert.equal(pool.available, 0);
  await assert.rejects(pool.acquire(), /closed/);
});

test("the size is bounded", () => {
  const start = async () => new Fake(0);
  for (const bad of [0, -1, 1.5, MAX_POOL_SIZE + 1, Number.NaN]) {
    assert.throws(() => new WarmPool(start, bad), /pool size/);
  }
});
