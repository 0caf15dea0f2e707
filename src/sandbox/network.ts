/**
 * A sandbox's network, decided before the VM starts: none, open mode, or intercept mode with its
 * exec env.
 */
import { promises as dnsPromises } from "node:dns";
import { CmdlineKey, kernelArg } from "../channel/index.js";
import {
  defaultAddressing,
  EgressPolicy,
  formatIpv4,
  OpenUpstream,
  type LinkAddressing,
  type NetworkLinkOptions,
} from "../net/index.js";
import type { ConfigurePlan, SandboxPlan } from "../config/index.js";
import { caEnv, type GuestNetworkSetup } from "./guest-network-setup.js";
import type { SandboxObserver } from "./observer.js";

/**
 * Kernel command-line words the guest agent reads to configure eth0: address/prefix, gateway
 * (also the DNS server) and MTU. Static addressing: the NIC driver is a module loaded by the
 * agent, after the kernel's own `ip=` autoconfiguration would have run.
 */
export function guestNetworkArgs(a: LinkAddressing): string[] {
  return [
    kernelArg(
      CmdlineKey.Net,
      `${formatIpv4(a.guestIp)}/${a.prefixLength},${formatIpv4(a.gatewayIp)},${a.mtuBytes}`,
    ),
  ];
}

/** Everything one sandbox's network needs, decided before the VM starts. */
export interface SandboxNetwork {
  /** Undefined with `noNetwork`: no NIC at all. */
  link: NetworkLinkOptions | undefined;
  /** Intercept mode only: the allowlist that `allowHosts`/`disallowHosts` change. */
  egress: EgressPolicy | undefined;
  /**
   * For every command (CA variables, secret placeholders), over the image's and config's.
   * Replaced (never changed in place) when `configure` adds secrets.
   */
  execEnv: Readonly<Record<string, string>>;
  /** Intercept mode only: adds secrets and allowlist entries, replaces the policy script. */
  configure?(change: ConfigurePlan): Promise<void>;
  guestSetup: GuestNetworkSetup;
  /** Releases what outlives the link (the proxy's keep-alive upstream connections). */
  close(): void;
}

/** A resolver that asks only `servers`; undefined means the host's own (getaddrinfo). */
export function resolverFor(
  servers: readonly string[],
): ((name: string) => Promise<string[]>) | undefined {
  if (servers.length === 0) return undefined;
  const resolver = new dnsPromises.Resolver({ timeout: 3000, tries: 2 });
  resolver.setServers([...servers]);
  return (name) => resolver.resolve4(name);
}

/**
 * The names the intercept proxy dials without a resolver. The gateway address stands for the
 * host in both modes (docs/NETWORK.md): the stack dials a flow to it on host loopback, and the
 * proxy does the same for a request addressed to it (`Host: 10.0.2.2:PORT`, what matchlock's
 * SDKs send to reach a server on the host), still only if the allowlist names it and private
 * hosts are allowed (127.0.0.1 is private). Without this the proxy dialed 10.0.2.2 itself: 502.
 * A user's own override of the literal wins.
 */
export function interceptResolveOverrides(
  overrides: Readonly<Record<string, string>>,
): Map<string, string> {
  const gateway = formatIpv4(defaultAddressing().gatewayIp);
  return new Map([[gateway, "127.0.0.1"], ...Object.entries(overrides)]);
}

/**
 * Open mode (no policy options): public destinations relayed, private ones per the config.
 * Intercept mode: the proxy with the user's allowlist, the local CA and the HTTP policy.
 */
export async function prepareNetwork(
  config: SandboxPlan,
  observer: SandboxObserver,
): Promise<SandboxNetwork> {
  const guestSetup: GuestNetworkSetup = { caPem: undefined, addHosts: config.addHosts };
  const nothing = (): void => undefined;
  if (config.noNetwork)
    return { link: undefined, egress: undefined, execEnv: {}, guestSetup, close: nothing };
  const resolve4 = resolverFor(config.dnsServers);
  const resolveOverrides = new Map(Object.entries(config.resolveOverrides));
  if (!config.networkIntercept) {
    return {
      link: {
        upstream: observer.meterUpstream(
          new OpenUpstream({
            allowPrivateHosts: config.allowPrivateHosts,
            resolveOverrides,
            ...(resolve4 ? { resolve4 } : {}),
          }),
        ),
      },
      egress: undefined,
      execEnv: {},
      guestSetup,
      close: nothing,
    };
  }
  const egress = new EgressPolicy({
    allowedHosts: config.allowedHosts,
    // Audit mode with no list records every host: "what would I need to allow?".
    denyWhenEmpty: config.denyAllHosts || config.networkAudit,
    allowPrivateHosts: config.allowPrivateHosts,
  });
  // Loaded only when needed: the proxy, TLS and policy code (and tsx for policy scripts) cost
  // start-up time that open-mode sandboxes should not pay.
  const { createInterceptUpstream } = await import("./intercept.js");
  const intercept = await createInterceptUpstream({
    plan: config,
    egress,
    resolveOverrides: interceptResolveOverrides(config.resolveOverrides),
    ...(resolve4 ? { resolve4 } : {}),
    onEvent: (event) => observer.networkEvent(event),
    hooks: observer.interceptHooks(),
  });
  observer.onFinish((outcome) => intercept.upstream.endInFlight(outcome));
  const network: SandboxNetwork = {
    link: { upstream: observer.meterUpstream(intercept.upstream) },
    egress,
    execEnv: { ...caEnv(), ...intercept.placeholders },
    guestSetup: { ...guestSetup, caPem: intercept.caPem },
    close: () => intercept.close(),
    configure: async (change) => {
      await intercept.configure(change);
      network.execEnv = { ...caEnv(), ...intercept.placeholders };
    },
  };
  return network;
}
