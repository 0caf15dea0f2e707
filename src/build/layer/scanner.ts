/**
 * Finds any of a few byte strings (secret values, the intercept CA certificate) in a stream,
 * across chunk boundaries. Used on every layer the builder writes and on the image config:
 * a build that would publish a secret, or an image that would trust wheellock's CA, fails.
 */
export interface Needle {
  /** What to call it in the error ("secret token"); never the value. */
  label: string;
  bytes: Buffer;
}

export class NeedleScanner {
  private tail = Buffer.alloc(0);
  private readonly keep: number;
  found: string | undefined;

  constructor(private readonly needles: readonly Needle[]) {
    const lengths = needles.map((n) => n.bytes.length);
    this.keep = Math.max(0, ...lengths) - 1;
  }

  push(chunk: Buffer): void {
    if (this.found !== undefined || this.needles.length === 0) return;
    const window = this.tail.length > 0 ? Buffer.concat([this.tail, chunk]) : chunk;
    for (const n of this.needles) {
      if (n.bytes.length > 0 && window.includes(n.bytes)) {
        this.found = n.label;
        return;
      }
    }
    this.tail = Buffer.from(window.subarray(Math.max(0, window.length - this.keep)));
  }
}

/** Needles for a PEM certificate: its DER bytes and each full line of its base64 body. */
export function certificateNeedles(label: string, pem: string): Needle[] {
  const body = pem
    .split("\n")
    .map((l) => l.trim())
    .filter((l) => l !== "" && !l.startsWith("-----"));
  const needles: Needle[] = [{ label, bytes: Buffer.from(body.join(""), "base64") }];
  // Every full 64-character line except the first (ASN.1 framing, shared by many certificates).
  for (const line of body.slice(1)) {
    if (line.length === 64) needles.push({ label, bytes: Buffer.from(line) });
  }
  return needles;
}
