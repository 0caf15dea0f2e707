// One message fewer per operation (issue 13's round trip): the server's OP_END ends an
// operation for both sides, so the client sends no OP_END of its own and its next REQUEST is
// served as it comes; `exec()` asks for the pid with the exit, so no STARTED is sent apart.
// Older peers keep working: a client answers an older server's OP_END (no flags) with its
// own, and a server drops an older client's OP_END. The node's gate sees where an operation
// ends in the sandbox side's bytes, so its counts do not wait for a client's OP_END.
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer, connect, type Server, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Duplex, PassThrough } from "node:stream";
import {
  encodeJson,
  encodeMessage,
  MessageReader,
  Msg,
  OpEndWatch,
  RemoteSandbox,
  serveConnection,
  type Connector,
} from "../../src/remote/index.js";
import type { Message } from "../../src/remote/protocol.js";
import { gateRequests, type GateState } from "../../src/serve/request-gate.js";
import { FakeSandbox } from "../helpers/fake-sandbox.js";
import { waitUntil } from "../helpers/lifecycle.js";

const dir = mkdtempSync(join(tmpdir(), "wheellock-op-end-"));
process.on("exit", () => rmSync(dir, { recursive: true, force: true }));

async function listen(path: string, onConnection: (socket: Socket) => void): Promise<Server> {
  const server = createServer(onConnection);
  await new Promise<void>((resolve) => server.listen(path, resolve));
  return server;
}

/** A raw client connection and every message the server sent on it. */
async function rawClient(path: string) {
  const socket = connect(path);
  const got: Message[] = [];
  const reader = new MessageReader((msg) => got.push(msg));
  socket.on("data", (chunk: Buffer) => reader.push(chunk));
  let closed = false;
  socket.once("close", () => (closed = true));
  await new Promise((resolve) => socket.once("connect", resolve));
  return { socket, got, closed: () => closed };
}

const until = (what: string, cond: () => boolean): Promise<void> => waitUntil(what, cond, 5000, 5);

const opEnds = (got: Message[]) => got.filter((m) => m.type === Msg.OpEnd).length;

test("a server's OP_END ends the operation both ways: late messages dropped, next REQUEST served", async () => {
  const path = join(dir, "new.sock");
  const server = await listen(path, (s) => serveConnection(new FakeSandbox("sb"), s));
  const c = await rawClient(path);
  try {
    c.socket.write(
      Buffer.concat([
        encodeJson(Msg.Request, { op: "exec", argv: ["echo", "hi"], pidWithExit: true }),
        encodeMessage(Msg.Stdin),
      ]),
    );
    await until("the exec ends", () => opEnds(c.got) === 1);
    const types = c.got.map((m) => m.type);
    assert.deepEqual(types, [Msg.Stdout, Msg.Exit, Msg.OpEnd], "no STARTED when pidWithExit");
    const exit = JSON.parse(c.got[1]?.payload.toString() ?? "") as Record<string, number>;
    assert.deepEqual(exit, { exitCode: 0, signal: 0, pid: 42, execId: 1 });
    assert.deepEqual([...(c.got[2]?.payload ?? [])], [1], "OP_END carries EndsBothWays");
    // A signal and stdin that crossed the EXIT, then the next REQUEST with no OP_END before it.
    c.socket.write(
      Buffer.concat([
        encodeJson(Msg.Signal, { signal: 15 }),
        encodeMessage(Msg.Stdin, "late"),
        encodeJson(Msg.Request, { op: "exec", argv: ["echo", "two"] }),
      ]),
    );
    await until("the second exec ends", () => opEnds(c.got) === 2);
    const second = c.got.slice(3);
    // STARTED and the output race in the fake sandbox: their order is not the point.
    assert.deepEqual(
      second.map((m) => m.type).sort((a, b) => a - b),
      [Msg.Stdout, Msg.Exit, Msg.Started, Msg.OpEnd],
      "spawn-style exec still gets STARTED",
    );
    assert.equal(second.find((m) => m.type === Msg.Stdout)?.payload.toString(), "two\n");
    // An older client's OP_END after the server's is dropped too.
    c.socket.write(
      Buffer.concat([encodeMessage(Msg.OpEnd), encodeJson(Msg.Request, { op: "allowed-hosts" })]),
    );
    await until("the third operation ends", () => opEnds(c.got) === 3);
    assert.equal(c.got.at(-2)?.type, Msg.Result);
    // A message no client sends within an operation, between operations: a protocol error.
    c.socket.write(encodeMessage(Msg.Stdout, "x"));
    await until("the connection closes", c.closed);
  } finally {
    c.socket.destroy();
    server.close();
  }
});

test("late client messages before any operation are a protocol error", async () => {
  const path = join(dir, "first.sock");
  const server = await listen(path, (s) => serveConnection(new FakeSandbox("sb"), s));
  const c = await rawClient(path);
  try {
    c.socket.write(encodeMessage(Msg.Stdin, "x"));
    await until("the connection closes", c.closed);
  } finally {
    server.close();
  }
});

/**
 * A server as they were before ENDS_BOTH_WAYS: OP_END without flags, and the next REQUEST
 * only after the client's OP_END (one that comes before it is lost: the client would hang).
 */
async function olderServer(path: string, received: number[]): Promise<Server> {
  return listen(path, (socket) => {
    let waitingForClientEnd = false;
    const reader = new MessageReader((msg) => {
      received.push(msg.type);
      if (waitingForClientEnd) {
        if (msg.type === Msg.OpEnd) waitingForClientEnd = false;
        return;
      }
      if (msg.type !== Msg.Request) return;
      waitingForClientEnd = true;
      socket.write(Buffer.concat([encodeJson(Msg.Result, []), encodeMessage(Msg.OpEnd)]));
    });
    socket.on("data", (chunk: Buffer) => reader.push(chunk));
    socket.on("error", () => undefined);
  });
}

/** A connector that keeps one connection for every operation, and counts connections. */
function keptConnector(path: string): Connector & { opened: () => number; close: () => void } {
  let kept: Duplex | undefined;
  let opened = 0;
  const sockets: Socket[] = [];
  const connectOnce = async (): Promise<Duplex> => {
    if (kept && !kept.destroyed) {
      const conn = kept;
      kept = undefined;
      return conn;
    }
    opened++;
    const socket = connect(path);
    sockets.push(socket);
    await new Promise((resolve) => socket.once("connect", resolve));
    return socket;
  };
  return Object.assign(connectOnce, {
    release: (conn: Duplex) => void (kept = conn),
    opened: () => opened,
    close: () => sockets.forEach((socket) => socket.destroy()),
  });
}

test("the client answers an older server's OP_END and sends none to a current one", async () => {
  const oldPath = join(dir, "old.sock");
  const received: number[] = [];
  const old = await olderServer(oldPath, received);
  const current = join(dir, "current.sock");
  const seen: number[] = [];
  const server = await listen(current, (s) => {
    const reader = new MessageReader((msg) => seen.push(msg.type));
    s.on("data", (chunk: Buffer) => reader.push(chunk));
    serveConnection(new FakeSandbox("sb"), s);
  });
  try {
    const toOld = keptConnector(oldPath);
    const oldClient = new RemoteSandbox("sb", toOld);
    await oldClient.allowedHosts();
    await oldClient.allowedHosts();
    await until("the client's second OP_END", () => received.length === 4);
    assert.deepEqual(received, [Msg.Request, Msg.OpEnd, Msg.Request, Msg.OpEnd]);
    assert.equal(toOld.opened(), 1, "one connection carried both operations");

    const toCurrent = keptConnector(current);
    const client = new RemoteSandbox("sb", toCurrent);
    assert.equal((await client.exec(["echo", "a"])).stdout, "a\n");
    const result = await client.exec(["echo", "b"]);
    assert.equal(result.stdout, "b\n");
    assert.equal(result.execId, 1, "the exec id came with the exit");
    const proc = client.spawn(["echo", "c"]);
    assert.equal(await proc.pid, 42);
    await proc.wait();
    assert.equal(toCurrent.opened(), 1, "one connection carried every operation");
    assert.equal(seen.filter((t) => t === Msg.OpEnd).length, 0, "the client sent no OP_END");
    assert.equal(seen.filter((t) => t === Msg.Request).length, 3);
    toOld.close();
    toCurrent.close();
  } finally {
    old.close();
    server.close();
  }
});

test("OpEndWatch finds every OP_END and its flags however the bytes are cut", () => {
  const stream = Buffer.concat([
    encodeMessage(Msg.Stdout, Buffer.alloc(300, 13)), // payload bytes that look like OP_END
    encodeJson(Msg.Exit, { exitCode: 0 }),
    encodeMessage(Msg.OpEnd, Buffer.from([1])),
    encodeJson(Msg.Result, {}),
    encodeMessage(Msg.OpEnd),
    encodeMessage(Msg.Stderr, Buffer.from([13, 0, 0, 0, 0])),
    encodeMessage(Msg.OpEnd, Buffer.from([1])),
  ]);
  for (const size of [1, 2, 3, 5, 6, 7, 64, stream.length]) {
    const flags: number[] = [];
    const watch = new OpEndWatch((f) => flags.push(f));
    for (let at = 0; at < stream.length; at += size) watch.push(stream.subarray(at, at + size));
    assert.deepEqual(flags, [1, 0, 1], `chunks of ${size}`);
  }
});

/** The client's end of a gate: what the client sends is pushed, what the node writes kept. */
function gateClient() {
  const written: Buffer[] = [];
  const client = new Duplex({
    read: () => undefined,
    write: (chunk: Buffer, _e, done) => {
      written.push(chunk);
      done();
    },
  });
  return { client, written };
}

test("the node's gate ends an operation at the sandbox side's OP_END when it ends both ways", async () => {
  const { client } = gateClient();
  const states: GateState[] = [];
  const passed: number[] = [];
  const input = gateRequests(client, {
    decide: (req) => req,
    firstRequest: () => undefined,
    stateChanged: (s) => states.push(s),
  });
  const reader = new MessageReader((msg) => passed.push(msg.type));
  input.on("data", (chunk: Buffer) => reader.push(chunk));
  const sandboxSide = new PassThrough();
  sandboxSide.resume();
  input.watchServer(sandboxSide);
  const tick = () => new Promise((r) => setImmediate(r));

  client.push(encodeJson(Msg.Request, { op: "allowed-hosts" }));
  await tick();
  assert.equal(states.at(-1), "busy");
  sandboxSide.write(Buffer.concat([encodeJson(Msg.Result, []), encodeMessage(Msg.OpEnd)]));
  await tick();
  assert.equal(states.at(-1), "busy", "an older sandbox side's OP_END waits for the client's");
  client.push(encodeMessage(Msg.OpEnd));
  await tick();
  assert.equal(states.at(-1), "idle");

  client.push(encodeJson(Msg.Request, { op: "allowed-hosts" }));
  await tick();
  assert.equal(states.at(-1), "busy");
  sandboxSide.write(
    Buffer.concat([encodeJson(Msg.Result, []), encodeMessage(Msg.OpEnd, Buffer.from([1]))]),
  );
  await tick();
  assert.equal(states.at(-1), "idle", "ended both ways: no client OP_END needed");
  // Late messages (an older client's OP_END, a crossed signal) go nowhere; the next REQUEST does.
  client.push(
    Buffer.concat([
      encodeMessage(Msg.OpEnd),
      encodeJson(Msg.Signal, { signal: 9 }),
      encodeJson(Msg.Request, { op: "allowed-hosts" }),
    ]),
  );
  await tick();
  assert.deepEqual(passed, [Msg.Request, Msg.OpEnd, Msg.Request, Msg.Request]);
  assert.equal(states.at(-1), "busy");
  client.destroy();
});
