import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { composeCommand, withEntrypointOverride } from "../../src/config/index.js";

describe("composeCommand (Docker ENTRYPOINT/CMD rules)", () => {
  it("uses the user's args when there is no image config", () => {
    assert.deepEqual(composeCommand(undefined, ["echo", "hi"]), ["echo", "hi"]);
    assert.deepEqual(composeCommand(undefined, []), []);
  });

  it("runs CMD when the user gives no args", () => {
    assert.deepEqual(composeCommand({ cmd: ["sh"] }, []), ["sh"]);
  });

  it("replaces CMD with the user's args", () => {
    assert.deepEqual(composeCommand({ cmd: ["sh"] }, ["ls", "/"]), ["ls", "/"]);
  });

  it("puts ENTRYPOINT before CMD, or before the user's args", () => {
    const image = {
      entrypoint: ["/docker-entrypoint.sh", "--"],
      cmd: ["nginx", "-g", "daemon off;"],
    };
    assert.deepEqual(composeCommand(image, []), [
      "/docker-entrypoint.sh",
      "--",
      "nginx",
      "-g",
      "daemon off;",
    ]);
    assert.deepEqual(composeCommand(image, ["bash"]), ["/docker-entrypoint.sh", "--", "bash"]);
  });

  it("runs ENTRYPOINT alone when there is neither CMD nor args", () => {
    assert.deepEqual(composeCommand({ entrypoint: ["/bin/app"] }, []), ["/bin/app"]);
  });

  it("is empty when nothing is set", () => {
    assert.deepEqual(composeCommand({}, []), []);
    assert.deepEqual(composeCommand({ entrypoint: [], cmd: [] }, []), []);
  });

  it("returns a new array and does not mutate its inputs", () => {
    const image = { entrypoint: ["e"], cmd: ["c"] };
    const args = ["a"];
    const out = composeCommand(image, args);
    out.push("x");
    assert.deepEqual(image, { entrypoint: ["e"], cmd: ["c"] });
    assert.deepEqual(args, ["a"]);
    const passthrough = composeCommand(undefined, args);
    assert.notEqual(passthrough, args);
    const cmdOnly = { cmd: ["c"] };
    assert.notEqual(composeCommand(cmdOnly, []), cmdOnly.cmd);
  });
});

describe("withEntrypointOverride (--entrypoint)", () => {
  it("replaces ENTRYPOINT with one word and drops CMD, keeping other fields", () => {
    const image = { entrypoint: ["/old"], cmd: ["arg"], user: "app" };
    const out = withEntrypointOverride(image, "/bin/sh");
    assert.deepEqual(out, { entrypoint: ["/bin/sh"], cmd: [], user: "app" });
    assert.deepEqual(composeCommand(out, []), ["/bin/sh"]);
    assert.deepEqual(composeCommand(out, ["-c", "id"]), ["/bin/sh", "-c", "id"]);
    assert.deepEqual(image, { entrypoint: ["/old"], cmd: ["arg"], user: "app" });
  });

  it("clears ENTRYPOINT for an empty string, so the user's args are the command", () => {
    const out = withEntrypointOverride({ entrypoint: ["/old"], cmd: ["arg"] }, "");
    assert.deepEqual(composeCommand(out, ["ls"]), ["ls"]);
    assert.deepEqual(composeCommand(out, []), []);
  });

  it("works without an image config", () => {
    assert.deepEqual(withEntrypointOverride(undefined, "/x"), { entrypoint: ["/x"], cmd: [] });
  });
});
