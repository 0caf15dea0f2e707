import { ErrInvalidConfig } from "../errors.js";

/** A parsed image reference: `registry/repository` plus a tag or a digest (or both). */
export interface ImageReference {
  /** Registry host[:port] as written, with Docker Hub normalised to `docker.io`. */
  registry: string;
  /** Repository path, with `library/` added for official Docker Hub images. */
  repository: string;
  tag?: string;
  /** `sha256:<64 hex>` when pinned. */
  digest?: string;
}

export const DOCKER_HUB = "docker.io";
/** Docker Hub's API endpoint differs from the name users write. */
const DOCKER_HUB_API_HOST = "registry-1.docker.io";

const COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const TAG = /^[\w][\w.-]{0,127}$/;
const DIGEST = /^sha256:[a-f0-9]{64}$/;

/**
 * Parses a Docker-style reference (`alpine`, `alpine:3.20`, `ghcr.io/o/r@sha256:...`,
 * `localhost:5000/x:1`). The first path component is a registry only when it looks like a host
 * (has a dot or a port, or is `localhost`), exactly as Docker decides; otherwise Docker Hub.
 * A reference with neither tag nor digest means `:latest`.
 */
export function parseReference(input: string): ImageReference {
  const bad = (why: string): never => {
    throw new ErrInvalidConfig(`invalid image reference "${input}": ${why}`);
  };
  if (input.length === 0 || input.length > 4096) bad("empty or too long");
  let rest = input;
  let digest: string | undefined;
  const at = rest.indexOf("@");
  if (at >= 0) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    if (!DIGEST.test(digest)) bad("digest must be sha256:<64 lowercase hex digits>");
  }
  let tag: string | undefined;
  const colon = rest.lastIndexOf(":");
  if (colon > rest.lastIndexOf("/")) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (!TAG.test(tag)) bad(`bad tag "${tag}"`);
  }
  const parts = rest.split("/");
  let registry = DOCKER_HUB;
  const first = parts[0] ?? "";
  if (parts.length > 1 && (first.includes(".") || first.includes(":") || first === "localhost")) {
    registry = first;
    parts.shift();
    if (!/^[A-Za-z0-9.-]+(:\d{1,5})?$|^\[[0-9a-fA-F:]+\](:\d{1,5})?$/.test(registry))
      bad(`bad registry "${registry}"`);
  }
  if (registry === "index.docker.io" || registry === DOCKER_HUB_API_HOST) registry = DOCKER_HUB;
  if (parts.length === 0 || parts.some((c) => !COMPONENT.test(c)))
    bad("repository must be lowercase letters, digits and separators");
  if (registry === DOCKER_HUB && parts.length === 1) parts.unshift("library");
  const ref: ImageReference = { registry, repository: parts.join("/") };
  if (tag !== undefined) ref.tag = tag;
  if (digest !== undefined) ref.digest = digest;
  if (tag === undefined && digest === undefined) ref.tag = "latest";
  return ref;
}

/** `registry/repository[:tag][@digest]`: the key local records are stored under. */
export function canonicalReference(ref: ImageReference): string {
  return `${ref.registry}/${ref.repository}${ref.tag !== undefined ? `:${ref.tag}` : ""}${ref.digest !== undefined ? `@${ref.digest}` : ""}`;
}

/** The repository as users write it (`alpine`, `ghcr.io/o/r`), for listings. */
export function familiarRepository(ref: Pick<ImageReference, "registry" | "repository">): string {
  if (ref.registry !== DOCKER_HUB) return `${ref.registry}/${ref.repository}`;
  return ref.repository.startsWith("library/") ? ref.repository.slice(8) : ref.repository;
}

/** The host[:port] to send API requests to. */
export function registryApiHost(registry: string): string {
  return registry === DOCKER_HUB ? DOCKER_HUB_API_HOST : registry;
}

/** Loopback registries speak plain HTTP, as Docker allows without configuration. */
export function isLoopbackRegistry(registry: string): boolean {
  const host = registry.replace(/:\d+$/, "").replace(/^\[|\]$/g, "");
  return host === "localhost" || host === "::1" || /^127(\.\d{1,3}){3}$/.test(host);
}
