/** The SDK: `Sandbox.create/connect/startDetached/list/pool` and the reference's helpers. */
export { Sandbox, type CreateInternals, type DetachedStartOptions } from "./sandbox.js";
