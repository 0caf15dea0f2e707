/**
 * `write_file`, `read_file` and `list_files` (reference/matchlock-rpc.md §5.6-§5.8) on any
 * guest path, mounted ones included (where the mount's hook rules apply). Every failure of
 * the operation itself is -32002; the operations finish even when their request is cancelled,
 * as in the reference.
 */
import { posix } from "node:path";
import { ErrFile } from "../errors.js";
import type { SandboxApi } from "../sandbox/index.js";
import type { CallContext } from "./context.js";
import { goFileMode } from "./file-mode.js";
import { decodeBase64, numberField, objectParams, stringField, U32_MAX } from "./params.js";
import { RpcCode, RpcError } from "./wire.js";

/** The reference's `read_file` limit. */
export const MAX_READ_FILE_BYTES = 16 * 1024 * 1024;
const DEFAULT_FILE_MODE = 0o644;
/** What Go's zero `time.Time` marshals to (the reference never sends a real one). */
const ZERO_TIME = "0001-01-01T00:00:00Z";

function fileError(err: unknown): RpcError {
  if (err instanceof RpcError) return err;
  return new RpcError(RpcCode.FileFailed, err instanceof Error ? err.message : String(err));
}

/** The reference's agent creates missing parent directories (0755) first. */
async function writeWithParents(
  api: SandboxApi,
  path: string,
  data: Buffer,
  mode: number,
): Promise<void> {
  try {
    await api.writeFile(path, data, { mode });
  } catch (err) {
    if (!(err instanceof ErrFile && err.errno === "ENOENT")) throw err;
    await api.mkdir(posix.dirname(posix.normalize(path)), { mode: 0o755 });
    await api.writeFile(path, data, { mode });
  }
}

export async function writeFile(params: unknown, ctx: CallContext): Promise<object> {
  const vm = ctx.session.currentVm();
  const p = objectParams(params);
  const path = stringField(p, "path");
  const content = decodeBase64(stringField(p, "content"));
  if (content === undefined) throw new RpcError(RpcCode.InvalidParams, "invalid base64 content");
  const mode = numberField(p, "mode", { integer: true, max: U32_MAX }) & 0o7777;
  try {
    await writeWithParents(vm.sandbox.api, path, content, mode || DEFAULT_FILE_MODE);
  } catch (err) {
    throw fileError(err);
  }
  return {};
}

export async function readFile(params: unknown, ctx: CallContext): Promise<object> {
  const vm = ctx.session.currentVm();
  const path = stringField(objectParams(params), "path");
  const chunks: Buffer[] = [];
  let size = 0;
  try {
    const stream = vm.sandbox.api.readFileStream(path);
    for await (const chunk of stream) {
      size += (chunk as Buffer).length;
      if (size > MAX_READ_FILE_BYTES) {
        stream.destroy();
        throw new RpcError(
          RpcCode.FileFailed,
          `read_file exceeds ${MAX_READ_FILE_BYTES} bytes: ${path}`,
        );
      }
      chunks.push(chunk as Buffer);
    }
  } catch (err) {
    throw fileError(err);
  }
  return { content: Buffer.concat(chunks).toString("base64") };
}

function modTime(date: Date): string {
  return Number.isFinite(date.getTime()) ? date.toISOString() : ZERO_TIME;
}

export async function listFiles(params: unknown, ctx: CallContext): Promise<object> {
  const vm = ctx.session.currentVm();
  const path = stringField(objectParams(params), "path");
  let files;
  try {
    files = await vm.sandbox.api.listFiles(path);
  } catch (err) {
    throw fileError(err);
  }
  // Python indexes name, size, mode and is_dir on every entry; entries are lstat-ed.
  const entries = files
    .map((f) => ({
      name: f.name,
      size: f.sizeBytes,
      mode: goFileMode(f.mode),
      mod_time: modTime(f.mtime),
      is_dir: f.isDir && !f.isSymlink,
    }))
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  return { files: entries };
}
