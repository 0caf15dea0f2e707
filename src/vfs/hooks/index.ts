/** File hooks and events: a provider wrapper, its rule types, and their checks. */
export { HookedProvider } from "./hooked-provider.js";
export { compileFileHooks } from "./rules.js";
export type {
  FileErrnoName,
  FileEventInfo,
  FileHookRule,
  FileHookVerdict,
  FileOp,
  FileOpInfo,
} from "./types.js";
export { FILE_OPS } from "./types.js";
