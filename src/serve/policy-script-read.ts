/**
 * `configure`'s policy script on a node: the caller names a file on the node; the node opens
 * it once and passes its content on, so the file that was checked is the file that runs. A
 * path checked and then handed to the sandbox to open would let whoever can write under the
 * opened directory swap it (a symlink to any file the `serve` user can read) in between.
 */
import { closeSync, constants, fstatSync, openSync, readFileSync, readlinkSync } from "node:fs";
import { basename } from "node:path";
import { MAX_POLICY_SCRIPT_BYTES, type PolicyScriptSource } from "../config/index.js";
import { ErrInvalidConfig } from "../errors.js";
import { onNode, underRoots, type HostPathRoots } from "./node-options.js";

export function readNodePolicyScript(value: unknown, roots: HostPathRoots): PolicyScriptSource {
  const path = onNode("policyScript", value, roots);
  if (typeof path !== "string")
    throw new ErrInvalidConfig("policyScript: a path on the node must be a string");
  const fail = (why: string): never => {
    throw new ErrInvalidConfig(`policyScript ${JSON.stringify(value)}: ${why}`);
  };
  let fd: number;
  try {
    // NOFOLLOW: the last component swapped for a symlink after the check is refused;
    // NONBLOCK: a FIFO put there cannot hold the node's event loop.
    fd = openSync(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch (err) {
    return fail(`cannot open it (${(err as NodeJS.ErrnoException).code ?? "error"})`);
  }
  try {
    // Where the opened file really is: a parent directory swapped for a symlink between the
    // check and the open shows here.
    if (roots !== "any" && !underRoots(readlinkSync(`/proc/self/fd/${fd}`), roots))
      fail("is outside the directories this node opens to callers");
    const stat = fstatSync(fd);
    if (!stat.isFile()) fail("not a regular file");
    if (stat.size > MAX_POLICY_SCRIPT_BYTES) fail("larger than 1 MiB");
    return { name: basename(path), text: readFileSync(fd, "utf8") };
  } finally {
    closeSync(fd);
  }
}
