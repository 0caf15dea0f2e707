/**
 * `wheellock --help`, written from the command table without loading commander or any
 * command's module (a command's own `--help` comes from commander, once its module is loaded).
 */
import { COMMANDS } from "./commands.js";

export const PROGRAM_SUMMARY = "run untrusted code in throwaway micro-VMs under host-side policy";

/** The same layout as commander's help, so the top level and a command's help look alike. */
export function topLevelHelp(): string {
  const options: [string, string][] = [
    ["-v, --version", "output the version number"],
    ["-h, --help", "display help for command"],
  ];
  const commands: [string, string][] = [
    ...COMMANDS.map((c): [string, string] => [[c.name, ...c.aliases].join("|"), c.summary]),
    ["help [command]", "display help for command"],
  ];
  const width = Math.max(...[...options, ...commands].map(([term]) => term.length)) + 2;
  const rows = (list: [string, string][]): string =>
    list.map(([term, text]) => `  ${term.padEnd(width)}${text}\n`).join("");
  return [
    "Usage: wheellock [options] [command]\n",
    `${PROGRAM_SUMMARY}\n`,
    `Options:\n${rows(options)}`,
    `Commands:\n${rows(commands)}`,
    "Run `wheellock COMMAND --help` for the command's arguments and flags.\n",
  ].join("\n");
}
