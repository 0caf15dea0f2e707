import { test } from "node:test";
import assert from "node:assert/strict";
import {
  applyGuestNetworkSetup,
  caEnv,
  GUEST_CA_PATH,
} from "../../src/sandbox/guest-network-setup.js";
import { composeExecEnv } from "../../src/sandbox/exec-env.js";
import { SYSTEM_CA_BUNDLE_PATHS } from "../../src/net/index.js";
import { FrameType, NetworkSetupTag } from "../../src/channel/contract.js";
import type { NetworkSetupRequest } from "../../src/channel/index.js";
import { setup } from "./channel-setup.js";

const PEM = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----";

function recorder() {
  const sent: NetworkSetupRequest[] = [];
  return { sent, agent: { networkSetup: async (req: NetworkSetupRequest) => void sent.push(req) } };
}

test("intercept mode: the CA (newline-terminated), its path and the system bundles, in one request", async () => {
  const { sent, agent } = recorder();
  await applyGuestNetworkSetup(agent, { caPem: PEM, addHosts: { "db.local": "10.0.0.5" } });
  assert.deepEqual(sent, [
    {
      ca: { pem: `${PEM}\n`, path: GUEST_CA_PATH, bundlePaths: SYSTEM_CA_BUNDLE_PATHS },
      hostsLines: ["10.0.0.5\tdb.local"],
    },
  ]);
});

test("open mode sends only the hosts lines, and nothing at all without them", async () => {
  const { sent, agent } = recorder();
  await applyGuestNetworkSetup(agent, { caPem: undefined, addHosts: { a: "10.0.0.1" } });
  await applyGuestNetworkSetup(agent, { caPem: undefined, addHosts: {} });
  assert.deepEqual(sent, [{ hostsLines: ["10.0.0.1\ta"] }]);
});

test("on the wire: one NETWORK_SETUP round trip carrying every field", async () => {
  const { channel, guest } = setup();
  await applyGuestNetworkSetup(channel, {
    caPem: PEM,
    addHosts: { "db.local": "10.0.0.5", "cache.local": "10.0.0.6" },
  });
  assert.deepEqual(
    guest.requests.map((r) => r.type),
    [FrameType.NetworkSetup],
  );
  const rec = guest.requests[0]?.record;
  assert.equal(rec?.string(NetworkSetupTag.CaPem), `${PEM}\n`);
  assert.equal(rec?.string(NetworkSetupTag.CaPath), GUEST_CA_PATH);
  assert.deepEqual(rec?.strings(NetworkSetupTag.Bundle), SYSTEM_CA_BUNDLE_PATHS);
  assert.deepEqual(rec?.strings(NetworkSetupTag.HostsLine), [
    "10.0.0.5\tdb.local",
    "10.0.0.6\tcache.local",
  ]);
  channel.close();
});

test("network env (CA, placeholders) overrides image and sandbox env, not the command's", () => {
  const env = composeExecEnv({
    image: { SSL_CERT_FILE: "/image/ca", TOKEN: "image" },
    sandbox: { TOKEN: "config" },
    network: { ...caEnv(), TOKEN: "SANDBOX_SECRET_x" },
    command: { CURL_CA_BUNDLE: "/mine" },
    hostname: "h",
    tty: false,
  });
  assert.ok(env.includes(`SSL_CERT_FILE=${GUEST_CA_PATH}`));
  assert.ok(env.includes("TOKEN=SANDBOX_SECRET_x"));
  assert.ok(env.includes("CURL_CA_BUNDLE=/mine"));
});
