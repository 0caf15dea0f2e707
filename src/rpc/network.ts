/**
 * `allow_list_add` / `allow_list_delete` (reference/matchlock-rpc.md §5.11) and `port_forward`
 * (§5.12). Allow-list results keep the reference's shape (`null` for an empty list). Port
 * forwards are host TCP listeners into the guest's `127.0.0.1:<remote_port>`; each call
 * replaces the previous set, and calls run one at a time.
 */
import { PortPublisher } from "../supervisor/index.js";
import type { ActiveVm, CallContext } from "./context.js";
import { numberField, objectField, objectParams, stringListField, U16_MAX } from "./params.js";
import { RpcCode, RpcError } from "./wire.js";

function hostsParam(params: unknown): string[] {
  const hosts = [
    ...new Set(
      stringListField(objectParams(params), "hosts")
        .map((h) => h.trim())
        .filter((h) => h !== ""),
    ),
  ];
  if (hosts.length === 0) throw new RpcError(RpcCode.InvalidParams, "hosts is required");
  return hosts;
}

function vmError(err: unknown): RpcError {
  return new RpcError(RpcCode.VmFailed, err instanceof Error ? err.message : String(err));
}

async function changeAllowList(
  vm: ActiveVm,
  hosts: string[],
  change: (hosts: string[]) => Promise<string[]>,
): Promise<{ changed: string[] | null; allowed: string[] | null }> {
  try {
    if (!(await vm.sandbox.api.allowedHosts()).intercepting)
      throw new Error(
        "allow-list updates unavailable: sandbox was started without network interception",
      );
    const changed = await change(hosts);
    const { hosts: allowed } = await vm.sandbox.api.allowedHosts();
    return {
      changed: changed.length > 0 ? changed : null,
      allowed: allowed.length > 0 ? allowed : null,
    };
  } catch (err) {
    throw vmError(err);
  }
}

export async function allowListAdd(params: unknown, ctx: CallContext): Promise<object> {
  const vm = ctx.session.currentVm();
  const hosts = hostsParam(params);
  const r = await changeAllowList(vm, hosts, (h) => vm.sandbox.api.allowHosts(...h));
  return { added: r.changed ?? [], allowed_hosts: r.allowed };
}

export async function allowListDelete(params: unknown, ctx: CallContext): Promise<object> {
  const vm = ctx.session.currentVm();
  const hosts = hostsParam(params);
  const r = await changeAllowList(vm, hosts, (h) => vm.sandbox.api.disallowHosts(...h));
  return { removed: r.changed, allowed_hosts: r.allowed };
}

interface Forward {
  address: string;
  localPort: number;
  remotePort: number;
}

function forwardsParam(params: unknown): Forward[] {
  const p = objectParams(params);
  const raw = p.forwards;
  if (raw !== undefined && raw !== null && !Array.isArray(raw))
    throw new RpcError(RpcCode.InvalidParams, "forwards must be an array");
  const forwards = (raw ?? []) as unknown[];
  if (forwards.length === 0) throw new RpcError(RpcCode.InvalidParams, "forwards is required");
  const addresses = stringListField(p, "addresses")
    .map((a) => a.trim())
    .filter(Boolean);
  const specs = forwards.map((entry, i) => {
    const f = objectField({ f: entry }, "f", `forwards[${i}]`) ?? {};
    const localPort = numberField(f, "local_port", {
      integer: true,
      max: U16_MAX,
      where: `forwards[${i}].local_port`,
    });
    const remotePort = numberField(f, "remote_port", {
      integer: true,
      max: U16_MAX,
      where: `forwards[${i}].remote_port`,
    });
    if (remotePort === 0)
      throw new RpcError(RpcCode.InvalidParams, `forwards[${i}].remote_port must be 1-65535`);
    return { localPort, remotePort };
  });
  // Forward-major order, as the reference binds them.
  return specs.flatMap((s) =>
    (addresses.length > 0 ? addresses : ["127.0.0.1"]).map((address) => ({ address, ...s })),
  );
}

/** One port_forward at a time per session VM (the reference serialises them too). */
const queues = new WeakMap<ActiveVm, Promise<unknown>>();

export async function portForward(params: unknown, ctx: CallContext): Promise<object> {
  const vm = ctx.session.currentVm();
  const forwards = forwardsParam(params);
  const seen = new Set<string>();
  for (const f of forwards) {
    const key = `${f.address}:${f.localPort}`;
    if (f.localPort !== 0 && seen.has(key))
      throw new RpcError(RpcCode.VmFailed, `duplicate listen address ${key}`);
    seen.add(key);
  }
  const previous = queues.get(vm) ?? Promise.resolve();
  const run = previous.then(async () => {
    vm.portForwards?.close();
    vm.portForwards = undefined;
    const publisher = new PortPublisher(vm.sandbox.api);
    try {
      const bound = await publisher.listenAll(forwards);
      // Closed (or replaced by a new create) while binding: nothing may outlive its VM.
      if (ctx.session.peekVm() !== vm) throw new Error("VM not created");
      vm.portForwards = publisher;
      return {
        bindings: bound.map((b) => ({
          address: b.address,
          local_port: b.localPort,
          remote_port: b.remotePort,
        })),
      };
    } catch (err) {
      publisher.close();
      throw vmError(err);
    }
  });
  queues.set(
    vm,
    run.catch(() => undefined),
  );
  return run;
}
