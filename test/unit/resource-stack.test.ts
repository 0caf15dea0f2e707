// The one release list of a sandbox or supervisor: reverse order, every release attempted,
// late arrivals released at once, hand-over between owners, synchronous exit variants.
import assert from "node:assert/strict";
import { test } from "node:test";
import { ResourceStack, type ReleaseError } from "../../src/util/index.js";

test("releases in reverse order of acquisition, once", async () => {
  const order: string[] = [];
  const stack = new ResourceStack();
  stack.defer("a", () => void order.push("a"));
  stack.defer("b", async () => void order.push("b"));
  stack.defer("c", () => void order.push("c"));
  const [first, second] = [stack.release(), stack.release()];
  assert.equal(first, second);
  assert.deepEqual(await first, []);
  assert.deepEqual(order, ["c", "b", "a"]);
  assert.equal(stack.released, true);
});

test("a failing release does not stop the others, and is reported", async () => {
  const order: string[] = [];
  const reported: ReleaseError[] = [];
  const stack = new ResourceStack((err) => reported.push(err));
  stack.defer("disk", () => void order.push("disk"));
  stack.defer("run dir", () => {
    throw new Error("ENAMETOOLONG");
  });
  stack.defer("qemu", () => void order.push("qemu"));
  const failures = await stack.release();
  assert.deepEqual(order, ["qemu", "disk"]);
  assert.deepEqual(
    failures.map((f) => [f.resource, f.message]),
    [["run dir", "releasing run dir: ENAMETOOLONG"]],
  );
  assert.deepEqual(reported, failures);
});

test("a resource acquired after release started is released at once", async () => {
  const stack = new ResourceStack();
  await stack.release();
  let released = false;
  stack.defer("late", () => void (released = true));
  await new Promise((resolve) => setImmediate(resolve));
  assert.equal(released, true);
});

test("transferTo hands everything over in order; the giver then releases nothing", async () => {
  const order: string[] = [];
  const owner = new ResourceStack();
  owner.defer("run dir", () => void order.push("run dir"));
  const attempt = new ResourceStack();
  attempt.defer("network", () => void order.push("network"));
  attempt.defer("qemu", () => void order.push("qemu"));
  attempt.transferTo(owner);
  assert.deepEqual(await attempt.release(), []);
  assert.deepEqual(order, []);
  await owner.release();
  assert.deepEqual(order, ["qemu", "network", "run dir"]);
});

test("releaseAtExit runs only the synchronous variants, newest first", () => {
  const order: string[] = [];
  const stack = new ResourceStack();
  stack.defer(
    "a",
    () => undefined,
    () => void order.push("a"),
  );
  stack.defer("b", () => undefined);
  stack.defer(
    "c",
    () => undefined,
    () => {
      order.push("c");
      throw new Error("best effort");
    },
  );
  stack.releaseAtExit();
  assert.deepEqual(order, ["c", "a"]);
});
