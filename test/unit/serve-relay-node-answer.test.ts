// A `stop` through a node: the node removes the sandbox, whose supervisor closes its side of
// the relayed connection first. The client must still get the node's answer (sent once the
// removal is done), not an early end it would take for "already stopped" while the node is
// still removing (a node killed then leaves the sandbox's record behind).
import { test } from "node:test";
import assert from "node:assert/strict";
import { once } from "node:events";
import { createServer, connect, type Socket } from "node:net";
import { join } from "node:path";
import { scratchDir } from "../helpers/vm.js";
import { encodeJson, MessageReader, Msg } from "../../src/remote/index.js";
import { gateRequests } from "../../src/serve/request-gate.js";
import { prepareRelay } from "../../src/serve/relay.js";

const dir = scratchDir("wl-relay-");

async function listening(path: string, onConn: (s: Socket) => void) {
  const server = createServer(onConn);
  server.listen(path);
  await once(server, "listening");
  return server;
}

test("the node's answer to stop reaches the client after the supervisor's side has ended", async () => {
  // The supervisor: ends every connection shortly after it opens (its stop disconnects all).
  const supervisor = await listening(join(dir, "sup.sock"), (s) => {
    s.resume();
    setTimeout(() => s.end(), 20);
  });
  let nodeSide: Socket | undefined;
  const front = await listening(join(dir, "front.sock"), (s) => (nodeSide = s));
  const client = connect(join(dir, "front.sock"));
  await once(front, "connection");
  const stream = nodeSide as Socket;
  const input = gateRequests(stream, {
    decide: () => ({
      // The removal takes longer than the supervisor's disconnect.
      answer: new Promise((resolve) =>
        setTimeout(() => resolve(encodeJson(Msg.Result, { removed: true })), 200),
      ),
    }),
    firstRequest: () => undefined,
  });
  const relay = prepareRelay(
    () =>
      new Promise((resolve) => {
        const s = connect(join(dir, "sup.sock"), () => resolve(s));
      }),
  );
  relay.serve(stream, input);
  const got: number[] = [];
  const reader = new MessageReader((m) => got.push(m.type));
  client.on("data", (c: Buffer) => reader.push(c));
  client.write(encodeJson(Msg.Request, { op: "stop" }));
  try {
    await once(client, "close");
    assert.deepEqual(got, [Msg.Result], "the node's RESULT, not an empty end");
  } finally {
    client.destroy();
    stream.destroy();
    supervisor.close();
    front.close();
  }
});
