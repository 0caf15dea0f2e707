/**
 * `ADD https://...`: downloaded on the host under the build's network policy, the one every
 * RUN step gets: with `--allow-host` only the allowlisted hosts (intercept mode's rule), and
 * unless private hosts are allowed, no private or special-purpose address (the check runs on
 * the address actually connected to, so DNS cannot rebind around it). Redirects are followed
 * (at most 5), each checked again.
 */
import { createHash } from "node:crypto";
import { createWriteStream } from "node:fs";
import { lookup as dnsLookup, type LookupAddress } from "node:dns";
import { request as httpRequest, type IncomingMessage } from "node:http";
import { request as httpsRequest } from "node:https";
import { isIP } from "node:net";
import { dirname, posix } from "node:path";
import { Transform } from "node:stream";
import { pipeline } from "node:stream/promises";
import { ErrBuild } from "../../errors.js";
import { freeBytes } from "../../image/index.js";
import { HostAllowlist, isPrivateOrSpecialAddress } from "../../net/index.js";

export interface UrlPolicy {
  allowHosts: readonly string[];
  allowPrivateHosts: boolean;
}

const MAX_REDIRECTS = 5;

function checkedLookup(policy: UrlPolicy, what: string) {
  return (
    hostname: string,
    options: object,
    callback: (
      err: NodeJS.ErrnoException | null,
      address: string | LookupAddress[],
      family?: number,
    ) => void,
  ): void => {
    dnsLookup(hostname, { ...options, all: true }, (err, addresses) => {
      if (err) return callback(err, []);
      const list = addresses as LookupAddress[];
      const bad = list.find(
        (a) => !policy.allowPrivateHosts && isPrivateOrSpecialAddress(a.address),
      );
      if (bad)
        return callback(
          new ErrBuild(
            `${what}: ${hostname} is a private address (${bad.address}); blocked by the build's network policy`,
          ) as NodeJS.ErrnoException,
          [],
        );
      const all = (options as { all?: boolean }).all === true;
      if (all) callback(null, list);
      else callback(null, list[0]?.address ?? "", list[0]?.family);
    });
  };
}

function get(
  url: URL,
  policy: UrlPolicy,
  what: string,
  signal: AbortSignal,
): Promise<IncomingMessage> {
  const port = Number(url.port || (url.protocol === "https:" ? 443 : 80));
  if (
    policy.allowHosts.length > 0 &&
    !new HostAllowlist(policy.allowHosts).allows(url.hostname, port)
  )
    throw new ErrBuild(`${what}: ${url.host} is not in the build's --allow-host list`);
  // An address literal is never looked up (Node connects to it directly), so the lookup's
  // check would not run: it is checked here.
  const literal = url.hostname.replace(/^\[(.*)\]$/, "$1");
  if (isIP(literal) !== 0 && !policy.allowPrivateHosts && isPrivateOrSpecialAddress(literal))
    throw new ErrBuild(
      `${what}: ${url.host} is a private address; blocked by the build's network policy`,
    );
  const request = url.protocol === "https:" ? httpsRequest : httpRequest;
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      { method: "GET", lookup: checkedLookup(policy, what), signal },
      resolve,
    );
    req.on("error", (err) =>
      reject(err instanceof ErrBuild ? err : new ErrBuild(`${what}: ${url.href}: ${err.message}`)),
    );
    req.end();
  });
}

/**
 * Downloads `href` to `file` (at most the free space of its disk), hashing it on the way;
 * returns the name ADD gives it in a directory.
 */
export async function downloadUrl(
  href: string,
  file: string,
  policy: UrlPolicy,
  what: string,
  signal: AbortSignal,
): Promise<{ name: string; sizeBytes: number; sha256: string }> {
  let url = new URL(href);
  for (let hops = 0; ; hops++) {
    if (url.protocol !== "http:" && url.protocol !== "https:")
      throw new ErrBuild(`${what}: only http and https URLs can be added`);
    const res = await get(url, policy, what, signal);
    const status = res.statusCode ?? 0;
    if (status >= 300 && status < 400 && res.headers.location) {
      res.resume();
      if (hops >= MAX_REDIRECTS) throw new ErrBuild(`${what}: too many redirects`);
      url = new URL(res.headers.location, url);
      continue;
    }
    if (status !== 200) {
      res.resume();
      throw new ErrBuild(`${what}: ${url.href} answered HTTP ${status}`);
    }
    const limitBytes = await freeBytes(dirname(file));
    const hash = createHash("sha256");
    let sizeBytes = 0;
    const counted = new Transform({
      transform(chunk: Buffer, _enc, done) {
        sizeBytes += chunk.length;
        if (sizeBytes > limitBytes)
          return done(
            new ErrBuild(
              `${what}: ${url.href} is larger than the ${Math.round(limitBytes / 1048576)} MiB free on the build's disk`,
            ),
          );
        hash.update(chunk);
        done(null, chunk);
      },
    });
    await pipeline(res, counted, createWriteStream(file, { mode: 0o600, flags: "wx" }));
    return { name: fileName(href, what), sizeBytes, sha256: `sha256:${hash.digest("hex")}` };
  }
}

/** The name ADD gives a download in a directory: the URL path's last segment, decoded. */
function fileName(href: string, what: string): string {
  const raw = new URL(href).pathname;
  let decoded = raw;
  try {
    decoded = decodeURIComponent(raw);
  } catch {
    // Not valid percent-encoding: the name as written.
  }
  const name = posix.basename(decoded);
  if (name === "") return "index.html";
  if (name === "." || name === ".." || name.includes("\0"))
    throw new ErrBuild(`${what}: ${href} does not name a file; give the destination a file name`);
  return name;
}
