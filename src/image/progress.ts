/** What a pull reports as it goes; the CLI draws bars from it, the SDK ignores it. */
export interface PullProgress {
  /** A blob is needed; `cached` when it is already in the store. */
  layer(digest: string, sizeBytes: number, cached: boolean): void;
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
