// Sandbox lifecycle: deadlines, close, and what is left behind afterwards.
import { test } from "node:test";
import assert from "node:assert/strict";
import { ErrTimeout, ErrVMNotRunning, Sandbox } from "../../src/index.js";
import { childQemuPids, isolateDataDir, runDirEntries } from "../helpers/vm.js";

const dataDir = isolateDataDir();

test("the sandbox timeout stops the VM and fails pending work with ErrTimeout", async () => {
  const sb = await Sandbox.create({ timeoutSeconds: 3 });
  const pending = sb.exec("sleep 60");
  await assert.rejects(pending, ErrTimeout);
  assert.equal(sb.running, false);
  await assert.rejects(sb.exec("true"), ErrTimeout);
  await sb.close();
  assert.deepEqual(childQemuPids(), []);
});

test("after close no QEMU process, socket or temp file remains", async () => {
  const sb = await Sandbox.create();
  assert.equal(childQemuPids().length, 1);
  assert.deepEqual(runDirEntries(dataDir), [sb.id]);
  await sb.close();
  await sb.close(); // idempotent
  assert.deepEqual(childQemuPids(), []);
  assert.deepEqual(runDirEntries(dataDir), []);
  await assert.rejects(sb.exec("true"), ErrVMNotRunning);
});

test("a VM that dies under a running command fails it with ErrVMNotRunning", async () => {
  const sb = await Sandbox.create({ privileged: true });
  const pending = sb.exec("sleep 60");
  await sb.exec("echo o > /proc/sysrq-trigger").catch(() => undefined);
  await assert.rejects(pending, ErrVMNotRunning);
  await sb.close();
  assert.deepEqual(childQemuPids(), []);
  assert.deepEqual(runDirEntries(dataDir), []);
});

test("await using closes the sandbox", async () => {
  let id = "";
  {
    await using sb = await Sandbox.create();
    id = sb.id;
    assert.equal((await sb.exec("echo hi")).stdout, "hi\n");
  }
  assert.ok(id.length > 0);
  assert.deepEqual(childQemuPids(), []);
  assert.deepEqual(runDirEntries(dataDir), []);
});
