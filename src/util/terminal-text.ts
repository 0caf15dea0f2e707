/**
 * Makes bytes a guest wrote safe to print on a terminal. A guest's console output replayed
 * raw can retitle the window, rewrite what is on screen, paste into the clipboard (OSC 52),
 * plant hyperlinks or, on some terminals, answer back into the shell. This keeps text and line
 * structure and removes the rest:
 *
 * - UTF-8 is decoded; invalid bytes become U+FFFD (a lone 0x9B byte is CSI to 8-bit terminals);
 * - whole escape sequences go, in 7-bit (ESC ...) and C1 (U+0080–U+009F) form: CSI
 *   (`ESC [` params final), OSC / DCS / SOS / PM / APC strings up to BEL or ST, and the short
 *   `ESC` [intermediates] final forms (`ESC 7`, `ESC ( B`, `ESC c`);
 * - every other C0 control except `\n` and `\t` (so `\r`, backspace and BEL too), DEL and the
 *   remaining C1 controls.
 *
 * It is streaming: a sequence split across chunks is still removed whole.
 */

/** Longest CSI parameter run kept waiting for a final byte; a longer one is cut off. */
const MAX_CSI_CHARS = 256;
/** Longest OSC/DCS/... string hidden while waiting for its terminator; then printing resumes. */
const MAX_STRING_CHARS = 4096;

const ESC = 0x1b;
const BEL = 0x07;

type State = "ground" | "escape" | "escapeIntermediate" | "csi" | "string" | "stringEscape";

/** C1 controls that open a control string (DCS, SOS, OSC, PM, APC). */
const C1_STRING_OPENERS = new Set([0x90, 0x98, 0x9d, 0x9e, 0x9f]);
/** Characters after ESC that open a control string: P (DCS), X (SOS), ] (OSC), ^ (PM), _ (APC). */
const ESC_STRING_OPENERS = new Set([0x50, 0x58, 0x5d, 0x5e, 0x5f]);

function isPrintable(code: number): boolean {
  if (code === 0x0a || code === 0x09) return true;
  return code >= 0x20 && code !== 0x7f && !(code >= 0x80 && code <= 0x9f);
}

export class TerminalSanitizer {
  private readonly decoder = new TextDecoder("utf-8", { fatal: false, ignoreBOM: true });
  private state: State = "ground";
  private sequenceChars = 0;

  /** The printable text of the next chunk of the stream. */
  push(chunk: Uint8Array): string {
    return this.filter(this.decoder.decode(chunk, { stream: true }));
  }

  /** Whatever an unfinished UTF-8 sequence at the very end decodes to. */
  end(): string {
    return this.filter(this.decoder.decode());
  }

  private filter(text: string): string {
    let out = "";
    for (const char of text) {
      const code = char.codePointAt(0) ?? 0;
      if (this.step(code)) out += char;
    }
    return out;
  }

  /** Advances the state machine by one code point; true when it is printed. */
  private step(code: number): boolean {
    switch (this.state) {
      case "ground":
        return this.ground(code);
      case "escape":
        if (code === 0x5b) return this.enter("csi");
        if (ESC_STRING_OPENERS.has(code)) return this.enter("string");
        if (code >= 0x20 && code <= 0x2f) return this.enter("escapeIntermediate");
        if (code >= 0x30 && code <= 0x7e) return this.enter("ground");
        return this.abort(code);
      case "escapeIntermediate":
        if (code >= 0x20 && code <= 0x2f) return false;
        if (code >= 0x30 && code <= 0x7e) return this.enter("ground");
        return this.abort(code);
      case "csi":
        if (code >= 0x40 && code <= 0x7e) return this.enter("ground");
        if (code >= 0x20 && code <= 0x3f && ++this.sequenceChars <= MAX_CSI_CHARS) return false;
        return this.abort(code);
      case "string":
        if (code === BEL || code === 0x9c) return this.enter("ground");
        if (code === ESC) return this.enter("stringEscape");
        if (++this.sequenceChars > MAX_STRING_CHARS) return this.abort(code);
        return false;
      case "stringEscape":
        // ESC \ is the string terminator; ESC anything else ends the string and starts anew.
        if (code === 0x5c) return this.enter("ground");
        this.state = "escape";
        return this.step(code);
    }
  }

  private ground(code: number): boolean {
    if (code === ESC) return this.enter("escape");
    if (code === 0x9b) return this.enter("csi");
    if (C1_STRING_OPENERS.has(code)) return this.enter("string");
    return isPrintable(code);
  }

  private enter(state: State): false {
    this.state = state;
    this.sequenceChars = 0;
    return false;
  }

  /** Not a sequence after all (or too long): drop what was held, judge `code` afresh. */
  private abort(code: number): boolean {
    this.enter("ground");
    return this.ground(code);
  }
}

/** Sanitizes a complete text or buffer (see TerminalSanitizer). */
export function sanitizeTerminalText(data: Uint8Array | string): string {
  const sanitizer = new TerminalSanitizer();
  const bytes = typeof data === "string" ? Buffer.from(data, "utf8") : data;
  return sanitizer.push(bytes) + sanitizer.end();
}
