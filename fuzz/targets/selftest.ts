/**
 * Deliberately broken targets, for the fuzzer's own tests (test/unit/fuzz-engine.test.ts):
 * each misbehaves in one way the engine or the supervisor must catch. Not in the default list.
 */
import { check, type FuzzTarget } from "../target.js";

const retained: Buffer[] = [];
const base = { maxInputBytes: 64, timeLimitMs: 300, seeds: () => [Buffer.from("ok")] };

export const selftestTargets: Record<string, FuzzTarget> = {
  "selftest-throw": {
    ...base,
    name: "selftest-throw",
    description: "throws a TypeError on inputs containing BUG",
    run(input) {
      if (input.includes("BUG")) throw new TypeError("found the bug");
    },
  },
  "selftest-invariant": {
    ...base,
    name: "selftest-invariant",
    description: "breaks an invariant on inputs starting with !",
    run(input) {
      check(input[0] !== 0x21, "input starts with !");
    },
  },
  "selftest-sync-hang": {
    ...base,
    name: "selftest-sync-hang",
    description: "loops forever on inputs starting with 0xff",
    run(input) {
      while (input[0] === 0xff) {
        // spin
      }
    },
  },
  "selftest-async-hang": {
    ...base,
    name: "selftest-async-hang",
    description: "never settles on inputs starting with 0xfe",
    run(input) {
      return input[0] === 0xfe ? new Promise<void>(() => undefined) : Promise.resolve();
    },
  },
  "selftest-unhandled": {
    ...base,
    name: "selftest-unhandled",
    description: "leaves a rejected promise unhandled on inputs starting with ?",
    async run(input) {
      if (input[0] === 0x3f) void Promise.reject(new RangeError("nobody listens"));
      await new Promise((resolve) => setImmediate(resolve));
    },
  },
  "selftest-leak": {
    ...base,
    name: "selftest-leak",
    description: "keeps 128 KiB of every input forever (up to 150 MiB), at most 200 inputs/s",
    async run() {
      if (retained.length < 1200) retained.push(Buffer.alloc(128 * 1024, 1));
      await new Promise((resolve) => setTimeout(resolve, 5));
    },
  },
  "selftest-oom": {
    ...base,
    name: "selftest-oom",
    description: "allocates without bound on inputs starting with #",
    run(input) {
      const hog: number[][] = [];
      while (input[0] === 0x23) hog.push(new Array<number>(1 << 20).fill(1));
    },
  },
};
