#!/usr/bin/env node
/**
 * The supervisor's own entry point (`run -d`, `Sandbox.startDetached`): reads a
 * `SupervisorStart` as JSON on stdin — never argv, where secrets would be visible to every
 * user — supervises the sandbox, and says `ready <id>` on stdout once it runs. Its early stderr
 * goes to a file the starting process reads if the start fails; once running, that file moves
 * into the sandbox dir as `supervisor.log`.
 */
import { renameSync } from "node:fs";
import { join } from "node:path";
import { WheellockError } from "../errors.js";
import { sandboxDir } from "../state/index.js";
import {
  readSupervisorStart,
  READY_PREFIX,
  startFailedLine,
  SUPERVISOR_LOG_ENV,
} from "./start-request.js";
import { supervise } from "./supervise.js";

async function main(): Promise<number> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  const request = readSupervisorStart(Buffer.concat(chunks).toString("utf8"));
  return supervise(request, {
    onReady: (record) => {
      const errLog = process.env[SUPERVISOR_LOG_ENV];
      if (errLog) renameSync(errLog, join(sandboxDir(record.id), "supervisor.log"));
      ready = true;
      process.stdout.write(`${READY_PREFIX}${record.id}\n`);
      // The process that reads this goes away: later writes must not kill the supervisor.
      process.stdout.on("error", () => undefined);
    },
  });
}

let ready = false;

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    const message = err instanceof Error ? err.message : String(err);
    process.stderr.write(`wheellock: ${message}\n`);
    // The starting process still waits: it throws this error with its own class and code.
    if (!ready) {
      process.stdout.on("error", () => undefined);
      process.stdout.write(startFailedLine(err));
    }
    if (
      process.env.WHEELLOCK_DEBUG === "1" &&
      err instanceof Error &&
      !(err instanceof WheellockError)
    )
      process.stderr.write(`${err.stack ?? ""}\n`);
    process.exit(1);
  },
);
