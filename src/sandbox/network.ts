import {
  formatIpv4,
  OpenUpstream,
  type LinkAddressing,
  type NetworkLinkOptions,
} from "../net/index.js";
import type { ResolvedSandboxConfig } from "../config/index.js";

/**
 * Kernel command-line words the guest agent reads to configure eth0: address/prefix, gateway
 * (also the DNS server) and MTU. Static addressing: the NIC driver is a module loaded by the
 * agent, after the kernel's own `ip=` autoconfiguration would have run.
 */
export function guestNetworkArgs(a: LinkAddressing): string[] {
  return [
    `wheellock.net=${formatIpv4(a.guestIp)}/${a.prefixLength},${formatIpv4(a.gatewayIp)},${a.mtuBytes}`,
  ];
}

/** Open mode (no allowlist yet): public destinations relayed, private ones per the config. */
export function networkOptions(config: ResolvedSandboxConfig): NetworkLinkOptions | undefined {
  if (config.noNetwork) return undefined;
  return {
    upstream: new OpenUpstream({
      allowPrivateHosts: config.allowPrivateHosts,
      resolveOverrides: new Map(Object.entries(config.resolveOverrides)),
    }),
  };
}
