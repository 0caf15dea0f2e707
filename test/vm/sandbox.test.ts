// The sandbox API's cases (test/helpers/sandbox-cases.ts), once against a VM in this process
// and once against a detached sandbox reached through its supervisor (`Sandbox.connect`), so
// the two implementations can never drift apart. One VM per kind (TCG boots are slow).
import { after, before, describe } from "node:test";
import { Sandbox, type SandboxApi } from "../../src/index.js";
import { isolateDataDir } from "../helpers/vm.js";
import { SANDBOX_OPTIONS, sandboxCases } from "../helpers/sandbox-cases.js";

isolateDataDir();

describe("in-process sandbox (Sandbox.create)", () => {
  let sb: SandboxApi | undefined;
  before(async () => {
    sb = await Sandbox.create(SANDBOX_OPTIONS);
  });
  after(async () => {
    await sb?.close();
  });
  sandboxCases(() => sb as SandboxApi);
});

describe("detached sandbox (Sandbox.startDetached + Sandbox.connect)", () => {
  let sb: SandboxApi | undefined;
  before(async () => {
    const started = await Sandbox.startDetached(SANDBOX_OPTIONS);
    sb = Sandbox.connect(started.id);
  });
  after(async () => {
    await sb?.close();
  });
  sandboxCases(() => sb as SandboxApi);
});
