// A wire-level client for the rpc tests: writes raw lines, reads every line the server writes,
// and matches responses to requests by id (what the SDKs do, without any SDK code).
import { PassThrough, type Readable, type Writable } from "node:stream";
import { RpcSession, type RpcSessionOptions } from "../../src/rpc/index.js";
import { fakeFactory, type FakeFactory } from "./rpc-fake-sandbox.js";

export interface Message {
  jsonrpc?: string;
  id?: number;
  method?: string;
  params?: Record<string, unknown> & { id?: number | null; data?: string };
  result?: Record<string, unknown>;
  error?: { code: number; message: string };
}

export class WireClient {
  /** Every line the server wrote, raw. */
  readonly raw: string[] = [];
  readonly messages: Message[] = [];
  /** Responses (not notifications) by kind, kept as counters so big tests stay linear. */
  results = 0;
  errors = new Map<number, number>();
  private buffer = "";
  private nextId = 1;
  private readonly waiters = new Set<() => void>();
  ended = false;

  constructor(
    /** The server's stdin. */
    readonly input: Writable,
    /** The server's stdout. */
    output: Readable,
  ) {
    output.setEncoding("latin1");
    output.on("data", (text: string) => {
      this.buffer += text;
      let nl: number;
      while ((nl = this.buffer.indexOf("\n")) >= 0) {
        const line = this.buffer.slice(0, nl);
        this.buffer = this.buffer.slice(nl + 1);
        this.raw.push(line);
        const m = JSON.parse(line) as Message;
        this.messages.push(m);
        if (m.method === undefined && m.result !== undefined) this.results++;
        if (m.error) this.errors.set(m.error.code, (this.errors.get(m.error.code) ?? 0) + 1);
      }
      for (const fn of this.waiters) fn();
    });
    output.on("end", () => {
      this.ended = true;
      for (const fn of this.waiters) fn();
    });
  }

  /** Writes one line as given (no newline added when `raw` ends with one). */
  write(raw: string | Buffer): void {
    this.input.write(raw);
  }

  send(message: object): void {
    this.input.write(`${JSON.stringify(message)}\n`);
  }

  /** Sends a request with a fresh id; resolves with its id. */
  request(method: string, params?: unknown): number {
    const id = this.nextId++;
    this.send({ jsonrpc: "2.0", method, id, ...(params !== undefined ? { params } : {}) });
    return id;
  }

  /** Resolves with the first message (from `from` on) that `pred` accepts. */
  waitFor(pred: (m: Message) => boolean, timeoutMs = 5000, from = 0): Promise<Message> {
    return new Promise((resolve, reject) => {
      const check = () => {
        const found = this.messages.slice(from).find(pred);
        if (found) {
          cleanup();
          resolve(found);
        }
      };
      const timer = setTimeout(() => {
        cleanup();
        reject(new Error(`no matching message within ${timeoutMs} ms; got ${this.raw.join("\n")}`));
      }, timeoutMs);
      const cleanup = () => {
        clearTimeout(timer);
        this.waiters.delete(check);
      };
      this.waiters.add(check);
      check();
    });
  }

  /** Resolves once `cond()` holds (checked as lines arrive; keep it cheap). */
  until(cond: () => boolean, timeoutMs = 5000): Promise<void> {
    return new Promise((resolve, reject) => {
      const check = () => {
        if (!cond()) return;
        clearTimeout(timer);
        this.waiters.delete(check);
        resolve();
      };
      const timer = setTimeout(() => {
        this.waiters.delete(check);
        reject(new Error(`condition not met within ${timeoutMs} ms (${this.raw.length} lines)`));
      }, timeoutMs);
      this.waiters.add(check);
      check();
    });
  }

  response(id: number, timeoutMs?: number): Promise<Message> {
    return this.waitFor((m) => m.id === id && m.method === undefined, timeoutMs);
  }

  async call(method: string, params?: unknown, timeoutMs?: number): Promise<Message> {
    return this.response(this.request(method, params), timeoutMs);
  }

  /** Notifications for request `id`, in order. */
  notes(id: number, method?: string): Message[] {
    return this.messages.filter(
      (m) =>
        m.method !== undefined &&
        m.params?.id === id &&
        (method === undefined || m.method === method),
    );
  }

  /** The decoded `data` of notifications for `id`. */
  data(id: number, method: string): string {
    return this.notes(id, method)
      .map((m) => Buffer.from(m.params?.data ?? "", "base64").toString("utf8"))
      .join("");
  }
}

export interface Harness {
  client: WireClient;
  session: RpcSession;
  fake: FakeFactory;
}

/** A session over in-memory streams with a fake sandbox factory. */
export function startSession(
  opts: Partial<RpcSessionOptions> & { fake?: FakeFactory } = {},
): Harness {
  const input = new PassThrough();
  const output = new PassThrough();
  const fake = opts.fake ?? fakeFactory();
  const session = new RpcSession({ factory: fake.factory, ...opts, input, output });
  return { client: new WireClient(input, output), session, fake };
}

/** `create` with a minimal payload; resolves once the VM runs. */
export async function created(h: Harness, params: object = {}): Promise<string> {
  const r = await h.client.call("create", { image: "alpine:latest", ...params });
  if (r.error) throw new Error(`create failed: ${r.error.message}`);
  return r.result?.id as string;
}

export const b64 = (s: string | Buffer): string => Buffer.from(s).toString("base64");
