import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  debianMirrorsFor,
  mirrorSourceLines,
  parseOneLineSources,
} from "../../src/image/debian-mirror.js";

function aptDir(t: { after: (fn: () => void) => void }, files: Record<string, string>): string {
  const dir = mkdtempSync(join(tmpdir(), "wl-apt-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  mkdirSync(join(dir, "sources.list.d"));
  for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text);
  return dir;
}

test("a Debian 12 host's deb822 sources give its own mirrors", (t) => {
  const dir = aptDir(t, {
    "sources.list.d/debian.sources": [
      "Types: deb",
      "URIs: http://mirror.example/debian/",
      "Suites: bookworm bookworm-updates",
      "Components: main",
      "Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg",
      "",
      "Types: deb",
      "URIs: http://mirror.example/debian-security",
      "Suites: bookworm-security",
      "Components: main",
      "",
    ].join("\n"),
    "sources.list.d/other.list": "deb https://packages.example/apt cloud-sdk-bookworm main\n",
  });
  assert.deepEqual(debianMirrorsFor("bookworm", dir), {
    archive: "http://mirror.example/debian",
    security: "http://mirror.example/debian-security",
  });
});

test("one-line sources with options and comments are understood", (t) => {
  const dir = aptDir(t, {
    "sources.list": [
      "# deb http://old.example/debian bookworm main",
      "deb-src http://src.example/debian bookworm main",
      "deb [arch=amd64 signed-by=/k.gpg] http://one.example/debian bookworm main contrib",
      "deb http://sec.example/debian-security bookworm-security main",
    ].join("\n"),
  });
  assert.deepEqual(debianMirrorsFor("bookworm", dir), {
    archive: "http://one.example/debian",
    security: "http://sec.example/debian-security",
  });
});

test("a host that does not serve the suite (Ubuntu) falls back to deb.debian.org", (t) => {
  const dir = aptDir(t, {
    "sources.list": "deb http://archive.ubuntu.com/ubuntu noble main universe\n",
  });
  const m = debianMirrorsFor("bookworm", dir);
  assert.equal(m.archive, "http://deb.debian.org/debian");
  assert.equal(m.security, "http://deb.debian.org/debian-security");
  assert.deepEqual(mirrorSourceLines("bookworm", m), [
    "deb http://deb.debian.org/debian bookworm main",
    "deb http://deb.debian.org/debian bookworm-updates main",
    "deb http://deb.debian.org/debian-security bookworm-security main",
  ]);
});

test("parseOneLineSources ignores lines that are not deb entries", () => {
  assert.deepEqual(parseOneLineSources("\n  \n# x\nrubbish\n"), []);
});
