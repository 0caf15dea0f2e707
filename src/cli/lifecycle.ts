/** The commands of long-lived sandboxes, in the order `--help` lists them. */
import type { Command } from "commander";
import { allowListCommand } from "./allow-list.js";
import { cpCommand } from "./cp.js";
import { diagnoseCommand } from "./diagnose.js";
import { execCommand } from "./exec.js";
import { gcCommand, pruneCommand, rmCommand } from "./gc.js";
import { killCommand } from "./kill.js";
import { inspectCommand, listCommand } from "./list.js";
import { logCommand } from "./log.js";
import { portForwardCommand } from "./port-forward.js";

export function lifecycleCommands(): Command[] {
  return [
    execCommand(),
    listCommand(),
    inspectCommand(),
    killCommand(),
    rmCommand(),
    pruneCommand(),
    gcCommand(),
    logCommand(),
    portForwardCommand(),
    allowListCommand(),
    cpCommand(),
    diagnoseCommand(),
  ];
}
