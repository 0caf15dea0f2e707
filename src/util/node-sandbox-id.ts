/**
 * Sandbox ids across nodes: `vm-1a2b3c4d@node-name`, the local id and the node that runs it,
 * so an id alone finds its node among many. A node answers to its own node's ids and to bare
 * local ids.
 */
import { isSandboxId } from "./sandbox-id.js";

/** Node names: lower-case letters, digits, inner hyphens and dots (a DNS label's characters). */
const NODE_ID_PATTERN = /^[a-z0-9](?:[a-z0-9.-]{0,61}[a-z0-9])?$/;

export function isNodeId(value: string): boolean {
  return NODE_ID_PATTERN.test(value);
}

export function nodeSandboxId(localId: string, nodeId: string): string {
  return `${localId}@${nodeId}`;
}

/** `{ localId, nodeId }` of a full or bare id; undefined when malformed. */
export function parseNodeSandboxId(
  text: string,
): { localId: string; nodeId: string | undefined } | undefined {
  const at = text.indexOf("@");
  const localId = at < 0 ? text : text.slice(0, at);
  const nodeId = at < 0 ? undefined : text.slice(at + 1);
  if (!isSandboxId(localId)) return undefined;
  if (nodeId !== undefined && !isNodeId(nodeId)) return undefined;
  return { localId, nodeId };
}
