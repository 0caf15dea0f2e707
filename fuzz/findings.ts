/** Findings: what went wrong with which input, reduced to a signature so repeats count once. */

export type FindingKind = "crash" | "hang" | "memory" | "oom";

export interface Finding {
  readonly target: string;
  readonly kind: FindingKind;
  readonly message: string;
  readonly stack?: string;
  readonly input: Buffer;
}

/**
 * Kind, error class and message with numbers blanked, plus the first stack frame in the
 * project: the same bug found with a thousand different inputs is one finding.
 */
export function signature(f: Pick<Finding, "kind" | "message" | "stack">): string {
  const message = f.message.split("\n")[0]?.replace(/\d+/g, "N").slice(0, 200) ?? "";
  const frame = f.stack
    ?.split("\n")
    .find((line) => line.includes("/src/"))
    ?.replace(/:\d+:\d+\)?$/, "")
    .trim();
  return `${f.kind}|${message}|${frame ?? ""}`;
}

export function describeError(err: unknown): { message: string; stack?: string } {
  if (err instanceof Error) {
    const name = err.constructor?.name ?? err.name;
    return { message: `${name}: ${err.message}`, ...(err.stack ? { stack: err.stack } : {}) };
  }
  return { message: `non-Error thrown: ${String(err)}` };
}
