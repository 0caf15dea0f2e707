/**
 * What `work` resolves to if it does so within `timeoutMs`; undefined if it takes longer or
 * fails. For optional extras (a running sandbox's live usage) that must never hold up, or
 * fail, the answer they decorate.
 */
export async function settledWithin<T>(
  work: Promise<T>,
  timeoutMs: number,
): Promise<T | undefined> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      work.catch(() => undefined),
      new Promise<undefined>((resolve) => {
        timer = setTimeout(() => resolve(undefined), timeoutMs);
        timer.unref();
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}
