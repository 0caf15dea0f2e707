/**
 * The type of one `networkHooks` entry. It belongs to the HTTP policy (src/net/http-policy),
 * which validates and runs the rules; the config only carries them through.
 */
export type { HookRule as NetworkHookRule } from "../net/index.js";
