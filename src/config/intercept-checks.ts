import { isIPv4 } from "node:net";
import { resolve as resolvePath } from "node:path";
import { ErrInvalidConfig } from "../errors.js";
import { compileHostPattern, secretHeaderProblem } from "../net/index.js";
import { checkBoolean, checkHostPath } from "./field-checks.js";
import { checkScriptSource } from "./policy-script-source.js";
import type { ResolvedSandboxConfig, ResolvedSecret, SandboxOptions } from "./options.js";

export type InterceptFields = Pick<
  ResolvedSandboxConfig,
  | "networkIntercept"
  | "allowedHosts"
  | "denyAllHosts"
  | "secrets"
  | "networkHookCount"
  | "policyScript"
  | "policyScriptSource"
  | "addHosts"
  | "dnsServers"
  | "upstreamCa"
  | "allowTcp"
>;

/** Host names as DNS and /etc/hosts accept them (lower case, no trailing dot). */
const HOST_NAME_RE =
  /^(?=.{1,253}$)([a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?)(\.[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?)*$/;

export const SECRET_NAME_RE = /^[A-Za-z_][A-Za-z0-9_]*$/;

function stringList(field: string, value: unknown): string[] {
  if (!Array.isArray(value) || !value.every((v) => typeof v === "string"))
    throw new ErrInvalidConfig(`${field} must be an array of strings`);
  return value.map((v: string) => v.trim()).filter((v) => v.length > 0);
}

/** Each entry compiled once, so a bad glob is reported here and not at the first request. */
function hostGlobs(field: string, value: unknown): string[] {
  const entries = stringList(field, value);
  // `[""]` quietly becoming `[]` would mean open mode instead of intercept.
  if ((value as string[]).length > entries.length)
    throw new ErrInvalidConfig(`${field}: empty entry`);
  for (const e of entries) {
    try {
      compileHostPattern(e);
    } catch (err) {
      throw new ErrInvalidConfig(`${field}: ${(err as Error).message.replace(/^.*?: /, "")}`);
    }
  }
  return [...new Set(entries)];
}

/** `host:port` with a port: raw TCP is never allowed to every port of a host by accident. */
function tcpRules(value: unknown): string[] {
  const entries = hostGlobs("allowTcp", value);
  for (const e of entries) {
    if (compileHostPattern(e).port === undefined)
      throw new ErrInvalidConfig(`allowTcp: ${JSON.stringify(e)} needs a port (host:port)`);
  }
  return entries;
}

const SECRET_FIELDS = new Set(["value", "hosts", "headers", "inQuery", "allowHttp", "placeholder"]);

/** Printable ASCII without spaces: it goes into env values and header values as is. */
const PLACEHOLDER_RE = /^[!-~]{8,256}$/;

/** A caller-chosen placeholder: long enough not to occur by chance, distinct from the value. */
function checkPlaceholder(name: string, placeholder: unknown, value: string): string {
  if (typeof placeholder !== "string" || !PLACEHOLDER_RE.test(placeholder))
    throw new ErrInvalidConfig(
      `secrets.${name}.placeholder must be 8 to 256 printable ASCII characters without spaces`,
    );
  // Either inside the other would let a substituted request look like a leak, or the reverse.
  if (value.includes(placeholder) || placeholder.includes(value))
    throw new ErrInvalidConfig(
      `secrets.${name}.placeholder must not contain or be part of the value`,
    );
  return placeholder;
}

/** Extra headers a secret goes into: header names the proxy does not own, de-duplicated. */
function secretHeaders(field: string, value: unknown): string[] {
  if (!Array.isArray(value))
    throw new ErrInvalidConfig(`${field} must be an array of header names`);
  const out = new Map<string, string>();
  for (const h of value) {
    const problem = secretHeaderProblem(h);
    if (problem !== undefined) throw new ErrInvalidConfig(`${field}: ${problem}`);
    const name = h as string;
    if (!out.has(name.toLowerCase())) out.set(name.toLowerCase(), name);
  }
  return [...out.values()];
}

/** The value is checked but never quoted: error messages must not carry it. */
export function checkSecrets(value: unknown): ResolvedSecret[] {
  if (typeof value !== "object" || value === null || Array.isArray(value))
    throw new ErrInvalidConfig("secrets must be an object of NAME -> { value, hosts }");
  const out: ResolvedSecret[] = [];
  const placeholders = new Set<string>();
  for (const [name, spec] of Object.entries(value as Record<string, unknown>)) {
    // A shell variable name: the placeholder must be usable as `$NAME` in the guest.
    if (!SECRET_NAME_RE.test(name))
      throw new ErrInvalidConfig(
        `secrets: ${JSON.stringify(name)} is not a variable name ([A-Za-z_][A-Za-z0-9_]*)`,
      );
    if (typeof spec !== "object" || spec === null)
      throw new ErrInvalidConfig(`secrets.${name} must be an object with value and hosts`);
    // A misspelt `allowHttp` or `headers` would silently change where the value may go.
    const unknown = Object.keys(spec).find((k) => !SECRET_FIELDS.has(k));
    if (unknown !== undefined)
      throw new ErrInvalidConfig(
        `secrets.${name}: unknown field ${JSON.stringify(unknown)} (known: ${[...SECRET_FIELDS].join(", ")})`,
      );
    const {
      value: secret,
      hosts,
      headers,
      inQuery,
      allowHttp,
      placeholder,
    } = spec as Record<string, unknown>;
    if (typeof secret !== "string" || secret.length === 0 || secret.includes("\0"))
      throw new ErrInvalidConfig(`secrets.${name}.value must be a non-empty string without NUL`);
    if (placeholder !== undefined) {
      if (placeholders.has(checkPlaceholder(name, placeholder, secret)))
        throw new ErrInvalidConfig(
          `secrets.${name}.placeholder is another secret's placeholder too`,
        );
      placeholders.add(placeholder as string);
    }
    const globs = hostGlobs(`secrets.${name}.hosts`, hosts ?? []);
    if (globs.length === 0)
      throw new ErrInvalidConfig(`secrets.${name}.hosts must name at least one host`);
    out.push({
      name,
      hosts: Object.freeze(globs),
      headers: Object.freeze(
        headers === undefined ? [] : secretHeaders(`secrets.${name}.headers`, headers),
      ),
      inQuery: inQuery === undefined ? false : checkBoolean(`secrets.${name}.inQuery`, inQuery),
      allowHttp:
        allowHttp === undefined ? false : checkBoolean(`secrets.${name}.allowHttp`, allowHttp),
      ...(placeholder !== undefined ? { placeholder: placeholder as string } : {}),
    });
  }
  return out;
}

/** `{ name: IPv4 }` with names lower-cased (trailing dot dropped): `resolveOverrides`, `addHosts`. */
export function checkNameToIpv4(field: string, value: unknown): Record<string, string> {
  if (typeof value !== "object" || value === null || Array.isArray(value))
    throw new ErrInvalidConfig(`${field} must be an object of name -> IPv4 address`);
  const out: Record<string, string> = {};
  for (const [rawName, ip] of Object.entries(value)) {
    const name = rawName.toLowerCase().replace(/\.$/, "");
    if (!HOST_NAME_RE.test(name))
      throw new ErrInvalidConfig(`${field}: ${JSON.stringify(rawName)} is not a host name`);
    if (typeof ip !== "string" || !isIPv4(ip))
      throw new ErrInvalidConfig(`${field}: ${name} must map to an IPv4 address`);
    out[name] = ip;
  }
  return out;
}

/** `IPv4` or `IPv4:port` (a resolver on another port, e.g. a local one in tests). */
function checkDnsServers(value: unknown): string[] {
  const servers = stringList("dnsServers", value);
  for (const s of servers) {
    const [ip, port, extra] = s.split(":");
    const portOk = port === undefined || (/^\d{1,5}$/.test(port) && +port > 0 && +port < 65536);
    if (!isIPv4(ip ?? "") || !portOk || extra !== undefined)
      throw new ErrInvalidConfig(`dnsServers: ${JSON.stringify(s)} is not an IPv4 address[:port]`);
  }
  return [...new Set(servers)];
}

/** True when any option needs the intercepting proxy (reference: any allowlist or secret). */
function wantsIntercept(f: Omit<InterceptFields, "networkIntercept">, forced: boolean): boolean {
  return (
    forced ||
    f.allowedHosts.length > 0 ||
    f.denyAllHosts ||
    f.secrets.length > 0 ||
    f.networkHookCount > 0 ||
    f.policyScript !== undefined ||
    f.policyScriptSource !== undefined ||
    f.allowTcp.length > 0
  );
}

/** The intercept-mode fields of the resolved config. */
export function checkInterceptOptions(opts: SandboxOptions): InterceptFields {
  if (opts.policyScript !== undefined && opts.policyScriptSource !== undefined)
    throw new ErrInvalidConfig("give policyScript or policyScriptSource, not both");
  const hooks = opts.networkHooks ?? [];
  if (!Array.isArray(hooks)) throw new ErrInvalidConfig("networkHooks must be an array of rules");
  const secrets = opts.secrets === undefined ? [] : checkSecrets(opts.secrets);
  const userHosts =
    opts.allowedHosts === undefined ? [] : hostGlobs("allowedHosts", opts.allowedHosts);
  const fields = {
    // Reference semantics: a secret's hosts are reachable without listing them again.
    allowedHosts: Object.freeze([...new Set([...userHosts, ...secrets.flatMap((s) => s.hosts)])]),
    denyAllHosts:
      opts.denyAllHosts === undefined ? false : checkBoolean("denyAllHosts", opts.denyAllHosts),
    secrets: Object.freeze(secrets),
    networkHookCount: hooks.length,
    policyScript:
      opts.policyScript === undefined
        ? undefined
        : resolvePath(checkHostPath("policyScript", opts.policyScript)),
    policyScriptSource:
      opts.policyScriptSource === undefined
        ? undefined
        : checkScriptSource("options", opts.policyScriptSource),
    addHosts: Object.freeze(
      opts.addHosts === undefined ? {} : checkNameToIpv4("addHosts", opts.addHosts),
    ),
    dnsServers: Object.freeze(
      opts.dnsServers === undefined ? [] : checkDnsServers(opts.dnsServers),
    ),
    upstreamCa: Object.freeze(
      opts.upstreamCa === undefined
        ? []
        : stringList("upstreamCa", opts.upstreamCa).map((p) =>
            resolvePath(checkHostPath("upstreamCa", p)),
          ),
    ),
    allowTcp: Object.freeze(opts.allowTcp === undefined ? [] : tcpRules(opts.allowTcp)),
  };
  const forced =
    (opts.networkIntercept === undefined
      ? false
      : checkBoolean("networkIntercept", opts.networkIntercept)) ||
    // Audit mode records what the allowlist would refuse: it needs the proxy to see requests.
    opts.networkAudit === true;
  return { ...fields, networkIntercept: wantsIntercept(fields, forced) };
}

/** Whether any network option at all was given (for the `noNetwork` conflict check). */
export function anyInterceptOption(f: InterceptFields): boolean {
  return (
    f.networkIntercept ||
    Object.keys(f.addHosts).length > 0 ||
    f.dnsServers.length > 0 ||
    f.upstreamCa.length > 0
  );
}
