/**
 * Intercept-mode flags of `run`: allowlist, secrets, hooks script, raw-TCP rules, CA, DNS,
 * /etc/hosts. Secret values are never echoed in an error (they may be the whole argument).
 */
import type { Command } from "commander";
import { SECRET_NAME_RE, type SandboxOptions, type SecretOption } from "../config/index.js";
import { ErrInvalidConfig } from "../errors.js";
import { collect } from "./flags.js";

export interface InterceptFlags {
  allowHost?: string[];
  denyAllHosts?: boolean;
  networkIntercept?: boolean;
  secret?: string[];
  addHost?: string[];
  dnsServers?: string;
  upstreamCa?: string[];
  allowTcp?: string[];
  policyScript?: string;
  events?: string;
}

export function addInterceptOptions(cmd: Command): Command {
  return cmd
    .option(
      "--allow-host <hosts>",
      "allow only these hosts (globs, optional :port; comma list, repeatable); enables interception",
      collect,
      [],
    )
    .option("--deny-all-hosts", "intercept with every host denied (add some with allow-list add)")
    .option("--network-intercept", "intercept HTTP/TLS even without an allowlist")
    .option(
      "--secret <NAME=VALUE@hosts[;opt]>",
      "the guest gets a placeholder; the host puts the value only into Authorization of TLS " +
        "requests to these hosts (no port: 443); NAME@hosts reads $NAME; options: " +
        ";header=X-Key ;query ;http (plain HTTP too, port 80) (repeatable)",
      collect,
      [],
    )
    .option(
      "--add-host <name:ip>",
      "add a line to the guest's /etc/hosts (repeatable)",
      collect,
      [],
    )
    .option("--dns-servers <a,b>", "DNS servers the host asks for the guest's lookups")
    .option(
      "--upstream-ca <file>",
      "also trust this PEM CA for upstream TLS (repeatable)",
      collect,
      [],
    )
    .option(
      "--allow-tcp <host:port>",
      "pass raw TCP to host:port when intercepting (repeatable)",
      collect,
      [],
    )
    .option("--policy-script <file>", "JS/TS module exporting network hooks")
    .option("--events <file>", "append the sandbox's events (network included) as JSON lines");
}

function splitList(values: readonly string[]): string[] {
  return values
    .flatMap((v) => v.split(","))
    .map((v) => v.trim())
    .filter(Boolean);
}

/**
 * A list flag that was given must name something: `--allow-host "$EMPTY"` quietly meaning
 * "no flag" would leave the network open instead of intercepted.
 */
function nonEmptyList(flag: string, values: readonly string[] | undefined): string[] {
  const list = splitList(values ?? []);
  if (values !== undefined && values.length > 0 && list.length === 0)
    throw new ErrInvalidConfig(`${flag}: no host given`);
  return list;
}

/**
 * What may follow the hosts, after `;`: `header=X-Api-Key[,X-Other]` (more headers the value
 * goes into), `query` (also the URL query), `http` (also over plain HTTP).
 */
function secretFlagOptions(name: string, options: readonly string[]): Partial<SecretOption> {
  const headers: string[] = [];
  const out: Partial<SecretOption> = {};
  for (const option of options.map((o) => o.trim()).filter(Boolean)) {
    const eq = option.indexOf("=");
    const key = (eq < 0 ? option : option.slice(0, eq)).trim().toLowerCase();
    if ((key === "header" || key === "headers") && eq > 0) {
      const names = splitList([option.slice(eq + 1)]);
      if (names.length === 0)
        throw new ErrInvalidConfig(`--secret ${name}: header= names no header`);
      headers.push(...names);
    } else if (key === "query" && eq < 0) out.inQuery = true;
    else if (key === "http" && eq < 0) out.allowHttp = true;
    // Not quoted: with a value that holds `@` and `;`, this text could be part of it.
    else
      throw new ErrInvalidConfig(
        `--secret ${name}: unknown option after the hosts (expected header=NAME, query or http)`,
      );
  }
  return headers.length > 0 ? { ...out, headers } : out;
}

/**
 * `NAME=VALUE@h1,h2[;option...]` or `NAME@h1,h2[;option...]` (value from `env[NAME]`). The
 * last `@` separates the hosts, so a value may itself contain `@` (and `;`).
 */
export function parseSecretFlag(
  entry: string,
  env: NodeJS.ProcessEnv = process.env,
): [string, SecretOption] {
  const at = entry.lastIndexOf("@");
  if (at <= 0)
    throw new ErrInvalidConfig("--secret expects NAME=VALUE@host,...[;option] or NAME@host,...");
  const left = entry.slice(0, at);
  const [hostText = "", ...options] = entry.slice(at + 1).split(";");
  const hosts = splitList([hostText]);
  const eq = left.indexOf("=");
  const name = eq < 0 ? left : left.slice(0, eq);
  if (!SECRET_NAME_RE.test(name))
    throw new ErrInvalidConfig(
      "--secret: the name must be a shell variable name (NAME=VALUE@hosts)",
    );
  if (hosts.length === 0) throw new ErrInvalidConfig(`--secret ${name}: no hosts after @`);
  const extra = secretFlagOptions(name, options);
  const value = eq < 0 ? env[name] : left.slice(eq + 1);
  if (value === undefined || value === "")
    throw new ErrInvalidConfig(
      eq < 0
        ? `--secret ${name}: $${name} is not set in the environment`
        : `--secret ${name}: empty value`,
    );
  return [name, { value, hosts, ...extra }];
}

export function parseSecretFlags(entries: readonly string[]): Record<string, SecretOption> {
  const out: Record<string, SecretOption> = {};
  for (const [name, secret] of entries.map((e) => parseSecretFlag(e))) {
    // The last one silently winning would drop the first one's hosts (or value).
    if (Object.hasOwn(out, name)) throw new ErrInvalidConfig(`--secret ${name} is given twice`);
    out[name] = secret;
  }
  return out;
}

function parseAddHosts(entries: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const entry of entries) {
    const colon = entry.indexOf(":");
    if (colon <= 0 || colon === entry.length - 1)
      throw new ErrInvalidConfig(`--add-host expects name:ip, got ${JSON.stringify(entry)}`);
    out[entry.slice(0, colon)] = entry.slice(colon + 1);
  }
  return out;
}

/**
 * Options from the flags. `secrets` comes from the caller when already known (a detached
 * supervisor receives them on stdin, never in its argv).
 */
export function interceptSandboxOptions(
  flags: InterceptFlags,
  secrets: Record<string, SecretOption> = parseSecretFlags(flags.secret ?? []),
): SandboxOptions {
  const hosts = nonEmptyList("--allow-host", flags.allowHost);
  const dns = splitList(flags.dnsServers === undefined ? [] : [flags.dnsServers]);
  const addHosts = flags.addHost ?? [];
  const cas = flags.upstreamCa ?? [];
  const tcp = nonEmptyList("--allow-tcp", flags.allowTcp);
  return {
    ...(hosts.length > 0 ? { allowedHosts: hosts } : {}),
    ...(flags.denyAllHosts ? { denyAllHosts: true } : {}),
    ...(flags.networkIntercept ? { networkIntercept: true } : {}),
    ...(Object.keys(secrets).length > 0 ? { secrets } : {}),
    ...(addHosts.length > 0 ? { addHosts: parseAddHosts(addHosts) } : {}),
    ...(dns.length > 0 ? { dnsServers: dns } : {}),
    ...(cas.length > 0 ? { upstreamCa: cas } : {}),
    ...(tcp.length > 0 ? { allowTcp: tcp } : {}),
    ...(flags.policyScript !== undefined ? { policyScript: flags.policyScript } : {}),
  };
}
