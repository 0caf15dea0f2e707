import assert from "node:assert/strict";
import { totalmem } from "node:os";
import { resolve as resolvePath } from "node:path";
import { describe, it } from "node:test";
import { ErrInvalidConfig } from "../../src/errors.js";
import { isSandboxId, resolveSandboxOptions, type SandboxOptions } from "../../src/config/index.js";

const NO_ENV = {};
const HOST_CPUS = 4;

/** Resolves with no host environment influence and a 4-CPU host. */
function resolve(opts: SandboxOptions) {
  return resolveSandboxOptions(opts, NO_ENV, HOST_CPUS, "vm-0123abcd");
}

/** Asserts resolving `opts` throws ErrInvalidConfig with exactly `message`. */
function rejects(opts: unknown, message: string, env: Record<string, string> = NO_ENV) {
  assert.throws(
    () => resolveSandboxOptions(opts as SandboxOptions, env, HOST_CPUS, "vm-0123abcd"),
    (err: unknown) => {
      assert.ok(err instanceof ErrInvalidConfig, `expected ErrInvalidConfig, got ${String(err)}`);
      assert.equal(err.code, "ErrInvalidConfig");
      assert.equal(err.message, message);
      return true;
    },
  );
}

describe("resolveSandboxOptions defaults", () => {
  it("fills every default from an empty options object", () => {
    assert.deepEqual(resolve({}), {
      id: "vm-0123abcd",
      image: "default",
      cpus: 1,
      vcpuCount: 1,
      memoryMb: 512,
      diskSizeMb: 5120,
      timeoutSeconds: 300,
      env: {},
      workdir: undefined,
      user: undefined,
      hostname: "vm-0123abcd",
      privileged: false,
      snapshot: true,
      accel: "auto",
      kernel: undefined,
      kernelIdentity: undefined,
      noNetwork: false,
      allowPrivateHosts: false,
      resolveOverrides: {},
      disks: [],
      networkIntercept: false,
      allowedHosts: [],
      denyAllHosts: false,
      secrets: [],
      networkHookCount: 0,
      policyScript: undefined,
      policyScriptSource: undefined,
      addHosts: {},
      dnsServers: [],
      upstreamCa: [],
      upstreamCaPems: [],
      allowTcp: [],
      approval: { enabled: false, timeoutMs: 30_000, maxPending: 16 },
      networkAudit: false,
      budgets: {},
      tracePropagation: false,
    });
  });

  it("generates a fresh vm-xxxxxxxx id and uses it as the hostname", () => {
    const a = resolveSandboxOptions({}, NO_ENV, HOST_CPUS);
    const b = resolveSandboxOptions({}, NO_ENV, HOST_CPUS);
    assert.ok(isSandboxId(a.id), a.id);
    assert.notEqual(a.id, b.id);
    assert.equal(a.hostname, a.id);
  });

  it("keeps explicit values", () => {
    const r = resolve({
      image: "busybox:1.36",
      cpus: 2.5,
      memoryMb: 1024,
      diskSizeMb: 64,
      timeoutSeconds: 0.5,
      env: { A: "1", EMPTY: "" },
      workdir: "/srv/app",
      user: "1000:1000",
      hostname: "box.example",
      privileged: true,
      accel: "tcg",
      kernel: "/boot/vmlinuz",
    });
    assert.equal(r.image, "busybox:1.36");
    assert.equal(r.cpus, 2.5);
    assert.equal(r.vcpuCount, 3);
    assert.equal(r.memoryMb, 1024);
    assert.equal(r.diskSizeMb, 64);
    assert.equal(r.timeoutSeconds, 0.5);
    assert.deepEqual(r.env, { A: "1", EMPTY: "" });
    assert.equal(r.workdir, "/srv/app");
    assert.equal(r.user, "1000:1000");
    assert.equal(r.hostname, "box.example");
    assert.equal(r.privileged, true);
    assert.equal(r.accel, "tcg");
    assert.equal(r.kernel, "/boot/vmlinuz");
  });

  it("accepts timeoutSeconds 0 as no deadline", () => {
    assert.equal(resolve({ timeoutSeconds: 0 }).timeoutSeconds, 0);
  });

  it("takes image, kernel and accel defaults from WHEELLOCK_* but lets options win", () => {
    const env = {
      WHEELLOCK_IMAGE: "debian:12",
      WHEELLOCK_KERNEL: "k/bzImage",
      WHEELLOCK_ACCEL: "kvm",
    };
    const fromEnv = resolveSandboxOptions({}, env, HOST_CPUS);
    assert.equal(fromEnv.image, "debian:12");
    assert.equal(fromEnv.kernel, resolvePath("k/bzImage"));
    assert.equal(fromEnv.accel, "kvm");
    const explicit = resolveSandboxOptions(
      { image: "x:1", kernel: "/k", accel: "tcg" },
      env,
      HOST_CPUS,
    );
    assert.equal(explicit.image, "x:1");
    assert.equal(explicit.kernel, "/k");
    assert.equal(explicit.accel, "tcg");
  });

  it("treats empty WHEELLOCK_* variables as unset", () => {
    const r = resolveSandboxOptions({}, { WHEELLOCK_IMAGE: "", WHEELLOCK_ACCEL: "" }, HOST_CPUS);
    assert.equal(r.image, "default");
    assert.equal(r.accel, "auto");
  });

  it("makes a relative kernel path absolute", () => {
    assert.equal(resolve({ kernel: "bzImage" }).kernel, resolvePath("bzImage"));
  });

  it("returns a frozen config whose env is a copy", () => {
    const env: Record<string, string> = { A: "1" };
    const r = resolve({ env });
    env.A = "changed";
    assert.equal(r.env.A, "1");
    assert.ok(Object.isFrozen(r));
    assert.ok(Object.isFrozen(r.env));
  });

  it("keeps an env variable named __proto__ as data", () => {
    const env = JSON.parse('{"__proto__": "x"}') as Record<string, string>;
    const r = resolve({ env });
    assert.deepEqual(Object.keys(r.env), ["__proto__"]);
    assert.equal(Object.getPrototypeOf(r.env), Object.prototype);
  });

  it("refuses memory above the host's RAM in one line (review rev19 L1)", () => {
    const hostMb = Math.floor(totalmem() / 2 ** 20);
    assert.throws(
      () => resolve({ memoryMb: 1e12 }),
      (e: Error) =>
        e instanceof ErrInvalidConfig &&
        e.message ===
          `invalid configuration: memoryMb 1000000000000 is more than the host's ${hostMb} MiB of memory`,
    );
    assert.equal(resolve({ memoryMb: 64 }).memoryMb, 64);
  });

  it("refuses a writable layer above 16 TiB in one line, not a raw Node range error", () => {
    assert.throws(
      () => resolve({ diskSizeMb: 99_999_999_999 }),
      (e: Error) =>
        e instanceof ErrInvalidConfig &&
        e.message ===
          "invalid configuration: diskSizeMb 99999999999 is more than 16777216 (16 TiB, the largest ext4 file system)",
    );
    assert.equal(resolve({ diskSizeMb: 16 * 1024 * 1024 }).diskSizeMb, 16 * 1024 * 1024);
  });

  it("allows ceil(cpus) equal to the host CPU count", () => {
    assert.equal(resolve({ cpus: 3.2 }).vcpuCount, 4);
    assert.equal(resolve({ cpus: 4 }).vcpuCount, 4);
  });
});

describe("resolveSandboxOptions rejections", () => {
  const cases: Array<[string, unknown, string]> = [
    ["negative cpus", { cpus: -1 }, "cpus must be a finite number > 0, got -1"],
    ["zero cpus", { cpus: 0 }, "cpus must be a finite number > 0, got 0"],
    ["NaN cpus", { cpus: NaN }, "cpus must be a finite number > 0, got NaN"],
    ["infinite cpus", { cpus: Infinity }, "cpus must be a finite number > 0, got Infinity"],
    ["string cpus", { cpus: "2" }, 'cpus must be a finite number > 0, got "2"'],
    ["cpus above host", { cpus: 4.01 }, "cpus 4.01 needs 5 vCPUs but the host has 4 CPUs"],
    ["fractional memory", { memoryMb: 512.5 }, "memoryMb must be an integer >= 64, got 512.5"],
    ["small memory", { memoryMb: 63 }, "memoryMb must be an integer >= 64, got 63"],
    ["small disk", { diskSizeMb: 0 }, "diskSizeMb must be an integer >= 64, got 0"],
    [
      "unsafe disk",
      { diskSizeMb: 2 ** 53 },
      "diskSizeMb must be an integer >= 64, got 9007199254740992",
    ],
    [
      "negative timeout",
      { timeoutSeconds: -1 },
      "timeoutSeconds must be a number of seconds from 0 (no deadline) to 2147483, got -1",
    ],
    [
      "infinite timeout",
      { timeoutSeconds: Infinity },
      "timeoutSeconds must be a number of seconds from 0 (no deadline) to 2147483, got Infinity",
    ],
    [
      "timeout beyond a Node timer",
      { timeoutSeconds: 2147484 },
      "timeoutSeconds must be a number of seconds from 0 (no deadline) to 2147483, got 2147484",
    ],
    [
      "empty image",
      { image: "" },
      'image must be a non-empty image reference without spaces, got ""',
    ],
    [
      "image with space",
      { image: "a b" },
      'image must be a non-empty image reference without spaces, got "a b"',
    ],
    ["relative workdir", { workdir: "app" }, 'workdir must be an absolute guest path, got "app"'],
    [
      "workdir with NUL",
      { workdir: "/a\0" },
      'workdir must be an absolute guest path, got "/a\\u0000"',
    ],
    ["empty kernel", { kernel: "" }, 'kernel must be a non-empty file path, got ""'],
    [
      "non-boolean privileged",
      { privileged: "yes" },
      'privileged must be true or false, got "yes"',
    ],
    ["unknown accel", { accel: "hvf" }, 'accel must be one of "auto", "kvm", "tcg", got "hvf"'],
    ["id set", { id: "vm-00000000" }, "id is assigned by wheellock and cannot be set"],
    ["options not an object", null, "sandbox options must be an object"],
    [
      "env not an object",
      { env: ["A=1"] },
      "env must be an object of name: value strings, got an array",
    ],
    [
      "env name with =",
      { env: { "A=B": "1" } },
      'env: environment variable name contains "=": "A=B"',
    ],
    ["empty env name", { env: { "": "1" } }, "env: environment variable name is empty"],
    [
      "env name with NUL",
      { env: { "A\0": "1" } },
      'env: environment variable name contains NUL: "A\\u0000"',
    ],
    [
      "env value with NUL",
      { env: { A: "x\0y" } },
      "env: environment variable A value contains NUL",
    ],
    ["env value not a string", { env: { A: 1 } }, "env.A must be a string, got 1"],
  ];
  for (const [name, opts, message] of cases) {
    it(`rejects ${name}`, () => rejects(opts, `invalid configuration: ${message}`));
  }

  it("rejects a bad WHEELLOCK_ACCEL, naming the variable", () => {
    rejects(
      {},
      'invalid configuration: WHEELLOCK_ACCEL must be one of "auto", "kvm", "tcg", got "fast"',
      {
        WHEELLOCK_ACCEL: "fast",
      },
    );
  });

  it("rejects a bad WHEELLOCK_IMAGE, naming the variable", () => {
    rejects(
      {},
      'invalid configuration: WHEELLOCK_IMAGE must be a non-empty image reference without spaces, got "a b"',
      {
        WHEELLOCK_IMAGE: "a b",
      },
    );
  });
});

describe("hostname", () => {
  const ok = ["a", "A1", "my-box", "x.y.z", "1a", "a".repeat(63), `${"a".repeat(62)}.b`];
  for (const hostname of ok) {
    it(`accepts ${JSON.stringify(hostname)}`, () =>
      assert.equal(resolve({ hostname }).hostname, hostname));
  }
  const bad = [
    "",
    "-a",
    "a-",
    "a..b",
    "a.",
    ".a",
    "a_b",
    "a b",
    "a".repeat(64),
    `${"a".repeat(63)}.b`,
    "ümlaut",
  ];
  for (const hostname of bad) {
    it(`rejects ${JSON.stringify(hostname)}`, () => {
      assert.throws(
        () => resolve({ hostname }),
        (err: unknown) =>
          err instanceof ErrInvalidConfig &&
          err.message.startsWith("invalid configuration: hostname must be an RFC 1123 hostname") &&
          err.message.endsWith(`got ${JSON.stringify(hostname)}`),
      );
    });
  }
});

describe("user", () => {
  const ok = [
    "0",
    "1000",
    "1000:1000",
    "root",
    "app:staff",
    "app:100",
    "100:staff",
    "_svc",
    "host$",
    "a.b-c",
    "4294967294",
  ];
  for (const user of ok) {
    it(`accepts ${JSON.stringify(user)}`, () => assert.equal(resolve({ user }).user, user));
  }
  const bad = [
    "",
    ":",
    "a:",
    ":a",
    "a:b:c",
    "4294967295",
    "bad name",
    "-x",
    "a/b",
    "x".repeat(33),
    " root",
  ];
  for (const user of bad) {
    it(`rejects ${JSON.stringify(user)}`, () =>
      rejects(
        { user },
        `invalid configuration: user must be a user as "uid", "uid:gid", "name" or "name:group", got ${JSON.stringify(user)}`,
      ));
  }
});

describe("mounts: how many", () => {
  it("at most 16, the agent's limit, refused before any VM starts", () => {
    const mounts = (n: number) =>
      Object.fromEntries(
        Array.from({ length: n }, (_, i) => [`/m${i}`, { type: "memory" as const }]),
      );
    assert.doesNotThrow(() => resolveSandboxOptions({ mounts: mounts(16) }));
    assert.throws(
      () => resolveSandboxOptions({ mounts: mounts(17) }),
      (err: unknown) =>
        err instanceof ErrInvalidConfig && /17 given, at most 16/.test((err as Error).message),
    );
  });
});

describe("options: unknown keys", () => {
  it("a misspelt option is refused, naming it, instead of being ignored", () => {
    for (const [opts, name] of [
      [{ disk: [] }, "disk"],
      [{ allowPrivateHost: true }, "allowPrivateHost"],
    ] as const) {
      assert.throws(
        () => resolveSandboxOptions(opts as unknown as SandboxOptions),
        (err: unknown) =>
          err instanceof ErrInvalidConfig &&
          (err as Error).message === `invalid configuration: unknown option "${name}"`,
      );
    }
    assert.doesNotThrow(() => resolveSandboxOptions({ disks: [], allowPrivateHosts: true }));
  });
});
