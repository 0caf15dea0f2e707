/**
 * `wheellock policy suggest --events FILE`: the smallest allowlist that would have let a
 * recorded run through (docs/OBSERVE.md). stdout gets the `--allow-host` value alone, so it
 * can be pasted or substituted; what else the run needed goes to stderr.
 */
import { Command } from "commander";
import { readFile } from "node:fs/promises";
import { ErrInvalidConfig } from "../errors.js";
import { parseEventLines, suggestAllowlist } from "../observe/index.js";

async function readEvents(path: string): Promise<unknown[]> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
    throw new ErrInvalidConfig(`--events: cannot read ${path}: ${code}`);
  }
  const { events, badLines } = parseEventLines(text);
  if (badLines > 0)
    process.stderr.write(`wheellock: skipped ${badLines} lines that are not JSON\n`);
  return events;
}

function suggest(): Command {
  return new Command("suggest")
    .description("print the minimal allowlist that would have allowed a recorded run")
    .requiredOption(
      "--events <file>",
      "events of the run (run --events FILE, e.g. with --network-audit)",
    )
    .option("--json", "print every entry with the hosts it covers, as JSON")
    .action(async (flags: { events: string; json?: boolean }) => {
      const policy = suggestAllowlist(await readEvents(flags.events));
      if (flags.json) {
        process.stdout.write(`${JSON.stringify(policy, null, 2)}\n`);
        return;
      }
      if (policy.allowHosts.length === 0 && policy.allowTcp.length === 0)
        process.stderr.write(
          `wheellock: no requests in ${flags.events} (${policy.eventsRead} network events)\n`,
        );
      if (policy.allowHosts.length > 0) process.stdout.write(`${policy.allowHosts.join(",")}\n`);
      if (policy.allowTcp.length > 0)
        process.stderr.write(`wheellock: raw TCP too: --allow-tcp ${policy.allowTcp.join(",")}\n`);
    });
}

export function policyCommand(): Command {
  return new Command("policy").addCommand(suggest());
}
