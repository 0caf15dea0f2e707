import { Command } from "commander";
import { ErrInvalidConfig } from "../errors.js";

/** Subcommands and their flags, read from the program so completion never goes stale. */
function describe(program: Command): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const cmd of program.commands) {
    const flags = cmd.options
      .filter((o) => !o.hidden)
      .flatMap((o) => [o.short, o.long].filter((f): f is string => !!f));
    for (const name of [cmd.name(), ...cmd.aliases()]) out.set(name, [...flags, "--help"]);
  }
  return out;
}

function bash(commands: Map<string, string[]>): string {
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
    exec|inspect|kill|rm|remove|log|logs|gc|port-forward)
      COMPREPLY=($(compgen -W "$(wheellock list --json 2>/dev/null | sed -n 's/.*"id": "\\(vm-[0-9a-f]*\\)".*/\\1/p')" -- "$cur")) ;;
  esac
}
complete -F _wheellock wheellock
`;
}

function zsh(commands: Map<string, string[]>): string {
  return `#compdef wheellock
# wheellock zsh completion: source <(wheellock completion zsh)
autoload -U +X bashcompinit && bashcompinit
${bash(commands)}`;
}

function fish(commands: Map<string, string[]>): string {
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

export function completionCommand(program: Command): Command {
  return new Command("completion")
    .description("print a shell completion script (bash, zsh or fish)")
    .argument("<shell>", "bash, zsh or fish")
    .action((shell: string) => {
      const commands = describe(program);
      const script =
        shell === "bash"
          ? bash(commands)
          : shell === "zsh"
            ? zsh(commands)
            : shell === "fish"
              ? fish(commands)
              : undefined;
      if (script === undefined)
        throw new ErrInvalidConfig(`unsupported shell "${shell}" (bash, zsh or fish)`);
      process.stdout.write(script);
    });
}
