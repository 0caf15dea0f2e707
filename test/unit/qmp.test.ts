// QmpClient.attach writes the capabilities negotiation and the caller's commands in one go and
// reads their replies in order; a fake monitor on a socket pair plays QEMU.
import { test } from "node:test";
import assert from "node:assert/strict";
import { createServer, createConnection, type Socket } from "node:net";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { QmpClient } from "../../src/vmm/qmp.js";
import { startIncoming } from "../../src/vmm/save-state.js";

const dir = mkdtempSync(join(tmpdir(), "wl-qmp-"));
process.on("exit", () => rmSync(dir, { recursive: true, force: true }));
let n = 0;

/**
 * A fake monitor: records every command and answers each with `reply(command)` (an event first,
 * which replies must skip). It holds the greeting back until `greetAfterCommands` commands have
 * arrived, or `greetAfterMs` passes: a client that waits for the greeting before writing gets it
 * only after that long, with fewer commands in `seenBeforeGreeting`. (A fixed short delay made
 * this a race on a loaded machine: the client's writes could land after it.)
 */
async function fakeMonitor(
  reply: (command: string) => Record<string, unknown>,
  greetAfterCommands = 0,
  greetAfterMs = 5_000,
): Promise<{ client: Socket; seenBeforeGreeting: Promise<string[]>; commands: string[] }> {
  const path = join(dir, `qmp-${n++}.sock`);
  const commands: string[] = [];
  let resolveSeen: (c: string[]) => void = () => undefined;
  const seenBeforeGreeting = new Promise<string[]>((r) => (resolveSeen = r));
  const server = createServer((qemu) => {
    let closed = false;
    qemu.on("close", () => (closed = true));
    qemu.on("error", () => undefined);
    let buf = "";
    let greeted = false;
    const greet = (): void => {
      if (greeted) return;
      greeted = true;
      clearTimeout(fallback);
      resolveSeen([...commands]);
      qemu.write(`${JSON.stringify({ QMP: { version: {}, capabilities: [] } })}\n`);
      // Answer in order once the greeting is out, as QEMU does.
      const answer = (i: number): void => {
        if (closed) return;
        if (i >= commands.length) return void setTimeout(() => answer(i), 5);
        qemu.write(`${JSON.stringify({ event: "NOISE" })}\n`);
        qemu.write(`${JSON.stringify(reply(commands[i]!))}\n`);
        answer(i + 1);
      };
      answer(0);
    };
    const fallback = setTimeout(greet, greetAfterMs);
    qemu.on("data", (chunk) => {
      buf += chunk.toString();
      for (let nl = buf.indexOf("\n"); nl >= 0; nl = buf.indexOf("\n")) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        commands.push((JSON.parse(line) as { execute: string }).execute);
      }
      if (commands.length >= greetAfterCommands) greet();
    });
    if (greetAfterCommands === 0) greet();
  });
  await new Promise<void>((r) => server.listen(path, r));
  const client = createConnection(path);
  await new Promise<void>((r) => client.once("connect", r));
  server.close();
  return { client, seenBeforeGreeting, commands };
}

test("attach sends capabilities and the commands before the greeting, in order", async () => {
  const monitor = await fakeMonitor(() => ({ return: {} }), 3);
  const qmp = await QmpClient.attach(monitor.client, [
    { command: "first", args: { a: 1 } },
    { command: "second" },
  ]);
  qmp.close();
  assert.deepEqual(await monitor.seenBeforeGreeting, ["qmp_capabilities", "first", "second"]);
});

test("a failed command throws with its name and QEMU's description", async () => {
  const monitor = await fakeMonitor((command) =>
    command === "second"
      ? { error: { class: "GenericError", desc: "no such thing" } }
      : { return: {} },
  );
  await assert.rejects(
    QmpClient.attach(monitor.client, [{ command: "first" }, { command: "second" }]),
    /QMP second: no such thing/,
  );
});

test("startIncoming sets x-ignore-shared and then loads from the inherited fd", async () => {
  const monitor = await fakeMonitor(() => ({ return: {} }));
  // The monitor stays open for the sandbox's life (checkpoints): the caller closes it.
  (await startIncoming(monitor.client)).close();
  assert.deepEqual(monitor.commands, [
    "qmp_capabilities",
    "migrate-set-capabilities",
    "migrate-incoming",
  ]);
});

test("a monitor that closes before answering fails the attach", async () => {
  const path = join(dir, "closing.sock");
  const server = createServer((qemu) => qemu.destroy());
  await new Promise<void>((r) => server.listen(path, r));
  const client = createConnection(path);
  await new Promise<void>((r) => client.once("connect", r));
  server.close();
  // However it ends (EPIPE on the write, or the closed socket), attach must not hang or succeed.
  await assert.rejects(QmpClient.attach(client, [{ command: "first" }]));
});
