import { isIPv4 } from "node:net";
import { ErrInvalidConfig } from "../errors.js";
import { checkBoolean } from "./field-checks.js";
import type { ResolvedSandboxConfig, SandboxOptions } from "./options.js";
import {
  anyInterceptOption,
  checkInterceptOptions,
  HOST_NAME_RE,
  type InterceptFields,
} from "./intercept-checks.js";

type NetworkFields = Pick<
  ResolvedSandboxConfig,
  "noNetwork" | "allowPrivateHosts" | "resolveOverrides"
> &
  InterceptFields;

function checkResolveOverrides(value: unknown): Record<string, string> {
  if (typeof value !== "object" || value === null || Array.isArray(value))
    throw new ErrInvalidConfig("resolveOverrides must be an object of name -> IPv4 address");
  const out: Record<string, string> = {};
  for (const [rawName, ip] of Object.entries(value)) {
    const name = rawName.toLowerCase().replace(/\.$/, "");
    if (!HOST_NAME_RE.test(name))
      throw new ErrInvalidConfig(`resolveOverrides: ${JSON.stringify(rawName)} is not a host name`);
    if (typeof ip !== "string" || !isIPv4(ip))
      throw new ErrInvalidConfig(`resolveOverrides: ${name} must map to an IPv4 address`);
    out[name] = ip;
  }
  return out;
}

/** The network fields of the resolved config; policy options with `noNetwork` are an error. */
export function checkNetworkOptions(opts: SandboxOptions): NetworkFields {
  const noNetwork =
    opts.noNetwork === undefined ? false : checkBoolean("noNetwork", opts.noNetwork);
  const allowPrivateHosts =
    opts.allowPrivateHosts === undefined
      ? false
      : checkBoolean("allowPrivateHosts", opts.allowPrivateHosts);
  const resolveOverrides =
    opts.resolveOverrides === undefined ? {} : checkResolveOverrides(opts.resolveOverrides);
  const intercept = checkInterceptOptions(opts);
  if (
    noNetwork &&
    (allowPrivateHosts || Object.keys(resolveOverrides).length > 0 || anyInterceptOption(intercept))
  )
    throw new ErrInvalidConfig("noNetwork cannot be combined with network policy options");
  return {
    noNetwork,
    allowPrivateHosts,
    resolveOverrides: Object.freeze(resolveOverrides),
    ...intercept,
  };
}
