import { InvalidArgumentError } from "commander";

/** Collects a repeatable flag (`-e A=1 -e B=2`) into an array, in order. */
export function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}

/**
 * Integer flag parser that rejects `12abc`, `1e3`, `-1` and friends, and values under `min`
 * (0 by default: some flags give 0 a meaning; a size or count that cannot be 0 passes 1).
 */
export function positiveInteger(name: string, min = 0): (value: string) => number {
  return (value) => {
    if (!/^\d+$/.test(value.trim())) {
      throw new InvalidArgumentError(`${name} must be a positive integer, got "${value}"`);
    }
    const n = Number.parseInt(value, 10);
    if (n < min) throw new InvalidArgumentError(`${name} must be at least ${min}, got "${value}"`);
    return n;
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
