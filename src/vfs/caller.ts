/**
 * Who in the guest made the FUSE request being served. The server runs each request inside
 * `asCaller`, so code below it (hooks, events) can read the caller without every provider
 * method growing a parameter. Outside a request (SDK file calls) there is no caller.
 */
import { AsyncLocalStorage } from "node:async_hooks";

export interface VfsCaller {
  readonly uid: number;
  readonly gid: number;
  readonly pid: number;
}

const storage = new AsyncLocalStorage<VfsCaller>();

export function asCaller<T>(caller: VfsCaller, work: () => Promise<T>): Promise<T> {
  return storage.run(caller, work);
}

export function currentCaller(): VfsCaller | undefined {
  return storage.getStore();
}
