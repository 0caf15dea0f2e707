/** The PATH a command gets when neither the image nor the caller sets one (Docker's default). */
export const DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

export interface ExecEnvLayers {
  /** The image's ENV (lowest precedence). */
  image?: Readonly<Record<string, string>>;
  /** The sandbox-wide env from create options. */
  sandbox?: Readonly<Record<string, string>>;
  /** Set by the network (CA variables, secret placeholders): over the image's and sandbox's. */
  network?: Readonly<Record<string, string>>;
  /** Per-command env (highest precedence). */
  command?: Readonly<Record<string, string>>;
  hostname: string;
  tty: boolean;
}

/**
 * The complete environment for one command, as `KEY=VALUE` strings. The guest agent adds
 * HOME/USER/LOGNAME from the resolved user unless they are given here.
 */
export function composeExecEnv(layers: ExecEnvLayers): string[] {
  const env: Record<string, string> = {
    PATH: DEFAULT_PATH,
    HOSTNAME: layers.hostname,
    ...(layers.tty ? { TERM: "xterm-256color" } : {}),
    ...layers.image,
    ...layers.sandbox,
    ...layers.network,
    ...layers.command,
  };
  return Object.entries(env).map(([k, v]) => `${k}=${v}`);
}

/** A string runs through `/bin/sh -c` (so pipes and globs work); an array is an argv. */
export function commandArgv(command: string | readonly string[]): string[] {
  if (typeof command === "string") return ["/bin/sh", "-c", command];
  if (command.length === 0) throw new RangeError("command must not be empty");
  return [...command];
}
