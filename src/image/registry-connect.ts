import { lookupCredentials, type RegistryCredentials } from "./docker-auth.js";
import { RegistryClient } from "./registry-client.js";

export interface RegistryConnectOptions {
  /** Registries (host[:port]) to reach over plain HTTP. */
  insecureRegistries?: readonly string[];
  /** Overrides the docker config lookup (tests). */
  credentials?: RegistryCredentials;
  /** Extra attempts after network errors, 429 and 5xx (default 3). */
  retries?: number;
}

/** A client for one registry with the credentials `docker login` stored for it. */
export async function connectRegistry(
  registry: string,
  opts: RegistryConnectOptions = {},
): Promise<RegistryClient> {
  return new RegistryClient(registry, {
    insecure: opts.insecureRegistries?.includes(registry) ?? false,
    credentials: opts.credentials ?? (await lookupCredentials(registry)),
    ...(opts.retries !== undefined ? { retries: opts.retries } : {}),
  });
}
