import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { parsePlatform, platformMatches } from "../../src/image/platform.js";
import {
  canonicalReference,
  familiarRepository,
  isLoopbackRegistry,
  parseReference,
} from "../../src/image/reference.js";
import { parseChallenge } from "../../src/image/www-authenticate.js";

const D = `sha256:${"a".repeat(64)}`;

describe("image references", () => {
  const cases: Array<[string, string]> = [
    ["alpine", "docker.io/library/alpine:latest"],
    ["alpine:3.20", "docker.io/library/alpine:3.20"],
    ["user/app", "docker.io/user/app:latest"],
    ["docker.io/alpine", "docker.io/library/alpine:latest"],
    ["index.docker.io/library/alpine:1", "docker.io/library/alpine:1"],
    ["ghcr.io/org/img:v1", "ghcr.io/org/img:v1"],
    ["localhost:5000/x", "localhost:5000/x:latest"],
    ["localhost/x:2", "localhost/x:2"],
    [`alpine@${D}`, `docker.io/library/alpine@${D}`],
    [`reg.example:443/a/b/c:t@${D}`, `reg.example:443/a/b/c:t@${D}`],
  ];
  for (const [input, want] of cases)
    test(`${input} -> ${want}`, () =>
      assert.equal(canonicalReference(parseReference(input)), want));

  test("bad references are refused", () => {
    for (const bad of ["", "Alpine", "a:b:c", "alpine@sha256:12", "a//b", "-x", "x:"]) {
      assert.throws(() => parseReference(bad), /invalid image reference/, bad);
    }
  });

  test("familiar names for listings", () => {
    assert.equal(familiarRepository(parseReference("alpine")), "alpine");
    assert.equal(familiarRepository(parseReference("user/app")), "user/app");
    assert.equal(familiarRepository(parseReference("ghcr.io/o/r")), "ghcr.io/o/r");
  });

  test("only loopback registries default to plain HTTP", () => {
    assert.equal(isLoopbackRegistry("localhost:5000"), true);
    assert.equal(isLoopbackRegistry("127.0.0.1:8080"), true);
    assert.equal(isLoopbackRegistry("[::1]:5000"), true);
    assert.equal(isLoopbackRegistry("docker.io"), false);
    assert.equal(isLoopbackRegistry("127.0.0.1.example.com"), false);
  });
});

describe("platforms", () => {
  test("parse and match", () => {
    assert.deepEqual(parsePlatform("linux/arm64/v8"), {
      os: "linux",
      architecture: "arm64",
      variant: "v8",
    });
    assert.throws(() => parsePlatform("linux"), /invalid platform/);
    const amd = parsePlatform("linux/amd64");
    assert.equal(platformMatches({ os: "linux", architecture: "amd64" }, amd), true);
    const v7 = parsePlatform("linux/arm/v7");
    assert.equal(platformMatches({ os: "linux", architecture: "arm", variant: "v6" }, v7), false);
    const v8 = parsePlatform("linux/arm64/v8");
    assert.equal(platformMatches({ os: "linux", architecture: "arm64" }, v8), true);
    assert.equal(platformMatches(undefined, amd), false);
  });
});

describe("WWW-Authenticate", () => {
  test("bearer challenge with quoted, comma-containing values", () => {
    const c = parseChallenge(
      'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/alpine:pull,push"',
    );
    assert.deepEqual(c, {
      scheme: "bearer",
      params: {
        realm: "https://auth.docker.io/token",
        service: "registry.docker.io",
        scope: "repository:library/alpine:pull,push",
      },
    });
  });
  test("basic and absent", () => {
    assert.equal(parseChallenge('Basic realm="x"')?.scheme, "basic");
    assert.equal(parseChallenge(null), undefined);
  });
});
