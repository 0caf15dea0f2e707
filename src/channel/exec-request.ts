/** Encodes the EXEC record; throws RangeError for requests the wire cannot carry. */
import { ExecTag } from "./constants.js";
import type { ExecRequest } from "./exec.js";
import { encodeRecord, field, type RecordField } from "./record.js";

export function encodeExecRequest(req: ExecRequest): Buffer {
  if (req.argv.length === 0) throw new RangeError("exec: argv must not be empty");
  const fields: RecordField[] = [];
  for (const arg of req.argv) fields.push(field.string(ExecTag.Argv, arg));
  for (const entry of req.env) fields.push(field.string(ExecTag.Env, entry));
  if (req.cwd !== undefined) fields.push(field.string(ExecTag.Cwd, req.cwd));
  if (req.user !== undefined) fields.push(field.string(ExecTag.User, req.user));
  if (req.tty !== undefined) {
    fields.push(
      field.u8(ExecTag.Tty, 1),
      field.u32(ExecTag.Rows, req.tty.rows),
      field.u32(ExecTag.Cols, req.tty.cols),
    );
  }
  return encodeRecord(fields);
}
