import { createConnection, type Socket } from "node:net";

/** QEMU's replies are small; a longer line is not QEMU talking. */
const MAX_LINE_CHARS = 1024 * 1024;

export interface QmpCommand {
  command: string;
  args?: Record<string, unknown>;
}

function commandLine({ command, args }: QmpCommand): string {
  return `${JSON.stringify({ execute: command, ...(args ? { arguments: args } : {}) })}\n`;
}

/**
 * A minimal QMP (QEMU Machine Protocol) client: one command at a time, JSON lines over a unix
 * socket. Used to save a VM's state for a snapshot and to start loading one.
 */
export class QmpClient {
  private buffer = "";
  private readonly messages: Record<string, unknown>[] = [];
  private waiting: ((msg: Record<string, unknown>) => void) | undefined;
  private failure: Error | undefined;

  private constructor(private readonly socket: Socket) {
    socket.setEncoding("utf8");
    socket.on("data", (chunk: string) => this.onData(chunk));
    socket.on("error", (err) => this.fail(err));
    socket.on("close", () => this.fail(new Error("QMP connection closed")));
  }

  static async connect(path: string, timeoutMs = 5000): Promise<QmpClient> {
    const socket = await new Promise<Socket>((resolve, reject) => {
      const s = createConnection(path);
      const timer = setTimeout(() => {
        s.destroy();
        reject(new Error(`QMP connect timed out: ${path}`));
      }, timeoutMs);
      s.once("connect", () => {
        clearTimeout(timer);
        resolve(s);
      });
      s.once("error", (err) => {
        clearTimeout(timer);
        reject(err);
      });
    });
    return QmpClient.attach(socket);
  }

  /**
   * Takes over a connected socket (QEMU may also connect to us): greeting, capabilities, then
   * `commands`. All are written at once, before the greeting arrives: QEMU runs a
   * connection's commands in order, so a fresh QEMU costs one round trip instead of one per
   * command (each is a main-loop wake-up on a loaded machine). The first failed command
   * throws; those after it may still have run.
   */
  static async attach(socket: Socket, commands: QmpCommand[] = []): Promise<QmpClient> {
    const client = new QmpClient(socket);
    try {
      const all: QmpCommand[] = [{ command: "qmp_capabilities" }, ...commands];
      socket.write(all.map(commandLine).join(""));
      await client.next(); // greeting
      for (const { command } of all) await client.reply(command);
    } catch (err) {
      client.close();
      throw err;
    }
    return client;
  }

  /** Runs a command and returns its `return` value; a QMP error becomes an Error. */
  async execute(command: string, args?: Record<string, unknown>): Promise<unknown> {
    this.socket.write(commandLine({ command, ...(args ? { args } : {}) }));
    return this.reply(command);
  }

  private async reply(command: string): Promise<unknown> {
    const msg = await this.next();
    if ("error" in msg) {
      const error = msg.error as { desc?: string } | undefined;
      throw new Error(`QMP ${command}: ${error?.desc ?? "failed"}`);
    }
    return msg.return;
  }

  close(): void {
    this.socket.destroy();
  }

  private next(): Promise<Record<string, unknown>> {
    if (this.failure) return Promise.reject(this.failure);
    const message = this.messages.shift();
    if (message) return Promise.resolve(message);
    return new Promise((resolve) => (this.waiting = resolve));
  }

  /**
   * Parses whole lines as they come. Asynchronous events are dropped here, not queued: a
   * monitor stays open for a sandbox's life (checkpoints), and a guest can make QEMU emit
   * events (RTC_CHANGE, ...) as fast as it likes while nobody reads them.
   */
  private onData(chunk: string): void {
    this.buffer += chunk;
    for (;;) {
      const nl = this.buffer.indexOf("\n");
      if (nl < 0) break;
      const text = this.buffer.slice(0, nl).trim();
      this.buffer = this.buffer.slice(nl + 1);
      if (!text) continue;
      let message: Record<string, unknown>;
      try {
        message = JSON.parse(text) as Record<string, unknown>;
      } catch {
        this.fail(new Error("QMP sent a line that is not JSON"));
        this.socket.destroy();
        return;
      }
      if ("event" in message) continue;
      this.deliver(message);
    }
    if (this.buffer.length > MAX_LINE_CHARS) {
      this.fail(new Error("QMP line too long"));
      this.socket.destroy();
    }
  }

  private deliver(message: Record<string, unknown>): void {
    const resolve = this.waiting;
    this.waiting = undefined;
    if (resolve) resolve(message);
    else this.messages.push(message);
  }

  private fail(err: Error): void {
    this.failure ??= err;
    const resolve = this.waiting;
    this.waiting = undefined;
    // The pending next() sees the failure through a synthetic error reply.
    resolve?.({ error: { desc: this.failure.message } });
  }
}
