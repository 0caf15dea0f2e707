/**
 * What a fuzz target is: one host parser (or a parser plus the state machine behind it) fed
 * guest-controlled bytes. A target runs one input at a time and throws only on a finding: an
 * error that is not the parser's documented one, or a broken invariant (`FuzzFinding`).
 * Everything the parser is allowed to do with bad input is handled inside `run`.
 */

export interface FuzzTarget {
  readonly name: string;
  readonly description: string;
  /** Largest input the engine will build for this target. */
  readonly maxInputBytes: number;
  /** Longest one input may run before it counts as a hang (ms). */
  readonly timeLimitMs: number;
  /** Valid inputs built with the project's own encoders (they follow format changes). */
  seeds(): Buffer[] | Promise<Buffer[]>;
  /** Tokens worth inserting (magic numbers, keywords, header names). */
  readonly dictionary?: readonly Buffer[];
  /** How the input splits into protocol units (frames, requests), for unit-level mutations. */
  readonly units?: UnitCodec;
  /** Shared state for all inputs of one worker (servers, CAs). */
  setup?(): Promise<void>;
  run(input: Buffer): void | Promise<void>;
  teardown?(): Promise<void>;
}

export interface UnitCodec {
  /** Splits an input into units; trailing bytes that do not form a unit are one more unit. */
  split(input: Buffer): Buffer[];
  /** Repairs a mutated unit's length fields and checksums so it gets past the first checks. */
  fix?(unit: Buffer): Buffer;
}

/** A broken invariant: the parser accepted input but did something it must never do. */
export class FuzzFinding extends Error {
  override readonly name = "FuzzFinding";
}

export function check(condition: boolean, message: string): asserts condition {
  if (!condition) throw new FuzzFinding(message);
}

type ErrorClass = abstract new (...args: never[]) => Error;

/** Runs `fn`; errors of the documented classes are the parser doing its job, others escape. */
export function allowing<T>(allowed: readonly ErrorClass[], fn: () => T): T | undefined {
  try {
    return fn();
  } catch (err) {
    if (allowed.some((cls) => err instanceof cls)) return undefined;
    throw err;
  }
}

/**
 * Splits by a length-prefix rule: `headerBytes` bytes of header, then the length the header
 * declares (`bodyBytes(header)`, or undefined when the header is not valid enough to trust).
 */
export function splitByLength(
  input: Buffer,
  headerBytes: number,
  unitBytes: (input: Buffer, at: number) => number | undefined,
): Buffer[] {
  const units: Buffer[] = [];
  let at = 0;
  while (at < input.length) {
    const total = input.length - at >= headerBytes ? unitBytes(input, at) : undefined;
    if (total === undefined || total < headerBytes || at + total > input.length) {
      units.push(input.subarray(at));
      break;
    }
    units.push(input.subarray(at, at + total));
    at += total;
  }
  return units;
}
