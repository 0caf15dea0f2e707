/**
 * What a client says when it cannot reach a node: unreachable (the node is down or the address
 * wrong) or, over TLS, a certificate it does not trust (a private CA it was not given) — the
 * REST calls and the data plane alike, so `wheellock list` and `sandbox.exec()` name the same
 * cause and the same cure.
 */
import { ErrAuth, ErrVMNotRunning } from "../errors.js";

const UNREACHABLE = new Set(["ECONNREFUSED", "ECONNRESET", "EHOSTUNREACH", "ENOTFOUND"]);

/** `subject` names what was being reached: "node URL", "sandbox ID: its node". */
export function nodeConnectError(err: NodeJS.ErrnoException, subject: string): Error {
  if (UNREACHABLE.has(err.code ?? ""))
    return new ErrVMNotRunning(`${subject} is not reachable (${err.code})`);
  if (/certificate|self[- ]signed/i.test(`${err.code ?? ""} ${err.message}`))
    return new ErrAuth(
      `${subject}: its TLS certificate is not trusted (${err.message}); give its CA ` +
        "(PEM) in WHEELLOCK_REMOTE_CA, or remote.ca in the SDK",
    );
  return new ErrVMNotRunning(`${subject} is not reachable (${err.code ?? err.message})`);
}
