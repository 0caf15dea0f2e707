// Guest-written logs on the host: bounded on disk (a two-segment ring), and cleaned of terminal
// control sequences before `wheellock log` prints them (finding 5).
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync, statSync, writeFileSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { finished } from "node:stream/promises";
import { scratchDir } from "../helpers/vm.js";
import {
  openRingLog,
  previousSegmentPath,
  readRingLogTail,
  ringLogSegments,
} from "../../src/util/ring-log.js";
import { sanitizeTerminalText, TerminalSanitizer } from "../../src/util/terminal-text.js";

const ESC = "\x1b";

test("escape sequences and control characters are removed whole; text and lines stay", () => {
  const cases: [string, string][] = [
    [`${ESC}[1;31mred${ESC}[0m plain`, "red plain"],
    [`${ESC}]0;pwned title\x07after`, "after"], // OSC window title, BEL-terminated
    [`${ESC}]52;c;ZWNobyBoaQ==${ESC}\\after`, "after"], // OSC 52 clipboard, ST-terminated
    [`${ESC}]8;;http://evil/${ESC}\\link${ESC}]8;;${ESC}\\`, "link"], // hyperlink
    [`${ESC}P1$r0m${ESC}\\x`, "x"], // DCS (a status-report answer-back request)
    [`${ESC}[6n${ESC}[21t${ESC}[2J${ESC}[H${ESC}[?1049h`, ""], // report requests, clear, alt screen
    [`${ESC}(B${ESC}7${ESC}c${ESC}=ok`, "ok"], // charset, save cursor, reset, keypad
    ["\u009b31mC1 csi\u009d0;t\u009c!", "C1 csi!"], // the 8-bit forms, as UTF-8
    ["a\rb\bc\x07d\x7fe\x00f\x0cg", "abcdefg"], // CR, BS, BEL, DEL, NUL, FF
    ["tab\there\nnext line\n", "tab\there\nnext line\n"],
    ["grüße ✓ 😀", "grüße ✓ 😀"],
  ];
  for (const [input, expected] of cases) {
    assert.equal(sanitizeTerminalText(input), expected, JSON.stringify(input));
  }
  // A raw 0x9B byte is CSI to an 8-bit terminal: invalid UTF-8 becomes U+FFFD instead.
  assert.equal(sanitizeTerminalText(Buffer.from([0x41, 0x9b, 0x32, 0x4a])), "A\ufffd2J");
});

test("a sequence or a UTF-8 character split across chunks is still handled", () => {
  const input = Buffer.from(`x${ESC}]0;title\x07y${ESC}[38;5;196mü😀z`);
  const sanitizer = new TerminalSanitizer();
  let out = "";
  for (const byte of input) out += sanitizer.push(Buffer.from([byte]));
  out += sanitizer.end();
  assert.equal(out, "xyü😀z");
});

test("an unterminated control string hides a bounded amount, then printing resumes", () => {
  const out = sanitizeTerminalText(`${ESC}]0;${"h".repeat(10_000)}visible`);
  assert.ok(out.endsWith("visible"));
  assert.ok(out.length < 10_000, "the start of the string is hidden");
  assert.ok(!out.includes(ESC));
});

test("the ring keeps at most two segments and always the newest bytes", async () => {
  const dir = scratchDir("wheellock-ring-");
  const path = join(dir, "console.log");
  const segment = 64 * 1024;
  const log = openRingLog(path, segment);
  const chunk = Buffer.alloc(4096);
  let written = 0;
  // 64 MiB through a 64 KiB ring: 1024 rotations.
  for (let i = 0; i < 16 * 1024; i++) {
    chunk.fill(65 + (i % 26));
    chunk.write(`#${i}#`);
    if (!log.write(Buffer.from(chunk))) await new Promise((r) => log.once("drain", r));
    written += chunk.length;
  }
  log.end(Buffer.from("\nlast line\n"));
  await finished(log);
  assert.equal(written, 64 * 1024 * 1024);
  assert.deepEqual(ringLogSegments(path), [previousSegmentPath(path), path]);
  const onDisk = statSync(path).size + statSync(previousSegmentPath(path)).size;
  assert.ok(onDisk <= 2 * segment, `${onDisk} bytes on disk`);
  assert.ok(onDisk >= segment, "at least one whole segment is kept");
  const all = Buffer.concat([readFileSync(previousSegmentPath(path)), readFileSync(path)]);
  assert.ok(all.toString().endsWith("\nlast line\n"));
  assert.ok(all.includes("#16383#"), "the newest chunk is there");
  assert.ok(!all.includes("#100#"), "old chunks are gone");
  assert.deepEqual(readRingLogTail(path, 11), Buffer.from("\nlast line\n"));
  assert.deepEqual(readRingLogTail(path, 3 * segment), all, "the tail spans both segments");
});

test("two writers of one log share its rotation (console and a detached command)", async () => {
  const dir = scratchDir("wheellock-ring-");
  const path = join(dir, "vm.log");
  const segment = 8 * 1024;
  const consoleLog = openRingLog(path, segment);
  const commandLog = openRingLog(path, segment);
  for (let i = 0; i < 200; i++) {
    consoleLog.write(`console ${i}\n`.padEnd(100, "."));
    commandLog.write(`command ${i}\n`.padEnd(100, "-"));
  }
  consoleLog.end();
  await finished(consoleLog);
  commandLog.write("command still logging\n");
  commandLog.end();
  await finished(commandLog);
  const onDisk = statSync(path).size + statSync(previousSegmentPath(path)).size;
  assert.ok(onDisk <= 2 * segment, `${onDisk} bytes on disk`);
  assert.ok(readFileSync(path, "utf8").endsWith("command still logging\n"));
});

test("`wheellock log` prints both segments cleaned, or raw with --raw", async () => {
  const dataDir = scratchDir("wheellock-log-");
  const env = { ...process.env, WHEELLOCK_DATA_DIR: dataDir };
  const id = "vm-10ac1ea2";
  const dir = join(dataDir, "sandboxes", id);
  mkdirSync(dir, { recursive: true });
  const now = new Date().toISOString();
  writeFileSync(
    join(dir, "state.json"),
    JSON.stringify({
      id,
      image: "default",
      status: "stopped",
      supervisorPid: 1,
      supervisorStartTicks: 0,
      createdAt: now,
      updatedAt: now,
      ports: [],
      config: {},
    }),
  );
  writeFileSync(join(dir, "vm.log.1"), `older ${ESC}]0;owned\x07segment\r\n`);
  writeFileSync(join(dir, "vm.log"), `newer ${ESC}[31mred${ESC}[0m\n${ESC}]52;c;aGk=\x07`);
  const cli = ["--import", "tsx", join(import.meta.dirname, "../../src/cli/main.ts"), "log", id];
  const cleaned = spawnSync(process.execPath, cli, { env, encoding: "utf8" });
  assert.equal(cleaned.status, 0, cleaned.stderr);
  assert.equal(cleaned.stdout, "older segment\nnewer red\n");
  const raw = spawnSync(process.execPath, [...cli, "--raw"], { env, encoding: "utf8" });
  assert.equal(
    raw.stdout,
    `older ${ESC}]0;owned\x07segment\r\nnewer ${ESC}[31mred${ESC}[0m\n${ESC}]52;c;aGk=\x07`,
  );
  assert.ok(existsSync(join(dir, "vm.log")));
});
