/** Long-lived sandboxes: the supervisor process, its control socket, and clients of it. */
export { supervise, type SuperviseRequest } from "./supervise.js";
export { startDetached, SUPERVISOR_FLAG, SUPERVISOR_LOG_ENV, READY_PREFIX } from "./detach.js";
export { RemoteSandbox } from "./client.js";
export {
  startDetachedSandbox,
  OPTIONS_STDIN_FLAG,
  type DetachedStartOptions,
} from "./start-detached.js";
