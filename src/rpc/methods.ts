/**
 * Every method of the reference's protocol (reference/matchlock-rpc.md §5) and how the session
 * runs it: `barrier` methods run alone (later requests wait for them), `concurrent` ones run
 * side by side, `cancel` and the `input` messages are handled at once in arrival order.
 */
import type { MethodHandler } from "./context.js";
import { exec, execStream } from "./exec.js";
import { execPipe, execTty } from "./exec-interactive.js";
import { listFiles, readFile, writeFile } from "./files.js";
import { close, create } from "./lifecycle.js";
import { log, logStream } from "./logs.js";
import { allowListAdd, allowListDelete, portForward } from "./network.js";

export type MethodKind = "barrier" | "concurrent";

export type MethodSpec =
  | { readonly kind: MethodKind; readonly handler: MethodHandler }
  | { readonly kind: "cancel" }
  | { readonly kind: "input" };

const concurrent = (handler: MethodHandler): MethodSpec => ({ kind: "concurrent", handler });
const input: MethodSpec = { kind: "input" };

export const METHODS: Readonly<Record<string, MethodSpec>> = {
  create: { kind: "barrier", handler: create },
  close: { kind: "barrier", handler: close },
  cancel: { kind: "cancel" },
  exec: concurrent(exec),
  exec_stream: concurrent(execStream),
  exec_pipe: concurrent(execPipe),
  exec_tty: concurrent(execTty),
  "exec_pipe.stdin": input,
  "exec_pipe.stdin_eof": input,
  "exec_tty.stdin": input,
  "exec_tty.stdin_eof": input,
  "exec_tty.resize": input,
  write_file: concurrent(writeFile),
  read_file: concurrent(readFile),
  list_files: concurrent(listFiles),
  log: concurrent(log),
  log_stream: concurrent(logStream),
  allow_list_add: concurrent(allowListAdd),
  allow_list_delete: concurrent(allowListDelete),
  port_forward: concurrent(portForward),
};
