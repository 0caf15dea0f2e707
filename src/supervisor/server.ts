/** The supervisor's control socket: one operation per connection (see wire.ts). */
import { chmodSync, rmSync } from "node:fs";
import { createServer, type Server, type Socket } from "node:net";
import { PassThrough } from "node:stream";
import type { ExecProcess, Sandbox } from "../sandbox/index.js";
import { serveExec } from "./relay-exec.js";
import { wireError } from "./wire-error.js";
import {
  encodeJson,
  encodeMessage,
  Msg,
  parseJson,
  readMessages,
  type ControlRequest,
  type Message,
} from "./wire.js";

export interface ControlHandlers {
  /** `stop` asked for; the reply has been sent. */
  onStop: () => void;
  /** Opens a byte stream to a guest TCP port, when the sandbox supports it. */
  forwardPort?: (socket: Socket, port: number) => (msg: Message) => void;
  /** Changes the network allow-list at run time, when the sandbox intercepts its network. */
  allowList?: (action: "add" | "delete", hosts: string[]) => Promise<AllowListResult>;
}

export interface AllowListResult {
  changed: string[];
  /** The allow-list after the change. */
  allowed: string[];
  /** What an empty list means: every host (reference semantics), or none (`--deny-all-hosts`). */
  emptyDeniesAll?: boolean;
}

export class ControlServer {
  private readonly server: Server;
  private readonly procs = new Set<ExecProcess>();
  private readonly sockets = new Set<Socket>();

  private constructor(
    private readonly sandbox: Sandbox,
    private readonly handlers: ControlHandlers,
  ) {
    this.server = createServer((socket) => this.accept(socket));
  }

  static async listen(
    sandbox: Sandbox,
    path: string,
    handlers: ControlHandlers,
  ): Promise<ControlServer> {
    rmSync(path, { force: true });
    const control = new ControlServer(sandbox, handlers);
    await new Promise<void>((resolve, reject) => {
      control.server.once("error", reject);
      control.server.listen(path, () => resolve());
    });
    // Anyone who can connect can run commands in the sandbox: owner only.
    chmodSync(path, 0o600);
    return control;
  }

  /** Commands running through this server (for a graceful shutdown). */
  get running(): ReadonlySet<ExecProcess> {
    return this.procs;
  }

  close(): void {
    this.server.close();
    for (const socket of this.sockets) socket.destroy();
  }

  private accept(socket: Socket): void {
    this.sockets.add(socket);
    socket.once("close", () => this.sockets.delete(socket));
    socket.on("error", () => undefined);
    let onMessage: ((msg: Message) => void) | undefined;
    readMessages(socket, (msg) => {
      if (onMessage) return onMessage(msg);
      if (msg.type !== Msg.Request) return socket.destroy();
      try {
        onMessage = this.dispatch(socket, parseJson<ControlRequest>(msg.payload));
      } catch (err) {
        socket.end(encodeJson(Msg.Error, wireError(err)));
        onMessage = () => undefined;
      }
    });
  }

  private dispatch(socket: Socket, req: ControlRequest): (msg: Message) => void {
    const ignore = (): void => undefined;
    const reply = (work: Promise<unknown>): void => {
      work.then(
        (value) => socket.end(encodeJson(Msg.Result, value ?? {})),
        (err: unknown) => socket.end(encodeJson(Msg.Error, wireError(err))),
      );
    };
    const sb = this.sandbox;
    switch (req.op) {
      case "exec":
        return serveExec(sb, socket, req, (proc) => {
          this.procs.add(proc);
          return () => this.procs.delete(proc);
        });
      case "read-file":
        this.serveRead(socket, req.path);
        return ignore;
      case "write-file": {
        const body = new PassThrough();
        reply(sb.writeFile(req.path, body, req.mode !== undefined ? { mode: req.mode } : {}));
        socket.once("close", () => body.destroy());
        return (msg) => {
          if (msg.type !== Msg.Stdin) return;
          if (msg.payload.length === 0) body.end();
          else if (!body.write(msg.payload)) {
            socket.pause();
            body.once("drain", () => socket.resume());
          }
        };
      }
      case "list-files":
        reply(sb.listFiles(req.path));
        return ignore;
      case "stat":
        reply(
          sb.stat(
            req.path,
            req.followSymlinks !== undefined ? { followSymlinks: req.followSymlinks } : {},
          ),
        );
        return ignore;
      case "mkdir":
        reply(
          sb.mkdir(req.path, req.mode !== undefined ? { mode: req.mode } : {}).then(() => ({})),
        );
        return ignore;
      case "remove":
        reply(sb.remove(req.path, { recursive: req.recursive === true }).then(() => ({})));
        return ignore;
      case "port-forward":
        if (!this.handlers.forwardPort)
          throw new Error("port forwarding is not supported by this sandbox");
        return this.handlers.forwardPort(socket, req.port);
      case "allow-list":
        if (!this.handlers.allowList) {
          throw new Error(
            "allow-list updates unavailable: sandbox was started without network interception",
          );
        }
        reply(this.handlers.allowList(req.action, req.hosts));
        return ignore;
      case "stop":
        socket.end(encodeJson(Msg.Result, {}), () => this.handlers.onStop());
        return ignore;
      default:
        throw new Error(`unknown control operation: ${(req as { op: string }).op}`);
    }
  }

  private serveRead(socket: Socket, path: string): void {
    let stream;
    try {
      stream = this.sandbox.files.readFileStream(path);
    } catch (err) {
      socket.end(encodeJson(Msg.Error, wireError(err)));
      return;
    }
    socket.once("close", () => stream.destroy());
    stream.on("data", (chunk: Buffer) => {
      if (!socket.write(encodeMessage(Msg.Stdout, chunk))) {
        stream.pause();
        socket.once("drain", () => stream.resume());
      }
    });
    stream.once("end", () => socket.end(encodeJson(Msg.Result, {})));
    stream.once("error", (err) => socket.end(encodeJson(Msg.Error, wireError(err))));
  }
}
