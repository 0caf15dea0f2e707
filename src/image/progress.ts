/** What a pull or push reports as it goes; the CLI draws bars from it, the SDK ignores it. */
export interface PullProgress {
  /**
   * A blob is needed; `cached` when nothing has to move (in the store, or on the registry
   * already), and `note` says why where it is not "cached" ("exists", "mounted").
   */
  layer(digest: string, sizeBytes: number, cached: boolean, note?: string): void;
  bytes(digest: string, n: number): void;
  layerDone(digest: string): void;
  /** A step without bytes to count ("unpacking", "ready"). */
  status(message: string): void;
}

export const silentProgress: PullProgress = {
  layer: () => undefined,
  bytes: () => undefined,
  layerDone: () => undefined,
  status: () => undefined,
};
