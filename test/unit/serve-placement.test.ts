// Placement over a node list: the two random choices pick the better node, they do not limit
// the search. Two dead (or full) nodes drawn failed the create although a listed node had room
// (review13 F15). And the bearer scheme is case-insensitive (RFC 7235; review13 F14).
import { test } from "node:test";
import assert from "node:assert/strict";
import { Sandbox } from "../../src/index.js";
import { placementOrder } from "../../src/sdk/placement.js";
import type { NodeInfo } from "../../src/serve/index.js";
import { fakeNodeForFile } from "../helpers/test-node.js";

const fx = fakeNodeForFile("node-placement");

test("after the two drawn nodes, every other node is tried", async () => {
  const urls = ["a", "b", "c", "d", "e"];
  const info = (url: string): Promise<NodeInfo> =>
    url === "a" || url === "b"
      ? Promise.reject(new Error("down"))
      : Promise.resolve({} as NodeInfo);
  // random 0: the first two are drawn.
  const order = await placementOrder(urls, info, () => 0);
  assert.deepEqual(order.slice(0, 2).sort(), ["a", "b"]);
  assert.deepEqual([...order].sort(), urls);
});

test("create goes to a listed node with room when the two drawn are unreachable", async () => {
  const random = Math.random;
  // The two drawn are the first two of the list: the dead ones.
  Math.random = () => 0;
  try {
    const sb = await Sandbox.create({
      remote: {
        url: ["http://127.0.0.1:1", "http://127.0.0.1:2", fx.node.running.url],
        token: fx.node.token,
      },
    });
    assert.match(sb.id, /@node-placement$/);
    assert.equal((await sb.exec(["echo", "placed"])).stdout, "placed\n");
    await sb.close();
  } finally {
    Math.random = random;
  }
});

test("a lower-case bearer scheme is accepted", async () => {
  const res = await fetch(`${fx.node.running.url}/v1/info`, {
    headers: { authorization: `bearer ${fx.node.token}` },
  });
  assert.equal(res.status, 200);
});
