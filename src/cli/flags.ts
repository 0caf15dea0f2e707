import { InvalidArgumentError } from "commander";

/** Collects a repeatable flag (`-e A=1 -e B=2`) into an array, in order. */
export function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}

/** Integer flag parser that rejects `12abc`, `1e3`, `-1` and friends. */
export function positiveInteger(name: string): (value: string) => number {
  return (value) => {
    if (!/^\d+$/.test(value.trim())) {
      throw new InvalidArgumentError(`${name} must be a positive integer, got "${value}"`);
    }
    return Number.parseInt(value, 10);
  };
}

/** Decimal number flag parser (`--cpus 0.5`). */
export function positiveNumber(name: string): (value: string) => number {
  return (value) => {
    if (!/^\d+(\.\d+)?$/.test(value.trim())) {
      throw new InvalidArgumentError(`${name} must be a positive number, got "${value}"`);
    }
    return Number.parseFloat(value);
  };
}

export function oneOf<T extends string>(name: string, choices: readonly T[]): (value: string) => T {
  return (value) => {
    if (!(choices as readonly string[]).includes(value)) {
      throw new InvalidArgumentError(
        `${name} must be one of ${choices.join(", ")}, got "${value}"`,
      );
    }
    return value as T;
  };
}

/** `--rm=false` / `--rm=true` to the flags commander knows, up to the command's `--`. */
export function normalizeRmFlag(argv: readonly string[]): string[] {
  const end = argv.indexOf("--");
  return argv.map((arg, i) => {
    if (end >= 0 && i > end) return arg;
    if (arg === "--rm=false" || arg === "--rm=0") return "--no-rm";
    if (arg === "--rm=true" || arg === "--rm=1") return "--rm";
    return arg;
  });
}
