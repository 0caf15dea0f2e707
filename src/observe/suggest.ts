/**
 * `policy suggest`: the smallest allowlist that would have let a recorded run through (its
 * `--events` file, typically from an audit-mode run). Every HTTP(S) host the run reached, or
 * was refused only by the allowlist, is covered; requests refused for any other reason
 * (private addresses, secret scopes, malformed requests) are left out, since no allowlist
 * entry would let them through, and so are requests a live approval refused (denied, timed
 * out, over the cap: someone said no) and private, loopback, link-local and metadata hosts,
 * whatever the event says. Sibling hosts become a glob (`a.pypi.org`, `b.pypi.org` ->
 * `*.pypi.org`), level by level, but never a glob over a public or shared hosting suffix
 * (the Public Suffix List's `*.com`, `*.co.uk`, `*.github.io`, `*.blogspot.com`, ...),
 * where it would admit strangers.
 */
import { isIPv4 } from "node:net";
import { createRequire } from "node:module";
import { canonicalHost, isPrivateOrSpecialAddress } from "../net/index.js";
import { neverApprovable } from "./approvals.js";

export interface SuggestedEntry {
  /** An allowlist entry (`--allow-host` syntax). */
  entry: string;
  /** The recorded hosts (`host` or `host:port`) it covers. */
  covers: string[];
}

export interface SuggestedPolicy {
  /** For `--allow-host` / `allowedHosts`. */
  allowHosts: string[];
  /** For `--allow-tcp` / `allowTcp`: raw TCP destinations the run used. */
  allowTcp: string[];
  /** Each allowHosts entry with what it covers. */
  entries: SuggestedEntry[];
  /** Network events read, and how many of them count. */
  eventsRead: number;
  eventsUsed: number;
}

/**
 * Suffixes whose names belong to many parties, or stand for any address, that the Public
 * Suffix List (ICANN and PRIVATE sections, through tldts) does not have, or has one level too
 * high (a bucket is `NAME.storage.googleapis.com`, while the list stops at `googleapis.com`).
 * A glob over one would let a guest reach strangers: shared hosting and tunnels; wildcard DNS
 * that answers with the address spelled in the name (`8-8-8-8.nip.io`, or loopback for
 * `*.lvh.me`); request-capture and out-of-band (OAST) services, where every subdomain is
 * someone's inbox and the classic way to carry data out.
 */
const EXTRA_SHARED_SUFFIXES = [
  // shared hosting, tunnels
  "storage.googleapis.com",
  "googleusercontent.com",
  "cloudapp.azure.com",
  "loca.lt",
  "localtunnel.me",
  "localhost.run",
  "lhr.life",
  "serveo.net",
  "ngrok.io",
  "ngrok-free.app",
  "github.dev",
  "gitpod.io",
  "glitch.me",
  "modal.run",
  "ipfs.io",
  "arweave.net",
  // wildcard DNS: the name is the address
  "nip.io",
  "sslip.io",
  "xip.io",
  "traefik.me",
  "lvh.me",
  "localtest.me",
  "vcap.me",
  "lcl.host",
  // request capture, out-of-band interaction
  "oast.fun",
  "oast.live",
  "oast.me",
  "oast.online",
  "oast.pro",
  "oast.site",
  "interact.sh",
  "oastify.com",
  "burpcollaborator.net",
  "dnslog.cn",
  "ceye.io",
  "canarytokens.com",
  "requestrepo.com",
  "pipedream.net",
  "webhook.site",
  "requestbin.net",
  "requestcatcher.com",
  "beeceptor.com",
  "mockbin.org",
  "hookbin.com",
];

const PSL_OPTIONS = { allowPrivateDomains: true, extractHostname: false } as const;

type Tldts = typeof import("tldts");
let tldts: Tldts | undefined;

/**
 * The registrable domain of `name` by the Public Suffix List, or null. The list (tldts) is
 * loaded on first use: every SDK user and CLI command imports this module, few suggest.
 */
function registrableDomain(name: string): string | null {
  tldts ??= createRequire(import.meta.url)("tldts") as Tldts;
  return tldts.getDomain(name, PSL_OPTIONS);
}

/** Allowlist refusals (and audit marks) are what an entry fixes; other refusals are not. */
const FIXABLE = new Set(["host_not_allowed"]);

/** Approval outcomes where someone (or the clock, or the cap) said no: not to be suggested. */
const REFUSED_APPROVALS = new Set(["deny", "timeout", "cap"]);

interface Seen {
  scheme: string;
  host: string;
  port: number;
  blocked: boolean;
  code: string | undefined;
  deniedByApprover: boolean;
}

function networkOf(event: unknown): Seen | undefined {
  if (typeof event !== "object" || event === null) return undefined;
  const e = event as { type?: unknown; network?: Record<string, unknown> };
  const n = e.type === "network" ? e.network : undefined;
  if (!n || typeof n.host !== "string" || typeof n.port !== "number") return undefined;
  if (typeof n.scheme !== "string") return undefined;
  // Only a host name the proxy could have recorded: an edited or foreign file's `*`, `a,b` or
  // `x:1` would otherwise come out as allowlist syntax (`--allow-host` splits on commas).
  const canonical = canonicalHost(n.host);
  if (!canonical.ok || canonical.host !== n.host.toLowerCase()) return undefined;
  if (!Number.isInteger(n.port) || n.port < 1 || n.port > 65535) return undefined;
  return {
    scheme: n.scheme,
    host: canonical.host,
    port: n.port,
    blocked: n.blocked === true,
    code: typeof n.code === "string" ? n.code : undefined,
    deniedByApprover:
      typeof n.approval === "object" &&
      n.approval !== null &&
      REFUSED_APPROVALS.has(String((n.approval as { decision?: unknown }).decision)),
  };
}

/**
 * No entry may name it: a private, loopback, link-local or metadata literal, or a name for the
 * host itself or a metadata service (the ones live approval never offers either).
 */
function neverSuggested(host: string): boolean {
  return (isIPv4(host) && isPrivateOrSpecialAddress(host)) || neverApprovable(host) !== undefined;
}

/**
 * A glob `*.parent` stays inside one owner's names: `parent` is a registrable domain (or
 * below one) by the Public Suffix List, and not under a shared suffix the list lacks.
 */
function globbable(parent: string): boolean {
  if (isIPv4(parent)) return false;
  if (EXTRA_SHARED_SUFFIXES.some((s) => parent === s || parent.endsWith(`.${s}`))) return false;
  const domain = registrableDomain(parent);
  return domain !== null && (parent === domain || parent.endsWith(`.${domain}`));
}

const parentOf = (name: string): string => name.slice(name.indexOf(".") + 1);

/** Merges siblings into globs until no two entries share a globbable parent. */
function mergeSiblings(entries: Map<string, string[]>): Map<string, string[]> {
  for (;;) {
    const groups = new Map<string, string[]>();
    for (const entry of entries.keys()) {
      if (isIPv4(entry) || !entry.includes(".")) continue;
      const base = entry.startsWith("*.") ? entry.slice(2) : entry;
      const parent = parentOf(base);
      if (parent === base || !globbable(parent)) continue;
      groups.set(parent, [...(groups.get(parent) ?? []), entry]);
    }
    const merge = [...groups].find(([, members]) => members.length >= 2);
    if (!merge) return entries;
    const [parent, members] = merge;
    const covers = members.flatMap((m) => entries.get(m) ?? []);
    for (const m of members) entries.delete(m);
    const glob = `*.${parent}`;
    entries.set(glob, [...(entries.get(glob) ?? []), ...covers]);
  }
}

export function suggestAllowlist(events: Iterable<unknown>): SuggestedPolicy {
  let eventsRead = 0;
  let eventsUsed = 0;
  // Names by the port they were reached on (undefined: the scheme's default port, which an
  // entry without a port covers); siblings are merged within one port only.
  const byPort = new Map<number | undefined, Map<string, string[]>>();
  const tcp = new Set<string>();
  for (const event of events) {
    const n = networkOf(event);
    if (!n) continue;
    eventsRead++;
    if (n.blocked && !FIXABLE.has(n.code ?? "")) continue;
    if (n.deniedByApprover || neverSuggested(n.host)) continue;
    if (n.scheme === "tcp") {
      eventsUsed++;
      tcp.add(`${n.host}:${n.port}`);
      continue;
    }
    if (n.scheme !== "http" && n.scheme !== "https") continue;
    eventsUsed++;
    const port = n.port === (n.scheme === "https" ? 443 : 80) ? undefined : n.port;
    const names = byPort.get(port) ?? new Map<string, string[]>();
    byPort.set(port, names);
    const shown = port === undefined ? n.host : `${n.host}:${port}`;
    if (!names.has(n.host)) names.set(n.host, [shown]);
  }
  const entries: SuggestedEntry[] = [...byPort]
    .flatMap(([port, names]) =>
      [...mergeSiblings(names)].map(([name, covers]) => ({
        entry: port === undefined ? name : `${name}:${port}`,
        covers: [...new Set(covers)].sort(),
      })),
    )
    .sort((a, b) => a.entry.localeCompare(b.entry));
  return {
    allowHosts: entries.map((e) => e.entry),
    allowTcp: [...tcp].sort(),
    entries,
    eventsRead,
    eventsUsed,
  };
}

/** Events from an `--events` file: one JSON object per line; bad lines are counted, skipped. */
export function parseEventLines(text: string): { events: unknown[]; badLines: number } {
  const events: unknown[] = [];
  let badLines = 0;
  for (const line of text.split("\n")) {
    if (line.trim() === "") continue;
    try {
      events.push(JSON.parse(line));
    } catch {
      badLines++;
    }
  }
  return { events, badLines };
}
