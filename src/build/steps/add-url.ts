/**
 * `ADD https://...`: downloaded on the host under the build's network policy, the one every
 * RUN step gets: with `--allow-host` only the allowlisted hosts (intercept mode's rule), and
 * unless private hosts are allowed, no private or special-purpose address (the check runs on
 * the address actually connected to, so DNS cannot rebind around it). Redirects are followed
 * (at most 5), each checked again.
 */
import { createWriteStream } from "node:fs";
import { lookup as dnsLookup, type LookupAddress } from "node:dns";
import { request as httpRequest, type IncomingMessage } from "node:http";
import { request as httpsRequest } from "node:https";
import { posix } from "node:path";
import { pipeline } from "node:stream/promises";
import { ErrBuild } from "../../errors.js";
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

/** Downloads `href` to `file`; returns the name ADD gives it in a directory. */
export async function downloadUrl(
  href: string,
  file: string,
  policy: UrlPolicy,
  what: string,
  signal: AbortSignal,
): Promise<{ name: string; sizeBytes: number }> {
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
    let sizeBytes = 0;
    res.on("data", (c: Buffer) => (sizeBytes += c.length));
    await pipeline(res, createWriteStream(file, { mode: 0o600, flags: "wx" }));
    const name = posix.basename(decodeURIComponent(new URL(href).pathname)) || "index.html";
    return { name, sizeBytes };
  }
}
