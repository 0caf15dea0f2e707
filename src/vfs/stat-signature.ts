/**
 * What identifies the state of a file for cache invalidation: its inode and every attribute a
 * change touches (ctime moves on any write, rename or attribute change). Comparing the host's
 * current state with what the guest was last told tells an echo of the guest's own change
 * (nothing to invalidate) from a change made behind its back.
 */
export interface ProbedStat {
  readonly ino?: number;
  readonly sizeBytes: number;
  readonly mtimeMs: number;
  readonly ctimeMs: number;
  readonly mode: number;
}

export interface StatSignature {
  readonly ino: number | undefined;
  readonly state: string;
}

/**
 * The host's state of a path now: a stat, null when the name does not exist, undefined when
 * it cannot be told (then everything about the path is invalidated, as without a probe).
 */
export type HostProbe = () => ProbedStat | null | undefined;

export function statSignature(stat: ProbedStat): StatSignature {
  return {
    ino: stat.ino,
    state: `${stat.ino}:${stat.sizeBytes}:${stat.mtimeMs}:${stat.ctimeMs}:${stat.mode & 0o7777}`,
  };
}
