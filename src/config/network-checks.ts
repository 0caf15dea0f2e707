import { ErrInvalidConfig } from "../errors.js";
import { checkBoolean } from "./field-checks.js";
import type { ResolvedSandboxConfig, SandboxOptions } from "./options.js";
import {
  anyInterceptOption,
  checkInterceptOptions,
  checkNameToIpv4,
  type InterceptFields,
} from "./intercept-checks.js";

type NetworkFields = Pick<
  ResolvedSandboxConfig,
  "noNetwork" | "allowPrivateHosts" | "resolveOverrides"
> &
  InterceptFields;

/** The network fields of the resolved config; policy options with `noNetwork` are an error. */
export function checkNetworkOptions(opts: SandboxOptions): NetworkFields {
  const noNetwork =
    opts.noNetwork === undefined ? false : checkBoolean("noNetwork", opts.noNetwork);
  const allowPrivateHosts =
    opts.allowPrivateHosts === undefined
      ? false
      : checkBoolean("allowPrivateHosts", opts.allowPrivateHosts);
  const resolveOverrides =
    opts.resolveOverrides === undefined
      ? {}
      : checkNameToIpv4("resolveOverrides", opts.resolveOverrides);
  const intercept = checkInterceptOptions(opts);
  if (
    noNetwork &&
    (allowPrivateHosts || Object.keys(resolveOverrides).length > 0 || anyInterceptOption(intercept))
  )
    throw new ErrInvalidConfig("noNetwork cannot be combined with network policy options");
  // Open mode never terminates TLS, so an extra upstream CA would be silently ignored.
  if (
    !noNetwork &&
    intercept.upstreamCa.length + intercept.upstreamCaPems.length > 0 &&
    !intercept.networkIntercept
  )
    throw new ErrInvalidConfig(
      "upstreamCa applies only in intercept mode (give allowedHosts, secrets or networkIntercept)",
    );
  return {
    noNetwork,
    allowPrivateHosts,
    resolveOverrides: Object.freeze(resolveOverrides),
    ...intercept,
  };
}
