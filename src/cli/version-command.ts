import { Command } from "commander";
import { versionLine } from "./version.js";

/** `wheellock version` with flags or arguments (the bare command never loads this: main.ts). */
export function versionCommand(): Command {
  return new Command("version").action(() => {
    process.stdout.write(versionLine());
  });
}
