// The attack of review rev19 M1: without a token, ~1,100 TCP connections that each send part of
// a request's headers and then go silent filled the node's connection cap; every call (the
// operator's, /healthz) then failed for as long as they stayed, and none was reclaimed in
// 150 s. A connection with no complete request now waits at most `connectionWaitMs`, only so
// many may wait (per peer address and in all), and those have their own share of the cap.
// Here: a small node, a 1 s wait; the attack comes from other loopback addresses (127.0.0.x).
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { connect, type Socket } from "node:net";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { RunningNode } from "../../src/serve/index.js";
import { FakeHost } from "../helpers/fake-host.js";
import { startTestNode } from "../helpers/test-node.js";

const WAIT_MS = 1000;
const dataDir = mkdtempSync(join(tmpdir(), "wheellock-serve-half-open-"));
process.env.WHEELLOCK_DATA_DIR = dataDir;

let running: RunningNode;
let host: FakeHost;
let token: string;
let port: number;
before(async () => {
  host = new FakeHost(dataDir);
  ({ running, token } = await startTestNode(host, dataDir, {
    nodeId: "node-half-open",
    // Cap: 8 operations + 64 + 16 waiting = 88 connections.
    maxOperations: 8,
    connectionWaitMs: WAIT_MS,
    maxWaitingConnections: 16,
    maxWaitingConnectionsPerPeer: 4,
  }));
  port = Number(new URL(running.url).port);
});
after(async () => {
  await running.close();
  await host.close();
  rmSync(dataDir, { recursive: true, force: true });
});

interface Hostile {
  socket: Socket;
  /** When the node closed it (ms after the attack began), or undefined. */
  closedAt?: number;
}

/** `count` connections from `from`, each with half a request, then silent. */
async function attack(count: number, from: (i: number) => string): Promise<Hostile[]> {
  const start = Date.now();
  const hostile = Array.from({ length: count }, (_, i) => {
    const h: Hostile = {
      socket: connect({ host: "127.0.0.1", port, localAddress: from(i) }),
    };
    h.socket.on("error", () => undefined);
    h.socket.on("close", () => (h.closedAt ??= Date.now() - start));
    h.socket.on("end", () => (h.closedAt ??= Date.now() - start));
    h.socket.write("GET /healthz HTTP/1.1\r\nHost: x\r\n");
    return h;
  });
  await new Promise((resolve) => setTimeout(resolve, 200));
  return hostile;
}

async function operatorCall(): Promise<number> {
  const res = await fetch(`${running.url}/v1/info`, {
    headers: { authorization: `Bearer ${token}` },
    signal: AbortSignal.timeout(5000),
  });
  await res.arrayBuffer();
  return res.status;
}

async function allClosedBy(hostile: Hostile[], ms: number): Promise<void> {
  await new Promise((resolve) => setTimeout(resolve, ms));
  const open = hostile.filter((h) => h.closedAt === undefined).length;
  for (const h of hostile) h.socket.destroy();
  assert.equal(
    open,
    0,
    `${open} of ${hostile.length} hostile connections still open after ${ms} ms`,
  );
}

describe("half-sent requests cannot take the node offline (review rev19 M1)", () => {
  test("from one address: 120 connections, the operator's call still answers", async () => {
    const hostile = await attack(120, () => "127.0.0.2");
    try {
      assert.equal(await operatorCall(), 200);
      const health = await fetch(`${running.url}/healthz`, { signal: AbortSignal.timeout(5000) });
      assert.equal(health.status, 200);
      await allClosedBy(hostile, WAIT_MS + 1500);
    } finally {
      for (const h of hostile) h.socket.destroy();
    }
  });

  test("from 40 addresses: the operator's call still answers (the busiest peer gives way)", async () => {
    const hostile = await attack(160, (i) => `127.0.0.${10 + (i % 40)}`);
    try {
      for (let i = 0; i < 3; i++) assert.equal(await operatorCall(), 200);
      await allClosedBy(hostile, WAIT_MS + 1500);
    } finally {
      for (const h of hostile) h.socket.destroy();
    }
  });

  test("a refused WebSocket is closed by the node, not left half-open for the peer", async () => {
    const socket = connect({
      host: "127.0.0.1",
      port,
      localAddress: "127.0.0.3",
      allowHalfOpen: true,
    });
    const errors: string[] = [];
    socket.on("error", (err: NodeJS.ErrnoException) => errors.push(err.code ?? "error"));
    let answer = "";
    socket.on("data", (d: Buffer) => (answer += d.toString()));
    const ended = new Promise((resolve) => socket.once("end", resolve));
    socket.write(
      "GET /v1/sandboxes/vm-1@node-half-open/operation HTTP/1.1\r\nHost: x\r\n" +
        "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n" +
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
    );
    await ended;
    assert.match(answer, /^HTTP\/1.1 401/);
    // The peer keeps its side open and writes again: a node that still held the connection
    // would take the bytes; one that closed it answers with a reset.
    await new Promise((resolve) => setTimeout(resolve, 200));
    socket.write("x");
    await new Promise((resolve) => setTimeout(resolve, 500));
    socket.write("y");
    await new Promise((resolve) => setTimeout(resolve, 500));
    socket.destroy();
    assert.ok(errors.length > 0, "the node kept the refused connection open");
  });
});
