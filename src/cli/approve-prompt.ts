/**
 * `run --approve` in the foreground: each held request is put to the person at the terminal,
 * one at a time, as one line on stderr answered by one key — o(nce), s(andbox), d(eny),
 * n(ever: deny for the sandbox) — pressed at least ANSWER_GRACE_MS after the question appeared.
 * With `-it` the keys are taken from the guest's input only while a question is open. While
 * one is open the guest's output is held too (`output`), so the guest cannot wipe the question
 * or print a forged one in its place. A question nobody answers ends when its request times
 * out (the sandbox denies it).
 */
import type { ApprovalDecision, BlockedRequest } from "../observe/index.js";
import { OutputHold } from "./output-hold.js";
import { forTerminal } from "./terminal-text.js";

/**
 * The keys that answer, each a whole chunk of input by itself: a paste or a word typed into
 * the question (`apt-get update`) answers nothing, so typing meant for the guest cannot
 * approve by its first letter. No aliases (`y`, `a`): one letter per answer.
 */
const KEYS: Readonly<Record<string, ApprovalDecision>> = {
  o: "once",
  s: "sandbox",
  d: "deny",
  n: "deny-sandbox",
  "\r": "deny", // Enter
  "\n": "deny",
  "\x03": "deny", // Ctrl-C
  "\x1b": "deny", // Esc
};

/** The answer a chunk of terminal input gives, or undefined when it is not exactly one key. */
export function answerKey(chunk: string): ApprovalDecision | undefined {
  return Object.hasOwn(KEYS, chunk.toLowerCase()) ? KEYS[chunk.toLowerCase()] : undefined;
}

/**
 * Keys that come this soon after a question appears answer nothing: a person typing into the
 * guest (`ls` then `s`...) must not approve a question they have not had time to read.
 */
export const ANSWER_GRACE_MS = 500;

/** Select Graphic Rendition: every attribute (colours, conceal, ...) back to the default. */
const SGR_RESET = "\x1b[0m";

interface Question {
  request: BlockedRequest;
  answer: (decision: ApprovalDecision) => void;
}

function who(request: BlockedRequest): string {
  const a = request.attribution;
  if (!a) return "the sandbox";
  const command = a.command?.join(" ") ?? "";
  const shown = forTerminal(command.length > 60 ? `${command.slice(0, 57)}...` : command);
  const what = a.execId === null ? "a process started by no exec" : `exec ${a.execId}`;
  return shown ? `${what} (${shown})` : what;
}

/**
 * The address the host would dial, where it is known without DNS (a `--resolve` entry, an IP
 * literal): a name pinned somewhere unexpected shows here. Other names are not looked up
 * before they are allowed (a lookup would leak the guest's chosen name).
 */
function where(request: BlockedRequest): string {
  return request.address !== undefined ? `at ${request.address}` : "(not resolved until allowed)";
}

export class ApprovalPrompt {
  private readonly queue: Question[] = [];
  private current: Question | undefined;
  private timer: NodeJS.Timeout | undefined;
  private readingOwnInput = false;
  /** When the open question was put (keys before ANSWER_GRACE_MS after it answer nothing). */
  private askedAt = 0;
  /** The guest's output, held while a question is open (forward.ts passes its writes). */
  readonly output = new OutputHold();

  /**
   * @param guestInput true when the terminal's keys go to the guest (-it): then `take` is
   * fed every chunk by the terminal code and the prompt keeps only what answers it.
   */
  constructor(
    private readonly guestInput: boolean,
    private readonly out: NodeJS.WriteStream = process.stderr,
    private readonly input: NodeJS.ReadStream = process.stdin,
    private readonly answerGraceMs = ANSWER_GRACE_MS,
  ) {}

  /** `onBlockedRequest` for the sandbox. */
  readonly decide = (request: BlockedRequest, ended?: AbortSignal): Promise<ApprovalDecision> =>
    new Promise((answer) => {
      const q = { request, answer };
      this.queue.push(q);
      // Let go (guest left, decided elsewhere): the question, and the guest's held output, go.
      ended?.addEventListener("abort", () => this.withdraw(q), { once: true });
      if (!this.current) this.next();
    });

  /** With -it: a chunk of terminal input; true when the prompt took it. */
  readonly take = (chunk: Buffer): boolean => {
    if (!this.current) return false;
    this.key(chunk.toString("utf8"));
    return true;
  };

  private next(): void {
    const q = this.queue.shift();
    this.current = q;
    if (!q) {
      this.output.release();
      return this.stopReading();
    }
    const left = Date.parse(q.request.expiresAt) - Date.now();
    if (left <= 0) {
      q.answer("deny");
      return this.next();
    }
    this.output.hold();
    this.ask(q.request);
    this.askedAt = Date.now();
    // The sandbox denies it when it times out; the question goes with it.
    this.timer = setTimeout(() => this.settle("deny", "timed out"), left);
    if (!this.guestInput) this.readOwnInput();
  }

  private ask(r: BlockedRequest): void {
    // The guest's output before the question may have left the terminal drawing invisibly
    // (SGR 8 "conceal", the same colour on the same colour): the question resets the
    // attributes first, or a person typing into the guest answers a question they never saw.
    this.out.write(
      `${SGR_RESET}\r\nwheellock: ${who(r)} wants ${r.method} ${forTerminal(r.url)} ${where(r)} (request ${r.requestId}) - ` +
        `allow [o]nce, for the [s]andbox, [d]eny, or [n]ever (deny for the sandbox)? `,
    );
  }

  private key(text: string): void {
    // Typed before the question could be read: meant for the guest, answers nothing.
    if (Date.now() - this.askedAt < this.answerGraceMs) return;
    const decision = answerKey(text);
    if (decision !== undefined) return this.settle(decision);
    // Anything else answers nothing; the question is shown again, whole, as the last line.
    if (this.current) {
      this.out.write("(one key: o, s, d or n)");
      this.ask(this.current.request);
    }
  }

  private settle(decision: ApprovalDecision, note?: string): void {
    const q = this.current;
    if (!q) return;
    clearTimeout(this.timer);
    this.out.write(`${note ?? decision}\r\n`);
    this.current = undefined;
    q.answer(decision);
    this.next();
  }

  private withdraw(q: Question): void {
    const expired = Date.now() >= Date.parse(q.request.expiresAt);
    if (this.current === q) return this.settle("deny", expired ? "timed out" : "no longer waiting");
    const at = this.queue.indexOf(q);
    if (at >= 0) this.queue.splice(at, 1);
  }

  private readonly onData = (chunk: Buffer): void => this.key(chunk.toString("utf8"));

  private readOwnInput(): void {
    if (this.readingOwnInput) return;
    this.readingOwnInput = true;
    if (this.input.isTTY) this.input.setRawMode(true);
    this.input.on("data", this.onData);
    this.input.resume();
  }

  private stopReading(): void {
    if (!this.readingOwnInput) return;
    this.readingOwnInput = false;
    this.input.off("data", this.onData);
    if (this.input.isTTY) this.input.setRawMode(false);
    this.input.pause();
  }
}
