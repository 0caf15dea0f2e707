/**
 * Files a caller names on a node whose content the sandbox uses (a policy script, an upstream
 * CA): the node opens each once and passes its content on, so the file that was checked is
 * the file that is used. A path checked and then handed to the sandbox to open would let
 * whoever can write under the opened directory swap it (a symlink to any file the `serve`
 * user can read) in between.
 */
import { closeSync, constants, fstatSync, openSync, readFileSync, readlinkSync } from "node:fs";
import { basename } from "node:path";
import { MAX_POLICY_SCRIPT_BYTES, type PolicyScriptSource } from "../config/index.js";
import { ErrInvalidConfig } from "../errors.js";
import { onNode, underRoots, writableOf, type HostPathRoots } from "./node-options.js";

/**
 * A policy script runs in the node's own process (as the `serve` user): it is taken only from
 * a root callers cannot write (`--host-path-ro`), never from a `--host-path` root, which a
 * read-write mount or the files API can write through. `writable`: the roots callers may
 * write (default: all of `roots`).
 */
export function readNodePolicyScript(
  value: unknown,
  roots: HostPathRoots,
  writable?: readonly string[],
): PolicyScriptSource {
  const { path, real, text } = readNodeFile("policyScript", value, roots, MAX_POLICY_SCRIPT_BYTES);
  if (roots !== "any" && underRoots(real, writableOf(roots, writable)))
    throw new ErrInvalidConfig(
      `policyScript ${JSON.stringify(value)}: lies in a --host-path directory callers can ` +
        "write (a read-write mount, the files API), so the node will not run it: its owner " +
        "can open a directory read-only for policy scripts with serve --host-path-ro DIR",
    );
  return { name: basename(path), text };
}

/** The checked file's content, read through the descriptor that was checked. */
export function readNodeFile(
  field: string,
  value: unknown,
  roots: HostPathRoots,
  maxBytes: number,
): { path: string; real: string; text: string } {
  const path = onNode(field, value, roots);
  if (typeof path !== "string")
    throw new ErrInvalidConfig(`${field}: a path on the node must be a string`);
  const fail = (why: string): never => {
    throw new ErrInvalidConfig(`${field} ${JSON.stringify(value)}: ${why}`);
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
    const real = readlinkSync(`/proc/self/fd/${fd}`);
    if (roots !== "any" && !underRoots(real, roots))
      fail("is outside the directories this node opens to callers");
    const stat = fstatSync(fd);
    if (!stat.isFile()) fail("not a regular file");
    if (stat.size > maxBytes) fail(`larger than ${maxBytes / (1024 * 1024)} MiB`);
    return { path, real, text: readFileSync(fd, "utf8") };
  } finally {
    closeSync(fd);
  }
}
