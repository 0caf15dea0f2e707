// The data plane's exec request takes argv as a non-empty array of strings only, as REST's
// `command` does: a string (`"argv":"id"`) is not run through a shell, it is refused in one
// line and nothing starts (review rev19 L7).
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer, connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { encodeJson, MessageReader, Msg, serveConnection } from "../../src/remote/index.js";
import type { Message } from "../../src/remote/protocol.js";
import type { ExecProcess } from "../../src/sandbox/index.js";
import { FakeSandbox } from "../helpers/fake-sandbox.js";
import { waitUntil } from "../helpers/lifecycle.js";

const dir = mkdtempSync(join(tmpdir(), "wheellock-exec-argv-"));
process.on("exit", () => rmSync(dir, { recursive: true, force: true }));

class CountingSandbox extends FakeSandbox {
  spawned = 0;
  override spawn(command: string | readonly string[]): ExecProcess {
    this.spawned++;
    return super.spawn(command);
  }
}

test("exec argv that is not a non-empty array of strings: one-line ErrInvalidConfig, nothing runs", async () => {
  const sandbox = new CountingSandbox("sb");
  const path = join(dir, "argv.sock");
  const server = createServer((s) => serveConnection(sandbox, s));
  await new Promise<void>((resolve) => server.listen(path, resolve));
  try {
    for (const argv of ["id", [], ["id", 1], null, undefined, { 0: "id" }]) {
      const socket = connect(path);
      const got: Message[] = [];
      const reader = new MessageReader((msg) => got.push(msg));
      socket.on("data", (chunk: Buffer) => reader.push(chunk));
      socket.write(encodeJson(Msg.Request, { op: "exec", argv }));
      try {
        await waitUntil("an answer", () => got.some((m) => m.type === Msg.Error), 2000, 5);
      } finally {
        socket.destroy();
      }
      const error = JSON.parse(got.find((m) => m.type === Msg.Error)?.payload.toString() ?? "");
      assert.deepEqual(
        error,
        {
          code: "ErrInvalidConfig",
          message: "invalid configuration: exec argv must be a non-empty array of strings",
        },
        JSON.stringify(argv),
      );
    }
    assert.equal(sandbox.spawned, 0);
  } finally {
    server.close();
    server.unref();
  }
});
