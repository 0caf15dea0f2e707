/**
 * Placement over many nodes, by the power of two choices: ask two nodes picked at random how
 * free they are and take the freer. Nearly as good as asking every node, at the cost of two
 * small requests whatever the number of nodes.
 */
import type { NodeInfo } from "../serve/index.js";

/** Positive when `a` is the better place for one more sandbox. */
export function compareFreedom(a: NodeInfo, b: NodeInfo): number {
  const roomA = a.sandboxes.running < a.sandboxes.max ? 1 : 0;
  const roomB = b.sandboxes.running < b.sandboxes.max ? 1 : 0;
  if (roomA !== roomB) return roomA - roomB;
  if (a.memory.freeBytes !== b.memory.freeBytes) return a.memory.freeBytes - b.memory.freeBytes;
  if (a.vcpus.free !== b.vcpus.free) return a.vcpus.free - b.vcpus.free;
  return b.sandboxes.running - a.sandboxes.running;
}

/** Two distinct indexes below `n` (one when n is 1), drawn with `random` in [0, 1). */
export function twoChoices(n: number, random: () => number = Math.random): number[] {
  if (n <= 1) return [0];
  const first = Math.floor(random() * n);
  const second = (first + 1 + Math.floor(random() * (n - 1))) % n;
  return [first, second];
}

/**
 * The nodes to try, best first: the two drawn, ordered by their `/v1/info` (a node that does
 * not answer goes last; one that is full is still tried, it may have room by then), then every
 * other node in random order: the two choices pick the better node, they do not limit the
 * search (two full or dead nodes drawn must not fail a create that others have room for).
 */
export async function placementOrder(
  urls: readonly string[],
  info: (url: string) => Promise<NodeInfo>,
  random: () => number = Math.random,
): Promise<string[]> {
  const drawnAt = twoChoices(urls.length, random);
  const drawn = drawnAt.map((i) => urls[i] as string);
  if (drawn.length === 1) return drawn;
  const rest = shuffled(
    urls.filter((_, i) => !drawnAt.includes(i)),
    random,
  );
  const answers = await Promise.all(
    drawn.map((url) =>
      info(url).then(
        (i) => ({ url, info: i }),
        () => ({ url, info: undefined }),
      ),
    ),
  );
  return answers
    .sort((a, b) => {
      if (!a.info || !b.info) return a.info ? -1 : b.info ? 1 : 0;
      return compareFreedom(b.info, a.info);
    })
    .map((a) => a.url)
    .concat(rest);
}

/** A copy of `items` in random order (Fisher-Yates). */
function shuffled<T>(items: readonly T[], random: () => number): T[] {
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [out[i], out[j]] = [out[j] as T, out[i] as T];
  }
  return out;
}
