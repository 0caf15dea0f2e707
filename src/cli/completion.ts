import { Command } from "commander";
import { ErrInvalidConfig } from "../errors.js";
import type { CommandEntry } from "./command-entry.js";

type LoadCommand = (entry: CommandEntry) => Promise<Command>;

interface Described {
  /** Every command name and alias, with its flags. */
  flags: Map<string, string[]>;
  /** The names and aliases of the commands whose first argument is a sandbox id. */
  takeSandboxId: string[];
}

/** Commands and their flags, read from the command table so completion never goes stale. */
async function describe(
  commands: readonly CommandEntry[],
  loadCommand: LoadCommand,
): Promise<Described> {
  const flags = new Map<string, string[]>();
  for (const entry of commands) {
    const cmd = await loadCommand(entry);
    const own = cmd.options
      .filter((o) => !o.hidden)
      .flatMap((o) => [o.short, o.long].filter((f): f is string => !!f));
    for (const name of [cmd.name(), ...cmd.aliases()]) flags.set(name, [...own, "--help"]);
  }
  const takeSandboxId = commands
    .filter((c) => c.takesSandboxId)
    .flatMap((c) => [c.name, ...c.aliases]);
  return { flags, takeSandboxId };
}

function bash({ flags: commands, takeSandboxId }: Described): string {
  const cases = [...commands]
    .map(([name, flags]) => `    ${name}) opts="${flags.join(" ")}" ;;`)
    .join("\n");
  return `# wheellock bash completion: source <(wheellock completion bash)
_wheellock() {
  local cur=\${COMP_WORDS[COMP_CWORD]} sub=\${COMP_WORDS[1]} opts
  if [ "$COMP_CWORD" -eq 1 ]; then
    COMPREPLY=($(compgen -W "${[...commands.keys()].join(" ")}" -- "$cur")); return
  fi
  case "$sub" in
${cases}
  esac
  if [[ "$cur" == -* ]]; then COMPREPLY=($(compgen -W "$opts" -- "$cur")); return; fi
  case "$sub" in
    ${takeSandboxId.join("|")})
      COMPREPLY=($(compgen -W "$(wheellock list --json 2>/dev/null | sed -n 's/.*"id": "\\(vm-[0-9a-f]*\\)".*/\\1/p')" -- "$cur")) ;;
  esac
}
complete -F _wheellock wheellock
`;
}

function zsh(described: Described): string {
  return `#compdef wheellock
# wheellock zsh completion: source <(wheellock completion zsh)
autoload -U +X bashcompinit && bashcompinit
${bash(described)}`;
}

function fish({ flags: commands }: Described): string {
  const lines = [
    `# wheellock fish completion: wheellock completion fish | source`,
    "complete -c wheellock -f",
  ];
  for (const [name, flags] of commands) {
    lines.push(`complete -c wheellock -n "__fish_use_subcommand" -a ${name}`);
    for (const flag of flags.filter((f) => f.startsWith("--"))) {
      lines.push(
        `complete -c wheellock -n "__fish_seen_subcommand_from ${name}" -l ${flag.slice(2)}`,
      );
    }
  }
  return `${lines.join("\n")}\n`;
}

const SHELLS = new Map([
  ["bash", bash],
  ["zsh", zsh],
  ["fish", fish],
]);

export function completionCommand(
  commands: readonly CommandEntry[],
  loadCommand: LoadCommand,
): Command {
  return new Command("completion")
    .argument("<shell>", "bash, zsh or fish")
    .action(async (shell: string) => {
      const write = SHELLS.get(shell);
      if (write === undefined)
        throw new ErrInvalidConfig(`unsupported shell "${shell}" (bash, zsh or fish)`);
      process.stdout.write(write(await describe(commands, loadCommand)));
    });
}
