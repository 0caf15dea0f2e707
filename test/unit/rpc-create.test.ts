// The `create` payload (reference/matchlock-rpc.md §8): every key mapped onto wheellock's
// options, the reference's defaults, merge rule, validation order and messages.
import assert from "node:assert/strict";
import { test } from "node:test";
import { mapCreatePayload, RpcCode } from "../../src/rpc/index.js";
import { startSession } from "./rpc-client.js";

function invalid(params: unknown): string {
  try {
    mapCreatePayload(params);
  } catch (err) {
    assert.equal((err as { code: number }).code, RpcCode.InvalidParams);
    return (err as Error).message;
  }
  assert.fail(`accepted ${JSON.stringify(params)}`);
}

const IMG = { image: "alpine:latest" };

test("image is required, id cannot be set, resources merge per field over the defaults", () => {
  assert.equal(invalid({}), "image is required (e.g., alpine:latest)");
  assert.equal(invalid(undefined), "image is required (e.g., alpine:latest)");
  assert.equal(invalid({ image: "  " }), "image is required (e.g., alpine:latest)");
  assert.equal(invalid({ ...IMG, id: "vm-12345678" }), "id is internal-only and cannot be set");
  assert.deepEqual(mapCreatePayload(IMG).options, {
    image: "alpine:latest",
    cpus: 1,
    memoryMb: 512,
    diskSizeMb: 5120,
    timeoutSeconds: 300,
  });
  const r = mapCreatePayload({
    ...IMG,
    resources: { cpus: 0.5, memory_mb: 0, disk_size_mb: 1024, timeout_seconds: 60 },
  });
  assert.deepEqual(
    [r.options.cpus, r.options.memoryMb, r.options.diskSizeMb, r.options.timeoutSeconds],
    [0.5, 512, 1024, 60],
  );
  assert.equal(
    invalid({ ...IMG, resources: { memory_mb: 1.5 } }),
    "resources.memory_mb must be a whole number",
  );
  assert.equal(invalid({ ...IMG, resources: { cpus: "2" } }), "resources.cpus must be a number");
  // A negative value is a client error, not "use the default" (review rev19 L5): -32602 from
  // the payload's own check, before the image is looked at.
  assert.equal(
    invalid({ ...IMG, resources: { memory_mb: -5 } }),
    "resources.memory_mb must be >= 0 (0 or absent: the default 512), got -5",
  );
  assert.equal(
    invalid({ image: "no-such-registry.invalid/x:1", resources: { cpus: -1 } }),
    "resources.cpus must be >= 0 (0 or absent: the default 1), got -1",
  );
});

test("privileged, launch_entrypoint, env, image_config and extra_disks", () => {
  const r = mapCreatePayload({
    ...IMG,
    privileged: true,
    launch_entrypoint: true,
    env: { A: "1", SHARED: "env" },
    image_config: {
      user: "app",
      working_dir: "/srv",
      entrypoint: ["/bin/run"],
      cmd: [],
      env: { SHARED: "image", B: "2" },
    },
    extra_disks: [{ host_path: "/tmp/d.ext4", guest_mount: "/data", readonly: true }],
  });
  assert.equal(r.options.privileged, true);
  assert.equal(r.launchEntrypoint, true);
  assert.deepEqual(r.options.env, { SHARED: "env", B: "2", A: "1" });
  assert.equal(r.options.user, "app");
  assert.equal(r.options.workdir, "/srv");
  assert.deepEqual([r.entrypoint, r.cmd], [["/bin/run"], []]);
  assert.deepEqual(r.options.disks, [
    { hostPath: "/tmp/d.ext4", guestPath: "/data", readonly: true },
  ]);
  const plain = mapCreatePayload({ ...IMG, image_config: { entrypoint: null } });
  assert.deepEqual(
    [plain.entrypoint, plain.cmd, plain.launchEntrypoint],
    [undefined, undefined, false],
  );
  assert.equal(
    invalid({ ...IMG, extra_disks: [{ guest_mount: "/d" }] }),
    "extra_disks[0].host_path is required",
  );
});

test("network: the merge rule for block_private_ips, allow-list, interception, DNS, hostname", () => {
  assert.equal(mapCreatePayload(IMG).options.allowPrivateHosts, undefined);
  // A network object without block_private_ips turns private-address blocking off.
  assert.equal(mapCreatePayload({ ...IMG, network: {} }).options.allowPrivateHosts, true);
  const n = mapCreatePayload({
    ...IMG,
    network: {
      allowed_hosts: [" api.x.com ", "*.y.com", ""],
      block_private_ips: true,
      intercept: false,
      dns_servers: ["10.1.1.1"],
      hostname: "box",
      mtu: 1400,
      policy_script: "/tmp/p.mjs",
    },
  }).options;
  assert.deepEqual(
    [
      n.allowPrivateHosts,
      n.allowedHosts,
      n.networkIntercept,
      n.dnsServers,
      n.hostname,
      n.policyScript,
    ],
    [false, ["api.x.com", "*.y.com"], undefined, ["10.1.1.1"], "box", "/tmp/p.mjs"],
  );
  assert.equal(
    mapCreatePayload({ ...IMG, network: { intercept: true } }).options.networkIntercept,
    true,
  );
  assert.equal(
    mapCreatePayload({ ...IMG, network: { interception: {} } }).options.networkIntercept,
    true,
  );
});

test("network: add_hosts go to /etc/hosts and to the proxy's resolver (the gateway is the host)", () => {
  const n = mapCreatePayload({
    ...IMG,
    network: {
      add_hosts: [
        { host: "db", ip: "192.168.1.9" },
        { host: "api.test", ip: "10.0.2.2" },
        { host: "self", ip: "127.0.0.1" },
      ],
    },
  }).options;
  assert.deepEqual(n.addHosts, { db: "192.168.1.9", "api.test": "10.0.2.2", self: "127.0.0.1" });
  assert.deepEqual(n.resolveOverrides, { db: "192.168.1.9", "api.test": "127.0.0.1" });
  assert.match(
    invalid({ ...IMG, network: { add_hosts: [{ host: "v6", ip: "::1" }] } }),
    /add_hosts\[0\]\.ip must be an IPv4 address/,
  );
  const off = mapCreatePayload({
    ...IMG,
    network: {
      no_network: true,
      add_hosts: [{ host: "db", ip: "127.0.0.1" }],
      dns_servers: ["1.1.1.1"],
      hostname: "h",
    },
  });
  assert.deepEqual(off.options, {
    ...mapCreatePayload(IMG).options,
    hostname: "h",
    noNetwork: true,
  });
  assert.deepEqual(off.guestHosts, { db: "127.0.0.1" });
});

test("no_network cannot be combined with allow-list, secrets, intercept or interception (in that order)", () => {
  const base = {
    no_network: true,
    allowed_hosts: ["a"],
    secrets: { K: { value: "v", hosts: ["a"] } },
    intercept: true,
    interception: {},
  };
  const msg = (f: string) =>
    `invalid configuration: network.no_network cannot be combined with network.${f}`;
  assert.equal(invalid({ ...IMG, network: base }), msg("allowed_hosts"));
  assert.equal(invalid({ ...IMG, network: { ...base, allowed_hosts: [] } }), msg("secrets"));
  assert.equal(
    invalid({ ...IMG, network: { ...base, allowed_hosts: [], secrets: {} } }),
    msg("intercept"),
  );
  assert.equal(
    invalid({ ...IMG, network: { no_network: true, interception: { rules: [] } } }),
    msg("interception"),
  );
});

test("secrets: value and hosts, the optional placeholder, wheellock's extension keys; no host-less secret", () => {
  const s = mapCreatePayload({
    ...IMG,
    network: {
      secrets: {
        TOKEN: { value: "real", hosts: ["api.x.com"] },
        KEY: {
          value: "k",
          placeholder: "PLACEHOLDER_KEY_1",
          hosts: ["api.y.com:8443"],
          headers: ["X-Api-Key"],
          in_query: true,
          allow_http: true,
        },
      },
    },
  }).options.secrets;
  assert.deepEqual(s, {
    TOKEN: { value: "real", hosts: ["api.x.com"] },
    KEY: {
      value: "k",
      hosts: ["api.y.com:8443"],
      placeholder: "PLACEHOLDER_KEY_1",
      headers: ["X-Api-Key"],
      inQuery: true,
      allowHttp: true,
    },
  });
  assert.equal(
    invalid({ ...IMG, network: { secrets: { K: { value: "v", hosts: [] } } } }),
    "network.secrets.K.hosts must name at least one host",
  );
  assert.equal(
    invalid({ ...IMG, network: { secrets: { K: { value: "v", hosts: ["a"], header: ["X"] } } } }),
    'network.secrets.K: unknown field "header"',
  );
});

test("network rules: normalised like the reference; block rules drop changes; no-op rules dropped", () => {
  const rules = mapCreatePayload({
    ...IMG,
    network: {
      interception: {
        callback_socket: "/tmp/hook.sock",
        rules: [
          {
            name: "deny",
            phase: "BEFORE",
            hosts: ["evil.com"],
            action: "block",
            set_headers: { a: "b" },
            callback_id: "x",
          },
          { name: "noop", action: "allow" },
          {
            name: "hdr",
            methods: ["post", " "],
            path: "/v1/*",
            set_headers: { "x-trace-id": "1" },
            delete_headers: ["cookie"],
            set_response_headers: { ignored: "x" },
          },
          {
            name: "resp",
            phase: "after",
            set_response_headers: { "x-seen": "1" },
            body_replacements: [{ find: "a", replace: "b" }, { find: "" }],
            set_headers: { ignored: "y" },
          },
          { name: "cb", phase: "after", callback_id: "network_hook_5", timeout_ms: 250 },
        ],
      },
    },
  }).options.networkHooks;
  assert.equal(rules?.length, 4);
  assert.deepEqual(rules?.[0], {
    name: "deny",
    phase: "before",
    hosts: ["evil.com"],
    action: "block",
  });
  assert.deepEqual(rules?.[1], {
    name: "hdr",
    phase: "before",
    methods: ["POST"],
    path: "/v1/*",
    setHeaders: { "X-Trace-Id": "1" },
    deleteHeaders: ["Cookie"],
  });
  assert.deepEqual(rules?.[2], {
    name: "resp",
    phase: "after",
    setResponseHeaders: { "X-Seen": "1" },
    bodyReplacements: [{ find: "a", replace: "b" }],
  });
  const cb = rules?.[3] as { hook?: unknown; timeoutMs?: number; phase?: string };
  assert.equal(typeof cb.hook, "function");
  assert.equal(cb.phase, "after");
  assert.equal(cb.timeoutMs, 1250);
  // A callback rule with no socket to call does nothing, as in the reference.
  const none = mapCreatePayload({
    ...IMG,
    network: { interception: { rules: [{ callback_id: "network_hook_1" }] } },
  });
  assert.equal(none.options.networkHooks, undefined);
});

test("vfs: the reference's checks and messages; mounts, direct_mounts, interception rules", () => {
  const p = "invalid configuration: ";
  assert.equal(
    invalid({ ...IMG, vfs: { workspace: "/w" } }),
    `${p}vfs.workspace requires at least one vfs.mounts entry`,
  );
  assert.equal(
    invalid({ ...IMG, vfs: { mounts: { "/w": { type: "memory" } } } }),
    `${p}vfs.workspace is required when vfs.mounts is set`,
  );
  assert.equal(
    invalid({ ...IMG, vfs: { interception: { emit_events: true } } }),
    `${p}vfs.interception requires at least one vfs.mounts entry`,
  );
  assert.match(
    invalid({ ...IMG, vfs: { workspace: "/w s", mounts: { "/w s": { type: "memory" } } } }),
    /^invalid configuration: vfs\.workspace: invalid guest mount path/,
  );
  assert.equal(
    invalid({ ...IMG, vfs: { workspace: "/w", mounts: { "/other": { type: "memory" } } } }),
    `${p}guest path must be within workspace: "/other" not in "/w"`,
  );
  assert.match(
    invalid({ ...IMG, vfs: { workspace: "/w", mounts: { "/w": { type: "overlay" } } } }),
    /host_path is required for overlay mounts/,
  );
  assert.match(
    invalid({
      ...IMG,
      vfs: { workspace: "/w", mounts: { "/w": { type: "overlay", host_path: "/tmp", upper: {} } } },
    }),
    /upper\/lower overlay config is not supported/,
  );
  assert.match(
    invalid({ ...IMG, vfs: { workspace: "/w", mounts: { "/w": { type: "tmpfs" } } } }),
    /type must be/,
  );
  const v = mapCreatePayload({
    ...IMG,
    vfs: {
      workspace: "/workspace",
      mounts: {
        "/workspace": { type: "memory", host_path: "/ignored" },
        "/workspace/src": { type: "host_fs", host_path: "/tmp", readonly: true },
        "/workspace/o": { type: "overlay", host_path: "/tmp" },
      },
      direct_mounts: { "/data": { host_path: "/tmp", readonly: true } },
      interception: {
        rules: [
          {
            name: "no-rm",
            ops: ["remove", "REMOVE_ALL"],
            path: "/workspace/keep/*",
            action: "block",
          },
          { ops: ["write"], action: "allow" },
          { phase: "after", action: "block" },
          { ops: ["close"], action: "block" },
          { action: "mutate_write" },
        ],
      },
    },
  });
  assert.deepEqual(v.options.mounts, {
    "/workspace": { type: "memory" },
    "/workspace/src": { type: "host_fs", hostPath: "/tmp", readonly: true },
    "/workspace/o": { type: "overlay", hostPath: "/tmp" },
    "/data": { type: "host_fs", hostPath: "/tmp", readonly: true },
  });
  assert.deepEqual(v.options.fileHooks, [
    {
      name: "no-rm",
      ops: ["unlink", "rmdir"],
      path: "/workspace/keep/*",
      action: "block",
      errno: "EPERM",
    },
  ]);
  assert.equal(v.workspace, "/workspace");
  assert.equal(v.fileEvents, true);
  const quiet = mapCreatePayload({
    ...IMG,
    vfs: {
      workspace: "/w",
      mounts: { "/w": { type: "memory" } },
      interception: { rules: [{ action: "mutate_write" }] },
    },
  });
  assert.equal(quiet.fileEvents, false);
});

test("wheellock's own checks answer -32602 naming the payload's field, before any boot", async () => {
  const h = startSession();
  const r = await h.client.call("create", { ...IMG, resources: { memory_mb: 16 } });
  assert.equal(r.error?.code, RpcCode.InvalidParams);
  assert.match(
    r.error?.message ?? "",
    /^invalid configuration: resources\.memory_mb must be an integer >= 64/,
  );
  const s = await h.client.call("create", {
    ...IMG,
    network: { secrets: { K: { value: "v", hosts: ["a.com"], placeholder: "short" } } },
  });
  assert.match(s.error?.message ?? "", /network\.secrets\.K\.placeholder must be 8 to 256/);
  const rule = await h.client.call("create", {
    ...IMG,
    network: { interception: { rules: [{ set_headers: { Host: "x" } }] } },
  });
  assert.equal(rule.error?.code, RpcCode.InvalidParams);
  assert.match(rule.error?.message ?? "", /Host.*managed by the proxy/);
  assert.equal(h.fake.created.length, 0);
});

test("the Python SDK's payload (resources omitted, spaces, action always sent) creates a VM", async () => {
  const h = startSession();
  h.client.write(
    '{"jsonrpc": "2.0", "method": "create", "id": 1, "params": {"image": "alpine:latest", "vfs": {"mounts": {"/workspace": {"type": "memory"}}, "workspace": "/workspace"}, "launch_entrypoint": true, "network": {"allowed_hosts": [], "block_private_ips": true, "interception": {"rules": [{"action": "allow", "phase": "before"}]}}}}\n',
  );
  const r = await h.client.response(1);
  assert.deepEqual(r.result, { id: "vm-fake0001" });
  assert.equal(h.fake.options[0]?.timeoutSeconds, 300);
  assert.equal(h.fake.options[0]?.networkIntercept, true);
});
