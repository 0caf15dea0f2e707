import { isIP } from "node:net";
import { ErrInvalidConfig } from "../errors.js";

/** A published port: host `address:localPort` forwards to guest `127.0.0.1:remotePort`. */
export interface PortBinding {
  address: string;
  localPort: number;
  remotePort: number;
}

function port(text: string, spec: string, allowZero: boolean): number {
  const n = /^\d{1,5}$/.test(text) ? Number(text) : NaN;
  if (!(n <= 65535 && (n >= 1 || (allowZero && n === 0)))) {
    throw new ErrInvalidConfig(`invalid port forward "${spec}": port must be 1-65535`);
  }
  return n;
}

function checkAddress(address: string): string {
  if (address !== "localhost" && isIP(address) === 0) {
    throw new ErrInvalidConfig(`invalid address "${address}": expected an IP literal or localhost`);
  }
  return address;
}

/**
 * `-p` / `port-forward` specs: `REMOTE`, `LOCAL:REMOTE` or `ADDR:LOCAL:REMOTE` (LOCAL 0 picks a
 * free port). Each spec without its own address is bound on every `--address` (default
 * 127.0.0.1: nothing is exposed beyond this host unless asked for).
 */
export function parsePublish(
  specs: readonly string[],
  addresses: readonly string[],
): PortBinding[] {
  const binds = [
    ...new Set(
      addresses
        .flatMap((a) => a.split(","))
        .map((a) => a.trim())
        .filter(Boolean),
    ),
  ];
  const defaults = (binds.length > 0 ? binds : ["127.0.0.1"]).map(checkAddress);
  const out: PortBinding[] = [];
  for (const spec of specs) {
    const parts = spec.split(":");
    const remote = port(parts.at(-1) ?? "", spec, false);
    if (parts.length === 1) {
      for (const address of defaults) out.push({ address, localPort: remote, remotePort: remote });
    } else if (parts.length === 2) {
      const local = port(parts[0] ?? "", spec, true);
      for (const address of defaults) out.push({ address, localPort: local, remotePort: remote });
    } else if (parts.length === 3) {
      out.push({
        address: checkAddress(parts[0] ?? ""),
        localPort: port(parts[1] ?? "", spec, true),
        remotePort: remote,
      });
    } else {
      throw new ErrInvalidConfig(`invalid port forward "${spec}": expected [ADDR:]LOCAL:REMOTE`);
    }
  }
  const seen = new Set<string>();
  for (const b of out) {
    const key = `${b.address}:${b.localPort}`;
    if (b.localPort !== 0 && seen.has(key))
      throw new ErrInvalidConfig(`port ${key} is forwarded twice`);
    seen.add(key);
  }
  return out;
}
