/**
 * Which exec a guest process or socket belongs to, asked of the guest agent (ATTRIBUTE,
 * docs/PROTOCOL.md). Questions asked in the same event-loop turn travel in one request (at
 * most 64 keys each); answers about processes are kept a few seconds, since a process that
 * touches a mount usually does so many times; every question has a deadline, after which its
 * answer is "unknown" (undefined), so nothing that waits on one can hang. A TCP connection
 * whose SYN names its process (the SYN stamp) is answered from those kept answers, with no
 * question at all, when the process was seen lately.
 */
import type { AttributionKey, GuestAttribution } from "../channel/index.js";
import { MAX_ATTRIBUTE_KEYS } from "../channel/index.js";
import type { GuestOrigin, SynStamp } from "../net/index.js";

/** Who in the guest did something: the exec (null: no exec), the process, its command line. */
export type ExecAttribution = GuestOrigin;

export type AttributionAsk = (keys: readonly AttributionKey[]) => Promise<GuestAttribution[]>;

export interface AttributorOptions {
  /** After this long a question's answer is unknown (default 2000 ms). */
  timeoutMs?: number;
  /**
   * How long an answer about a process is used as it is (default 5000 ms). The guest kernel
   * hands a pid out again only after going through all others, so a process seen this
   * recently is usually still the same one — not always: root in a privileged sandbox can
   * shrink pid_max, any command can fork through all pids (a known limit, docs/OBSERVE.md;
   * keying by start time needs the agent to report it).
   */
  pidTtlMs?: number;
  /**
   * For this long after that (default 30000 ms) an answer is still used at once, and asked
   * again in the background: a process's requests are held only the first time it is seen,
   * not every few seconds.
   */
  pidStaleMs?: number;
  /** Answers kept at most (default 4096). */
  maxCachedPids?: number;
  /**
   * Whether the host started an exec of this id in this sandbox. An answer naming any other
   * is unknown: the guest cannot pin its traffic on an exec that does not exist.
   */
  isKnownExec?: (execId: number) => boolean;
}

/**
 * An answer as kept: what events carry, and the cgroup the process was in when asked, which
 * only matches SYN stamps against it (kept out of events: it means nothing outside the guest).
 */
interface Known {
  readonly attribution: ExecAttribution;
  readonly cgroup?: bigint;
}

type Maybe<T> = T | undefined | Promise<T | undefined>;

/** A question about a pid in flight, shared by everyone who asks meanwhile. */
interface PidQuestion {
  readonly known: Promise<Known | undefined>;
  /** The same, as `forPid` answers (one promise for all its callers). */
  readonly attribution: Promise<ExecAttribution | undefined>;
}

interface Question {
  key: AttributionKey;
  resolve: (answer: Known | undefined) => void;
}

const attributionOf = (known: Known | undefined): ExecAttribution | undefined => known?.attribution;

/** Cgroups whose exec is remembered (the agent keeps at most 256 exec cgroups at once). */
const MAX_CGROUPS = 1024;

/** A pid the guest could have (0: the kernel on nobody's behalf). */
const isPid = (pid: number): boolean => Number.isInteger(pid) && pid > 0;

/**
 * The answer to `key`, checked: the guest answers in order, but an answer about another key,
 * another process, or an exec the host never started is no answer (unknown).
 */
function toAttribution(
  key: AttributionKey,
  answer: GuestAttribution | undefined,
  isKnownExec: (execId: number) => boolean,
): Known | undefined {
  if (answer === undefined || answer.state === "gone") return undefined;
  if (answer.kind !== key.kind || answer.key !== key.key) return undefined;
  if (key.kind === "pid" && answer.pid !== key.key) return undefined;
  if (answer.state === "exec" && !isKnownExec(answer.execStream ?? 0)) return undefined;
  const attribution: ExecAttribution = {
    execId: answer.state === "exec" ? (answer.execStream ?? null) : null,
    ...(answer.pid !== undefined ? { pid: answer.pid } : {}),
    ...(answer.argv !== undefined ? { command: answer.argv } : {}),
  };
  return { attribution, ...(answer.cgroup !== undefined ? { cgroup: answer.cgroup } : {}) };
}

export class Attributor {
  private ask: AttributionAsk | undefined;
  private closed = false;
  private queue: Question[] = [];
  private flushing = false;
  private readonly byPid = new Map<number, { known: Known; until: number }>();
  private readonly asking = new Map<number, PidQuestion>();
  /** The exec each cgroup was found to be (answers carry both): names a stamp's exec. */
  private readonly execOfCgroup = new Map<bigint, number | null>();
  /** A stamped SYN was seen: this guest stamps its connections. */
  private stamping = false;
  private readonly timeoutMs: number;
  private readonly pidTtlMs: number;
  private readonly pidStaleMs: number;
  private readonly maxCached: number;
  private readonly isKnownExec: (execId: number) => boolean;

  constructor(opts: AttributorOptions = {}) {
    this.timeoutMs = opts.timeoutMs ?? 2000;
    this.pidTtlMs = opts.pidTtlMs ?? 5000;
    this.pidStaleMs = opts.pidStaleMs ?? 30_000;
    this.maxCached = opts.maxCachedPids ?? 4096;
    this.isKnownExec = opts.isKnownExec ?? (() => true);
  }

  /**
   * Starts asking the agent. Before, only the agent's own helpers (boot-time mount binds) run
   * in the guest: everything is "no exec". After `close()`, everything is unknown.
   */
  connect(ask: AttributionAsk): void {
    this.ask = ask;
  }

  close(): void {
    this.closed = true;
    this.ask = undefined;
    for (const q of this.queue.splice(0)) q.resolve(undefined);
  }

  /**
   * The exec of a guest process: the answer itself when it is known (no promise, no delay:
   * the caller can go on synchronously), else a promise of it.
   */
  forPid(pid: number): Maybe<ExecAttribution> {
    if (this.closed || !isPid(pid)) return undefined;
    if (pid === 1 || this.ask === undefined) return { execId: null, pid };
    return this.keptAnswer(pid)?.attribution ?? this.pidQuestion(pid).attribution;
  }

  /**
   * The exec of the guest TCP connection from local `port` whose SYN carried `stamp`. The
   * kept answer about the stamp's pid (same freshness rules as `forPid`) is the answer, at
   * once, when it found the process in the stamp's cgroup: each exec has its own, so a pid
   * another exec's process has since been handed is told apart (one reused within the same
   * exec is not: forPid's known limit). Otherwise the pid is asked about; when that answer
   * does not match either (the process is gone, or the pid is another's now), the exec an
   * earlier answer found in the stamp's cgroup is named, with the stamp's pid; else nothing.
   * Never the socket's holder: another exec's socket can share the local port (a command may
   * set ip_local_port_range), and a command can hide its own socket while the agent looks.
   */
  forStamp(stamp: SynStamp, port: number): Maybe<ExecAttribution> {
    // Nothing kept or asked by pid before the agent answers, nor for init (never asked).
    if (this.closed || this.ask === undefined || !isPid(stamp.pid) || stamp.pid === 1)
      return this.forSocket("tcp", port);
    this.stamping = true;
    const matches = (known: Known | undefined): known is Known => known?.cgroup === stamp.cgroup;
    const kept = this.keptAnswer(stamp.pid);
    if (matches(kept)) return kept.attribution;
    return this.pidQuestion(stamp.pid).known.then((known) => {
      if (matches(known)) return known.attribution;
      const execId = this.execOfCgroup.get(stamp.cgroup);
      return execId === undefined ? undefined : { execId, pid: stamp.pid };
    });
  }

  /**
   * The exec of a guest flow: by its SYN's stamp where it has one. A TCP flow without one from
   * a guest that stamps (one was seen) is unknown: a retransmitted SYN whose first copy was lost,
   * or a command that kept its SYN from being stamped so that it is asked about by port.
   */
  forFlow(protocol: "tcp" | "udp", port: number, stamp?: SynStamp): Maybe<ExecAttribution> {
    if (stamp !== undefined) return this.forStamp(stamp, port);
    if (protocol === "tcp" && this.stamping) return undefined;
    return this.forSocket(protocol, port);
  }

  /**
   * The kept answer about `pid` while it may be used: fresh, or stale but recent (then asked
   * again in the background, and used meanwhile). Past that it is asked again, and unknown.
   */
  private keptAnswer(pid: number): Known | undefined {
    const cached = this.byPid.get(pid);
    if (cached === undefined) return undefined;
    const now = Date.now();
    if (cached.until > now) return cached.known;
    this.pidQuestion(pid);
    return cached.until + this.pidStaleMs > now ? cached.known : undefined;
  }

  /** The question about `pid` in flight, asked now if none is. */
  private pidQuestion(pid: number): PidQuestion {
    const inFlight = this.asking.get(pid);
    if (inFlight !== undefined) return inFlight;
    const known = this.question({ kind: "pid", key: pid }).then((answer) => {
      this.asking.delete(pid);
      this.remember(pid, answer);
      return answer;
    });
    const asked = { known, attribution: known.then(attributionOf) };
    this.asking.set(pid, asked);
    return asked;
  }

  /** The exec of the guest socket bound to local `port` (a flow the guest opened). */
  forSocket(protocol: "tcp" | "udp", port: number): Promise<ExecAttribution | undefined> {
    if (this.closed || this.ask === undefined) return Promise.resolve(undefined);
    return this.question({ kind: protocol, key: port }).then((answer) => {
      const pid = answer?.attribution.pid;
      if (pid !== undefined) this.remember(pid, answer);
      return attributionOf(answer);
    });
  }

  private remember(pid: number, answer: Known | undefined): void {
    if (answer === undefined) {
      // Gone: asking again later costs nothing, and a stale answer must not outlive it.
      this.byPid.delete(pid);
      return;
    }
    if (this.byPid.size >= this.maxCached) {
      const now = Date.now();
      for (const [p, entry] of this.byPid) if (entry.until <= now) this.byPid.delete(p);
      // Still full: drop the oldest (Map order is insertion order).
      if (this.byPid.size >= this.maxCached) this.byPid.delete(this.byPid.keys().next().value!);
    }
    this.byPid.set(pid, { known: answer, until: Date.now() + this.pidTtlMs });
    if (answer.cgroup !== undefined) {
      this.execOfCgroup.delete(answer.cgroup); // kept in the order last seen
      this.execOfCgroup.set(answer.cgroup, answer.attribution.execId);
      if (this.execOfCgroup.size > MAX_CGROUPS)
        this.execOfCgroup.delete(this.execOfCgroup.keys().next().value!);
    }
  }

  private question(key: AttributionKey): Promise<Known | undefined> {
    return new Promise((resolve) => {
      this.queue.push({ key, resolve });
      if (!this.flushing) {
        this.flushing = true;
        setImmediate(() => this.flush());
      }
    });
  }

  private flush(): void {
    this.flushing = false;
    while (this.queue.length > 0) this.send(this.queue.splice(0, MAX_ATTRIBUTE_KEYS));
  }

  private send(batch: Question[]): void {
    const ask = this.ask;
    let settled = false;
    const answer = (answers: (GuestAttribution | undefined)[]): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      batch.forEach((q, i) => q.resolve(toAttribution(q.key, answers[i], this.isKnownExec)));
    };
    const timer = setTimeout(() => answer([]), this.timeoutMs);
    timer.unref();
    if (!ask) return answer([]);
    ask(batch.map((q) => q.key)).then(answer, () => answer([]));
  }
}
