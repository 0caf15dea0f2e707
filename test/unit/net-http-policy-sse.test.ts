import { test } from "node:test";
import assert from "node:assert/strict";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { sseDataTransform } from "../../src/net/http-policy/index.js";
import { toByteReplacements } from "../../src/net/http-policy/bytes.js";
import { mulberry32 } from "../helpers/seeded-random.js";

const REPLACEMENTS = [
  { find: "sk-live", replace: "[redacted]" },
  { find: "[redacted]x", replace: "Y" }, // sees the output of the first: order matters
  { find: "\u00e9t\u00e9", replace: "summer" }, // multi-byte: splits inside a character
  { find: "ab", replace: "" },
];

/** The expected output, computed independently on strings, line by line. */
function oracle(text: string): string {
  const lines = text.match(/[^\n]*\n|[^\n]+$/g) ?? [];
  return lines
    .map((line) => {
      if (!line.startsWith("data:")) return line;
      const ending = /\r?\n$/.exec(line)?.[0] ?? "";
      let payload = line.slice(5, line.length - ending.length);
      for (const r of REPLACEMENTS) payload = payload.split(r.find).join(r.replace);
      return `data:${payload}${ending}`;
    })
    .join("");
}

async function runChunks(chunks: Buffer[], maxLine?: number): Promise<Buffer> {
  const out: Buffer[] = [];
  await pipeline(
    Readable.from(chunks),
    sseDataTransform(toByteReplacements(REPLACEMENTS), maxLine),
    async (src) => {
      for await (const c of src) out.push(c as Buffer);
    },
  );
  return Buffer.concat(out);
}

function randomStream(rand: () => number): string {
  const pieces = [
    "sk-live",
    "x",
    "ab",
    "a",
    "b",
    "\u00e9t\u00e9",
    " ",
    "data:",
    '{"k":1}',
    "\r",
    "sk-",
  ];
  const prefixes = ["data:", "data: ", "event:", ": comment ", "id:", "data", "Data:", ""];
  let text = "";
  const lines = 1 + Math.floor(rand() * 12);
  for (let i = 0; i < lines; i++) {
    text += prefixes[Math.floor(rand() * prefixes.length)];
    const n = Math.floor(rand() * 6);
    for (let j = 0; j < n; j++) text += pieces[Math.floor(rand() * pieces.length)];
    const r = rand();
    text += r < 0.45 ? "\n" : r < 0.9 ? "\r\n" : r < 0.95 ? "\n\n" : "";
  }
  return text;
}

function randomSplit(data: Buffer, rand: () => number): Buffer[] {
  const chunks: Buffer[] = [];
  let at = 0;
  while (at < data.length) {
    const len = 1 + Math.floor(rand() * (rand() < 0.5 ? 3 : 40));
    chunks.push(data.subarray(at, at + len));
    at += len;
  }
  return chunks;
}

test("SSE rewrite: examples (data lines only, endings kept, replacements in order)", async () => {
  const input =
    "event: sk-live\r\ndata: key=sk-live\r\ndata:sk-livex\n: sk-live\ndata: ab\n\ndata: last sk-live";
  const out = await runChunks([Buffer.from(input)]);
  assert.equal(
    out.toString(),
    "event: sk-live\r\ndata: key=[redacted]\r\ndata:Y\n: sk-live\ndata: \n\ndata: last [redacted]",
  );
  assert.equal(out.toString(), oracle(input));
});

test("SSE rewrite: output independent of chunking (seeded property test, 500 streams)", async () => {
  const rand = mulberry32(0x5e5e);
  for (let i = 0; i < 500; i++) {
    const text = randomStream(rand);
    const data = Buffer.from(text);
    const expected = oracle(text);
    const whole = (await runChunks([data])).toString();
    assert.equal(whole, expected, `stream ${i} whole: ${JSON.stringify(text)}`);
    const split = randomSplit(data, rand);
    const out = (await runChunks(split)).toString();
    assert.equal(out, expected, `stream ${i} split ${JSON.stringify(split.map(String))}`);
  }
});

test("SSE rewrite: byte-at-a-time equals whole", async () => {
  const text = "data: sk-live \u00e9t\u00e9 ab\r\nevent: x\ndata: sk-livex\r\n\r\n";
  const bytes = Buffer.from(text);
  const single = [...bytes].map((b) => Buffer.from([b]));
  assert.equal((await runChunks(single)).toString(), oracle(text));
});

test("SSE rewrite: a line longer than the bound fails the stream instead of passing it", async () => {
  const long = Buffer.from(`data: ${"sk-live".repeat(200)}`);
  await assert.rejects(runChunks(randomSplit(long, mulberry32(1)), 512), /longer than 512 bytes/);
  const ok = await runChunks([Buffer.from(`data: ${"z".repeat(400)}\n`)], 512);
  assert.equal(ok.length, 407);
});
