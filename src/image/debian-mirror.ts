import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";

export interface DebianMirrors {
  /** Archive URI serving SUITE and SUITE-updates, e.g. http://deb.debian.org/debian */
  archive: string;
  /** URI serving SUITE-security, e.g. http://deb.debian.org/debian-security */
  security: string;
}

const DEFAULT_MIRRORS: DebianMirrors = {
  archive: "http://deb.debian.org/debian",
  security: "http://deb.debian.org/debian-security",
};

interface SourceEntry {
  uri: string;
  suites: string[];
  components: string[];
}

/**
 * The Debian mirrors to build `suite` from: the host's own apt sources when they serve that suite
 * (a Debian host of the same release; its mirror may be the only one reachable, e.g. behind a
 * firewall or a local cache), otherwise deb.debian.org (an Ubuntu host, or another release).
 */
export function debianMirrorsFor(suite: string, aptDir = "/etc/apt"): DebianMirrors {
  const entries = readHostSources(aptDir).filter((e) => e.components.includes("main"));
  const archive = entries.find((e) => e.suites.includes(suite))?.uri;
  const security = entries.find((e) => e.suites.includes(`${suite}-security`))?.uri;
  return {
    archive: archive ?? DEFAULT_MIRRORS.archive,
    security: security ?? DEFAULT_MIRRORS.security,
  };
}

/** mmdebstrap's mirror arguments: one-line sources entries. */
export function mirrorSourceLines(suite: string, m: DebianMirrors): string[] {
  return [
    `deb ${m.archive} ${suite} main`,
    `deb ${m.archive} ${suite}-updates main`,
    `deb ${m.security} ${suite}-security main`,
  ];
}

export function readHostSources(aptDir: string): SourceEntry[] {
  const out: SourceEntry[] = [];
  const tryRead = (p: string): string | undefined => {
    try {
      return readFileSync(p, "utf8");
    } catch {
      return undefined;
    }
  };
  const main = tryRead(join(aptDir, "sources.list"));
  if (main !== undefined) out.push(...parseOneLineSources(main));
  let names: string[] = [];
  try {
    names = readdirSync(join(aptDir, "sources.list.d")).sort();
  } catch {
    // No sources.list.d: only the main file.
  }
  for (const name of names) {
    const text = tryRead(join(aptDir, "sources.list.d", name));
    if (text === undefined) continue;
    if (name.endsWith(".sources")) out.push(...parseDeb822Sources(text));
    else if (name.endsWith(".list")) out.push(...parseOneLineSources(text));
  }
  return out;
}

/** `deb [opts] URI SUITE COMPONENT...` lines; deb-src and comments skipped. */
export function parseOneLineSources(text: string): SourceEntry[] {
  const out: SourceEntry[] = [];
  for (const raw of text.split("\n")) {
    const line = raw
      .replace(/#.*/, "")
      .replace(/\[[^\]]*\]/, " ")
      .trim();
    const [type, uri, suite, ...components] = line.split(/\s+/);
    if (type !== "deb" || !uri || !suite) continue;
    out.push({ uri: uri.replace(/\/+$/, ""), suites: [suite], components });
  }
  return out;
}

/** deb822 stanzas (Types/URIs/Suites/Components), as in Debian 12's debian.sources. */
export function parseDeb822Sources(text: string): SourceEntry[] {
  const out: SourceEntry[] = [];
  for (const stanza of text.split(/\n\s*\n/)) {
    const fields = new Map<string, string>();
    let last: string | undefined;
    for (const line of stanza.split("\n")) {
      if (line.startsWith("#")) continue;
      if (/^\s/.test(line) && last !== undefined) {
        fields.set(last, `${fields.get(last) ?? ""} ${line.trim()}`);
        continue;
      }
      const m = /^([A-Za-z-]+):\s*(.*)$/.exec(line);
      if (m?.[1] && m[2] !== undefined) {
        last = m[1].toLowerCase();
        fields.set(last, m[2]);
      }
    }
    const words = (k: string): string[] =>
      (fields.get(k) ?? "").split(/\s+/).filter((w) => w.length > 0);
    if (!words("types").includes("deb") || fields.get("enabled")?.trim() === "no") continue;
    for (const uri of words("uris")) {
      out.push({
        uri: uri.replace(/\/+$/, ""),
        suites: words("suites"),
        components: words("components"),
      });
    }
  }
  return out;
}
