/** One entry of the CLI's command table (commands.ts). */
import type { Command } from "commander";

export interface CommandEntry {
  readonly name: string;
  readonly aliases: readonly string[];
  /** One line, for `wheellock --help` and the command's own help. */
  readonly summary: string;
  /** Its first argument is a sandbox id: shell completion offers the ids `list` knows. */
  readonly takesSandboxId: boolean;
  /** Imports the command's module; the function it returns builds the commander Command. */
  readonly load: () => Promise<() => Command>;
}
