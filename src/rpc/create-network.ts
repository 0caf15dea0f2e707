/**
 * `create`'s `network` object (reference/matchlock-rpc.md §8.1-§8.3) as SandboxOptions. The
 * reference's merge rule: without a `network` object private addresses are blocked; a
 * `network` object replaces that default, so one without `block_private_ips: true` allows them.
 * Secrets follow wheellock's model (TLS only, port 443 unless a host says otherwise, only into
 * Authorization / Proxy-Authorization and the headers a secret lists); docs/RPC.md has the map.
 */
import { isIPv4 } from "node:net";
import type { SandboxOptions, SecretOption } from "../config/index.js";
import { defaultAddressing, formatIpv4 } from "../net/index.js";
import { mapNetworkRules } from "./create-rules.js";
import {
  booleanField,
  numberField,
  objectField,
  stringField,
  stringListField,
  type Params,
} from "./params.js";
import { RpcCode, RpcError } from "./wire.js";

export interface NetworkMapping {
  readonly options: SandboxOptions;
  /** `add_hosts` with `no_network`: wheellock writes them into /etc/hosts itself. */
  readonly guestHosts: Readonly<Record<string, string>>;
}

function invalid(message: string): RpcError {
  return new RpcError(RpcCode.InvalidParams, message);
}

function conflict(field: string): RpcError {
  return invalid(
    `invalid configuration: network.no_network cannot be combined with network.${field}`,
  );
}

const GATEWAY_IP = formatIpv4(defaultAddressing().gatewayIp);

function addHosts(n: Params): Array<[string, string]> {
  const value = n.add_hosts;
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value)) throw invalid("network.add_hosts must be an array");
  return value.map((entry: unknown, i): [string, string] => {
    const where = `network.add_hosts[${i}]`;
    const e = objectField({ e: entry }, "e", where);
    if (e === undefined) throw invalid(`${where} must be a JSON object`);
    const host = stringField(e, "host", `${where}.host`).trim();
    const ip = stringField(e, "ip", `${where}.ip`).trim();
    if (host === "" || /[\s:]/.test(host))
      throw invalid(`${where}.host: invalid add-host hostname`);
    if (!isIPv4(ip))
      throw invalid(`${where}.ip must be an IPv4 address (the guest network is IPv4)`);
    return [host, ip];
  });
}

/**
 * How the host reaches what the guest was told: the gateway is the host's own loopback, a
 * guest loopback address is nothing the host proxy can dial (no override), others as given.
 */
function hostView(ip: string): string | undefined {
  if (ip === GATEWAY_IP) return "127.0.0.1";
  return ip.startsWith("127.") ? undefined : ip;
}

const SECRET_KEYS = new Set(["value", "placeholder", "hosts", "headers", "in_query", "allow_http"]);

function secrets(n: Params): Record<string, SecretOption> {
  const value = objectField(n, "secrets", "network.secrets");
  const out: Record<string, SecretOption> = {};
  for (const [name, raw] of Object.entries(value ?? {})) {
    const where = `network.secrets.${name}`;
    const s = objectField({ s: raw }, "s", where);
    if (s === undefined) throw invalid(`${where} must be a JSON object`);
    // A misspelt extension key would silently change where the value may go.
    const unknown = Object.keys(s).find((k) => !SECRET_KEYS.has(k));
    if (unknown !== undefined) throw invalid(`${where}: unknown field ${JSON.stringify(unknown)}`);
    const hosts = stringListField(s, "hosts", `${where}.hosts`)
      .map((h) => h.trim())
      .filter(Boolean);
    // The reference sends a secret with no hosts to every host; wheellock never does.
    if (hosts.length === 0) throw invalid(`${where}.hosts must name at least one host`);
    const placeholder = stringField(s, "placeholder", `${where}.placeholder`);
    const headers = stringListField(s, "headers", `${where}.headers`);
    out[name] = {
      value: stringField(s, "value", `${where}.value`),
      hosts,
      ...(placeholder !== "" ? { placeholder } : {}),
      ...(headers.length > 0 ? { headers } : {}),
      ...(booleanField(s, "in_query", `${where}.in_query`) ? { inQuery: true } : {}),
      ...(booleanField(s, "allow_http", `${where}.allow_http`) ? { allowHttp: true } : {}),
    };
  }
  return out;
}

function trimmed(list: string[]): string[] {
  return list.map((h) => h.trim()).filter((h) => h !== "");
}

/** The network options; `undefined` (no `network` key) is the reference's default. */
export function mapNetwork(n: Params | undefined): NetworkMapping {
  if (n === undefined) return { options: {}, guestHosts: {} };
  const allowed = trimmed(stringListField(n, "allowed_hosts", "network.allowed_hosts"));
  const secretMap = secrets(n);
  const intercept = booleanField(n, "intercept", "network.intercept");
  const interception = objectField(n, "interception", "network.interception");
  const hosts = addHosts(n);
  const hostname = stringField(n, "hostname", "network.hostname").trim();
  const dns = trimmed(stringListField(n, "dns_servers", "network.dns_servers"));
  const policyScript = stringField(n, "policy_script", "network.policy_script").trim();
  // Accepted and checked, but the virtual link's MTU is wheellock's (docs/RPC.md).
  numberField(n, "mtu", { integer: true, where: "network.mtu" });
  const common: SandboxOptions = hostname !== "" ? { hostname } : {};
  if (booleanField(n, "no_network", "network.no_network")) {
    if (allowed.length > 0) throw conflict("allowed_hosts");
    if (Object.keys(secretMap).length > 0) throw conflict("secrets");
    if (intercept) throw conflict("intercept");
    if (interception !== undefined) throw conflict("interception");
    if (policyScript !== "") throw conflict("policy_script");
    // No DNS to ask without a network; the hosts lines still go into /etc/hosts.
    return { options: { ...common, noNetwork: true }, guestHosts: Object.fromEntries(hosts) };
  }
  const overrides = hosts
    .map(([host, ip]): [string, string | undefined] => [host, hostView(ip)])
    .filter((e): e is [string, string] => e[1] !== undefined);
  const rules =
    interception === undefined
      ? []
      : mapNetworkRules(
          interception.rules,
          stringField(
            interception,
            "callback_socket",
            "network.interception.callback_socket",
          ).trim(),
        );
  const options: SandboxOptions = {
    ...common,
    allowPrivateHosts: !booleanField(n, "block_private_ips", "network.block_private_ips"),
    ...(allowed.length > 0 ? { allowedHosts: allowed } : {}),
    ...(Object.keys(secretMap).length > 0 ? { secrets: secretMap } : {}),
    ...(intercept || interception !== undefined ? { networkIntercept: true } : {}),
    ...(rules.length > 0 ? { networkHooks: rules } : {}),
    ...(hosts.length > 0 ? { addHosts: Object.fromEntries(hosts) } : {}),
    ...(overrides.length > 0 ? { resolveOverrides: Object.fromEntries(overrides) } : {}),
    ...(dns.length > 0 ? { dnsServers: dns } : {}),
    ...(policyScript !== "" ? { policyScript } : {}),
  };
  return { options, guestHosts: {} };
}
