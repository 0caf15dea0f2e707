import { ErrInvalidConfig } from "../errors.js";

/**
 * Parsers for numeric CLI flag strings. `Number()` alone would accept `""`, `" 12 "`, `0x10`,
 * `1e3` and `Infinity`, and `parseInt` would read `12abc` as 12; a typo must be an error, not
 * a different VM. These check syntax only and name the flag; ranges are checked once, by
 * `resolveSandboxOptions`, for CLI and SDK alike.
 */

const DECIMAL_INTEGER = /^\d+$/;
const DECIMAL_NUMBER = /^(?:\d+(?:\.\d+)?|\.\d+)$/;

function reject(flag: string, what: string, text: string): never {
  throw new ErrInvalidConfig(`${flag} must be ${what}, got ${JSON.stringify(text)}`);
}

/** A non-negative whole number written in plain decimal digits (`0`, `42`). */
export function parseCount(text: string, flag: string): number {
  if (!DECIMAL_INTEGER.test(text)) reject(flag, "a whole number", text);
  const value = Number(text);
  if (!Number.isSafeInteger(value)) reject(flag, "a whole number below 2^53", text);
  return value;
}

/** Mebibytes as plain decimal digits (`512`); no unit suffixes, as in the reference's `--memory`. */
export function parseMemoryMb(text: string, flag = "--memory"): number {
  if (!DECIMAL_INTEGER.test(text)) reject(flag, "a whole number of MB", text);
  return parseCount(text, flag);
}

/** CPU count, fractions allowed (`2`, `0.5`, `1.5`); no exponents or signs. */
export function parseCpus(text: string, flag = "--cpus"): number {
  if (!DECIMAL_NUMBER.test(text)) reject(flag, "a decimal number such as 1, 2 or 0.5", text);
  return Number(text);
}

const NANOS_PER_UNIT: Readonly<Record<string, number>> = {
  ns: 1,
  us: 1e3,
  "\u00b5s": 1e3, // micro sign, as Go accepts
  "\u03bcs": 1e3, // Greek mu, as Go accepts
  ms: 1e6,
  s: 1e9,
  m: 60e9,
  h: 3600e9,
};
const AMOUNT = String.raw`(?:\d+(?:\.\d+)?|\.\d+)`;
// Longer units first so "5ms" is milliseconds, not minutes followed by junk.
const UNIT = "(?:ns|us|\u00b5s|\u03bcs|ms|s|m|h)";
const DURATION = new RegExp(`^(?:${AMOUNT}${UNIT})+$`);
const DURATION_PART = new RegExp(`(${AMOUNT})(${UNIT})`, "g");

/**
 * A duration in seconds: a bare decimal number of seconds (`300`, `1.5`: what `--timeout`
 * takes) or Go `time.ParseDuration` syntax without a sign (`250ms`, `5m`, `1h30m`, `1.5s`:
 * what `--graceful-shutdown` takes in the reference). `0` is zero.
 */
export function parseDurationSeconds(text: string, flag: string): number {
  if (DECIMAL_NUMBER.test(text)) return Number(text);
  if (!DURATION.test(text)) {
    reject(flag, 'seconds (300) or a duration such as "250ms", "5m" or "1h30m"', text);
  }
  // Whole nanoseconds per part, as Go does, so "1.1s" is 1.1 and not 1.1000000000000001.
  let nanos = 0;
  for (const [, amount, unit] of text.matchAll(DURATION_PART)) {
    nanos += Math.round(Number(amount) * (NANOS_PER_UNIT[unit as string] as number));
  }
  return nanos / 1e9;
}
