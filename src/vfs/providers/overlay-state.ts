/**
 * Which lower entries an overlay hides. A whiteout hides the lower entry at a path (and all
 * below it); an opaque directory hides every lower entry below it but not itself. Both only
 * ever hide lower entries: what is in the upper layer is always visible.
 */
import { isWithin } from "../names.js";

export class OverlayMasks {
  private readonly whiteouts = new Set<string>();
  private readonly opaque = new Set<string>();

  /** True when the lower entry at `path` may show through. */
  lowerVisible(path: string): boolean {
    for (const w of this.whiteouts) if (isWithin(path, w)) return false;
    for (const o of this.opaque) if (o !== path && isWithin(path, o)) return false;
    return true;
  }

  /** True when lower children of `dir` may show through. */
  lowerChildrenVisible(dir: string): boolean {
    return this.lowerVisible(dir) && !this.opaque.has(dir);
  }

  whiteout(path: string): void {
    this.whiteouts.add(path);
    this.opaque.delete(path);
  }

  /** A new upper entry at `path`; if it replaces a removed directory, hide the old contents. */
  created(path: string, isDir: boolean): void {
    const wasHidden = this.whiteouts.delete(path);
    if (isDir && wasHidden) this.opaque.add(path);
  }

  /** Both sets, for a copy of the overlay (importState). */
  exportState(): { whiteouts: string[]; opaque: string[] } {
    return { whiteouts: [...this.whiteouts], opaque: [...this.opaque] };
  }

  importState(state: { whiteouts: readonly string[]; opaque: readonly string[] }): void {
    for (const w of state.whiteouts) this.whiteouts.add(w);
    for (const o of state.opaque) this.opaque.add(o);
  }

  makeOpaque(path: string): void {
    this.whiteouts.delete(path);
    this.opaque.add(path);
  }
}
