/**
 * Long-lived sandboxes: the supervisor process that owns one (its entry point is main.ts),
 * its control socket, starting one detached, attaching to one by id, and forwarding host
 * ports to it.
 */
export { supervise, type SuperviseRequest, type SuperviseHooks } from "./supervise.js";
export { startSupervisor } from "./detach.js";
export { connectSupervised, unixConnector } from "./connect.js";
export { forwardingServer, joinTcp, listenTcp, PortPublisher } from "./port-forward.js";
export type { EchoStreams } from "./logged-command.js";
export { supervisedUsage } from "./usage.js";
