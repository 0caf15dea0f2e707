/**
 * The build context: the directory COPY and ADD read from, with `.dockerignore` applied. Every
 * source path is rooted in it: absolute paths and `..` that climbs out are refused, and a
 * source whose real path (symlinks resolved on the host) leaves the context is refused too.
 * Symlinks inside a copied directory are copied as links, never followed.
 */
import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import { lstat, readdir, readFile, readlink, realpath, stat } from "node:fs/promises";
import { join, posix, sep } from "node:path";
import dockerignore from "@balena/dockerignore";
import { ownDirConflict } from "../config/index.js";
import { ErrBuild } from "../errors.js";
import { compilePathGlob } from "../util/index.js";

export type ContextKind = "file" | "dir" | "symlink";

export interface ContextFile {
  /** Path relative to the copied source ("" for the source itself). */
  rel: string;
  hostPath: string;
  kind: ContextKind;
  mode: number;
  sizeBytes: number;
  mtimeSec: number;
  linkTarget?: string;
  /** Content digest, set by digestSources and checked again when the layer is written. */
  sha256?: string;
}

export interface ContextSource {
  /** The source as the Dockerfile matched it, relative to the context root. */
  path: string;
  /** Basename of the matched path (a symlink's own name, not its target's). */
  name: string;
  isDir: boolean;
  files: ContextFile[];
}

const hasGlob = (s: string): boolean => /[*?[]/.test(s);

export class BuildContext {
  private constructor(
    readonly root: string,
    private readonly ignore: { ignores(path: string): boolean },
    private readonly hasExceptions: boolean,
  ) {}

  /** `dockerfileIgnore`: `<Dockerfile>.dockerignore`, preferred over the context's own. */
  static async open(dir: string, dockerfileIgnore?: string): Promise<BuildContext> {
    const root = await realpath(dir).catch(() => {
      throw new ErrBuild(`build context ${dir} does not exist`);
    });
    if (!(await stat(root)).isDirectory())
      throw new ErrBuild(`build context ${dir} is not a directory`);
    let text = "";
    for (const candidate of [dockerfileIgnore, join(root, ".dockerignore")]) {
      if (candidate === undefined) continue;
      const t = await readFile(candidate, "utf8").catch(() => undefined);
      if (t !== undefined) {
        text = t;
        break;
      }
    }
    const patterns = text
      .split(/\r?\n/)
      .map((l) => l.trim())
      .filter((l) => l !== "" && !l.startsWith("#"));
    return new BuildContext(
      root,
      // A CommonJS module: its export is the factory, typed as the module's `default`.
      dockerignore.default().add(patterns),
      patterns.some((p) => p.startsWith("!")),
    );
  }

  private ignored(rel: string): boolean {
    return rel !== "" && this.ignore.ignores(rel);
  }

  /** A source path as a clean path relative to the root, or the error that refuses it. */
  private clean(source: string, what: string): string {
    if (source.startsWith("/"))
      throw new ErrBuild(
        `${what}: ${source} is an absolute path; sources are relative to the build context`,
      );
    const norm = posix.normalize(source);
    if (norm === ".." || norm.startsWith("../"))
      throw new ErrBuild(`${what}: ${source} is outside the build context`);
    return norm === "." || norm === "./" ? "" : norm.replace(/\/+$/, "");
  }

  /** Host path for a clean relative path, checked to resolve inside the context. */
  private async inside(rel: string, what: string, shown: string): Promise<string> {
    const host = rel === "" ? this.root : join(this.root, rel);
    const real = await realpath(host).catch(() => {
      throw new ErrBuild(`${what}: ${shown}: no such file or directory in the build context`);
    });
    if (real !== this.root && !real.startsWith(this.root + sep))
      throw new ErrBuild(`${what}: ${shown} resolves outside the build context (${real})`);
    // A context such as $HOME holds wheellock's own dirs (CA and checkpoint keys, volumes,
    // records): copied, they would be in the image, seen by every later step and pushed.
    const conflict = ownDirConflict(real);
    if (conflict !== undefined)
      throw new ErrBuild(`${what}: ${shown} ${conflict}: an image must not carry it`);
    return real;
  }

  /** The context entries the sources name (globs expanded), each walked. */
  async select(sources: readonly string[], what: string): Promise<ContextSource[]> {
    const out: ContextSource[] = [];
    for (const source of sources) {
      const rel = this.clean(source, what);
      const matches = hasGlob(rel) ? await this.glob(rel) : [rel];
      if (matches.length === 0)
        throw new ErrBuild(`${what}: no file in the build context matches ${source}`);
      for (const m of matches) {
        if (this.ignored(m)) throw new ErrBuild(`${what}: ${m} is excluded by .dockerignore`);
        const real = await this.inside(m, what, m === "" ? "." : m);
        const st = await stat(real);
        out.push({
          path: m,
          name: posix.basename(m === "" ? "." : m),
          isDir: st.isDirectory(),
          files: await this.walk(real, m, what),
        });
      }
    }
    return out;
  }

  private async glob(pattern: string): Promise<string[]> {
    const parts = pattern.split("/");
    let current = [""];
    for (const part of parts) {
      const next: string[] = [];
      const glob = hasGlob(part) ? compilePathGlob(part) : undefined;
      for (const dir of current) {
        if (!glob) {
          next.push(dir === "" ? part : `${dir}/${part}`);
          continue;
        }
        const names = await readdir(dir === "" ? this.root : join(this.root, dir)).catch(() => []);
        for (const n of names.sort()) if (glob.test(n)) next.push(dir === "" ? n : `${dir}/${n}`);
      }
      current = next;
    }
    const present: string[] = [];
    for (const p of current)
      if (await lstat(join(this.root, p)).catch(() => undefined)) present.push(p);
    return present.filter((p) => !this.ignored(p));
  }

  /** The source (its real path `host`) and, for a directory, everything below it. */
  private async walk(host: string, ctxRel: string, what: string): Promise<ContextFile[]> {
    const out: ContextFile[] = [];
    const visit = async (hostPath: string, rel: string, follow: boolean): Promise<void> => {
      const st = follow ? await stat(hostPath) : await lstat(hostPath);
      const base = {
        rel,
        hostPath,
        mode: st.mode & 0o7777,
        sizeBytes: 0,
        mtimeSec: Math.floor(st.mtimeMs / 1000),
      };
      if (st.isSymbolicLink()) {
        out.push({ ...base, kind: "symlink", linkTarget: await readlink(hostPath) });
      } else if (st.isFile()) {
        out.push({ ...base, kind: "file", sizeBytes: st.size });
      } else if (st.isDirectory()) {
        out.push({ ...base, kind: "dir" });
        for (const name of (await readdir(hostPath)).sort()) {
          const childRel = rel === "" ? name : `${rel}/${name}`;
          const fromRoot = ctxRel === "" ? childRel : `${ctxRel}/${childRel}`;
          const skip = this.ignored(fromRoot);
          const st2 = skip ? await lstat(join(hostPath, name)) : undefined;
          // An ignored directory is still walked when an exception (`!pattern`) may re-include
          // something below it; ignored files are simply not there.
          if (skip && !(this.hasExceptions && st2?.isDirectory())) continue;
          const before = out.length;
          await visit(join(hostPath, name), childRel, false);
          if (skip && out.length > before) out.splice(before, 1);
        }
      } else {
        throw new ErrBuild(`${what}: ${ctxRel}/${rel} is not a file, directory or symlink`);
      }
    };
    await visit(host, "", true);
    return out;
  }
}

/** sha256 over what a COPY would write from these sources (names, kinds, modes, contents). */
export async function digestSources(sources: readonly ContextSource[]): Promise<string> {
  const h = createHash("sha256");
  for (const s of sources) {
    h.update(`source\0${s.path}\0${s.isDir}\n`);
    for (const f of s.files) {
      h.update(`${f.kind}\0${f.rel}\0${f.mode}\0${f.sizeBytes}\0${f.linkTarget ?? ""}\0`);
      if (f.kind === "file") {
        const fh = createHash("sha256");
        for await (const c of createReadStream(f.hostPath)) fh.update(c as Buffer);
        f.sha256 = fh.digest("hex");
        h.update(f.sha256);
      }
      h.update("\n");
    }
  }
  return `sha256:${h.digest("hex")}`;
}

/**
 * A context file's bytes for its layer entry. The cache key was made from the digest taken
 * before; a file that changed since would put other bytes under that key, so it fails instead.
 */
export async function* contextFileContent(f: ContextFile): AsyncGenerator<Buffer> {
  const h = createHash("sha256");
  for await (const c of createReadStream(f.hostPath)) {
    h.update(c as Buffer);
    yield c as Buffer;
  }
  if (f.sha256 !== undefined && h.digest("hex") !== f.sha256)
    throw new ErrBuild(`${f.hostPath} changed during the build; run the build again`);
}
