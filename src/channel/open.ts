/** Opening the record and file operations: encode the request, register a handler, start data. */
import type { Readable } from "node:stream";
import { ErrFile } from "../errors.js";
import { FileReadTag, FileWriteTag, FrameType, frameTypeName } from "./contract.js";
import type { StreamOpener } from "./streams.js";
import { ReadFileHandle, RECORD_REQUEST_TYPES, RequestHandle, WriteFileHandle } from "./ops.js";
import { encodeRecord, field, type DecodedRecord, type RecordField } from "./record.js";

export interface WriteFileRequest {
  path: string;
  /** Permission bits; the guest defaults to 0644. */
  mode?: number;
  uid?: number;
  gid?: number;
}

export type FileData = Uint8Array | AsyncIterable<Uint8Array> | Readable;

/** A record-in, record-out request; `path` names the file in the ErrFile a guest ERROR becomes. */
export function openRequest(
  opener: StreamOpener,
  type: number,
  fields: readonly RecordField[],
  path?: string,
): Promise<DecodedRecord> {
  if (!RECORD_REQUEST_TYPES.has(type)) {
    return Promise.reject(
      new TypeError(`${frameTypeName(type)} is not a record request; use its dedicated method`),
    );
  }
  let payload: Buffer;
  try {
    payload = encodeRecord(fields);
  } catch (err) {
    return Promise.reject(err instanceof Error ? err : new Error(String(err)));
  }
  return opener.open(type, payload, (id) => new RequestHandle(id, type, path)).result.promise;
}

export function openWriteFile(
  opener: StreamOpener,
  req: WriteFileRequest,
  data: FileData,
): Promise<void> {
  let payload: Buffer;
  try {
    const fields = [field.string(FileWriteTag.Path, req.path)];
    if (req.mode !== undefined) fields.push(field.u32(FileWriteTag.Mode, req.mode));
    if (req.uid !== undefined) fields.push(field.u32(FileWriteTag.Uid, req.uid));
    if (req.gid !== undefined) fields.push(field.u32(FileWriteTag.Gid, req.gid));
    payload = encodeRecord(fields);
  } catch (err) {
    return Promise.reject(new ErrFile(req.path, `invalid write request: ${String(err)}`));
  }
  const handle = opener.open(
    FrameType.FileWrite,
    payload,
    (id) => new WriteFileHandle(id, opener.ctx, req.path),
  );
  if (!handle.result.isSettled) void pump(opener, handle, data);
  return handle.result.promise;
}

/** Feeds the source into the stream within credit; never rejects (outcomes go to handle.result). */
async function pump(opener: StreamOpener, handle: WriteFileHandle, data: FileData): Promise<void> {
  try {
    if (data instanceof Uint8Array) {
      await handle.sender.sendData(data);
    } else {
      // Leaving this loop early (break/throw) destroys a Readable source: we stop reading it.
      for await (const chunk of data as AsyncIterable<unknown>) {
        if (handle.result.isSettled) break;
        await handle.sender.sendData(toBytes(chunk));
      }
    }
    handle.sender.sendEof();
  } catch (err) {
    if (handle.result.isSettled) return; // the guest or the channel already ended it
    // The source failed: abandon the half-written file rather than let the guest wait forever.
    opener.ctx.abandon(handle.id);
    handle.fail(err instanceof Error ? err : new Error(String(err)));
  }
}

function toBytes(chunk: unknown): Uint8Array {
  if (chunk instanceof Uint8Array) return chunk;
  if (typeof chunk === "string") return Buffer.from(chunk, "utf8");
  throw new TypeError("writeFile: source yielded something other than bytes");
}

export function openReadFile(opener: StreamOpener, path: string): Readable {
  let payload: Buffer;
  try {
    payload = encodeRecord([field.string(FileReadTag.Path, path)]);
  } catch (err) {
    const handle = new ReadFileHandle(0, opener.ctx, path);
    handle.fail(new ErrFile(path, `invalid read request: ${String(err)}`));
    return handle.stream;
  }
  return opener.open(FrameType.FileRead, payload, (id) => new ReadFileHandle(id, opener.ctx, path))
    .stream;
}
