/** IPv4 addresses are carried as unsigned 32-bit numbers; MACs as 6-byte Buffers. */

export function parseIpv4(text: string): number | undefined {
  const parts = text.split(".");
  if (parts.length !== 4) return undefined;
  let value = 0;
  for (const part of parts) {
    if (!/^(0|[1-9][0-9]{0,2})$/.test(part)) return undefined;
    const n = Number(part);
    if (n > 255) return undefined;
    value = value * 256 + n;
  }
  return value >>> 0;
}

export function formatIpv4(ip: number): string {
  return [ip >>> 24, (ip >>> 16) & 0xff, (ip >>> 8) & 0xff, ip & 0xff].join(".");
}

export function formatMac(mac: Buffer): string {
  return [...mac].map((b) => b.toString(16).padStart(2, "0")).join(":");
}

/**
 * The virtual link's addressing. The guest gets a static address (the agent configures eth0
 * from the kernel command line) because the NIC driver is a module loaded from the initramfs,
 * after the kernel's own `ip=` autoconfiguration has already run.
 */
export interface LinkAddressing {
  gatewayIp: number;
  guestIp: number;
  prefixLength: number;
  gatewayMac: Buffer;
  mtuBytes: number;
}

export const DEFAULT_MTU_BYTES = 65520;

export function defaultAddressing(): LinkAddressing {
  return {
    gatewayIp: parseIpv4("10.0.2.2") ?? 0,
    guestIp: parseIpv4("10.0.2.15") ?? 0,
    prefixLength: 24,
    // Locally administered unicast MAC, so it can never collide with a real vendor's.
    gatewayMac: Buffer.from([0x52, 0x55, 0x0a, 0x00, 0x02, 0x02]),
    mtuBytes: DEFAULT_MTU_BYTES,
  };
}
