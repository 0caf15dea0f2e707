// The span tree of a sandbox, with an in-memory exporter: the sandbox span under the caller's
// context, execs under the context active where they started, file operations batched per
// exec, requests under the exec that made them, and traceparent naming the request's span.
import { test } from "node:test";
import assert from "node:assert/strict";
import { context, trace } from "@opentelemetry/api";
import type { NetworkEventInfo } from "../../src/net/index.js";
import { SandboxTracer, UsageMeter } from "../../src/observe/index.js";
import { parentOf, recordSpans } from "../helpers/otel.js";

const spans = recordSpans();
const tracer = trace.getTracer("test-app");

function request(
  requestId: number,
  execId: number | null,
  extra: Partial<NetworkEventInfo> = {},
): NetworkEventInfo {
  return {
    requestId,
    method: "GET",
    url: "https://api.test/x",
    scheme: "https",
    host: "api.test",
    port: 443,
    status: 200,
    bytesIn: 10,
    bytesOut: 2,
    durationMs: 5,
    blocked: false,
    attribution: { execId, pid: 42 },
    ...extra,
  };
}

test("the tree: app -> sandbox; app -> exec -> files and requests; no-exec requests under the sandbox", async () => {
  spans.reset();
  const app = tracer.startSpan("app.turn");
  const appCtx = trace.setSpan(context.active(), app);
  const sb = new SandboxTracer("vm-0123abcd", true);
  let exec!: ReturnType<SandboxTracer["startExec"]>;
  let headers: [string, string][] = [];
  context.with(appCtx, () => {
    sb.startSandbox().end(true);
    exec = sb.startExec(5, ["sh", "-c", "curl x"]);
  });
  sb.fileOp(5, { op: "write", size: 100, errno: 0 });
  sb.fileOp(5, { op: "write", size: 28, errno: 0 });
  sb.fileOp(5, { op: "open", errno: 2 });
  headers = sb.upstreamHeaders(1, { execId: 5 });
  sb.request(request(1, 5));
  sb.request(request(2, null, { blocked: true, code: "host_not_allowed", status: 403 }));
  exec.end(0);
  sb.close();
  app.end();

  const [sandbox] = spans.byName("wheellock.sandbox.restore");
  const [execSpan] = spans.byName("wheellock.exec");
  const [files] = spans.byName("wheellock.files");
  const requests = spans.byName("wheellock.request");
  const appId = app.spanContext().spanId;
  assert.equal(parentOf(sandbox!), appId);
  assert.equal(sandbox!.attributes["wheellock.restored"], true);
  assert.equal(parentOf(execSpan!), appId);
  assert.deepEqual(execSpan!.attributes["process.command_args"], ["sh", "-c", "curl x"]);
  assert.equal(execSpan!.attributes["process.exit.code"], 0);
  assert.equal(parentOf(files!), execSpan!.spanContext().spanId);
  assert.equal(files!.attributes["wheellock.files.ops.write"], 2);
  assert.equal(files!.attributes["wheellock.files.bytes_written"], 128);
  assert.equal(files!.attributes["wheellock.files.errors"], 1);
  const byExec = requests.find((r) => r.attributes["wheellock.request.id"] === 1)!;
  const noExec = requests.find((r) => r.attributes["wheellock.request.id"] === 2)!;
  assert.equal(parentOf(byExec), execSpan!.spanContext().spanId);
  assert.equal(parentOf(noExec), sandbox!.spanContext().spanId);
  assert.equal(noExec.attributes["wheellock.verdict"], "blocked");
  assert.equal(byExec.attributes["http.response.status_code"], 200);
  const sc = byExec.spanContext();
  assert.deepEqual(headers, [
    ["traceparent", ""],
    ["tracestate", ""],
    ["traceparent", `00-${sc.traceId}-${sc.spanId}-01`],
  ]);
});

test("without propagation no header is added", () => {
  const sb = new SandboxTracer("vm-0123abcd", false);
  sb.startSandbox().end(false);
  assert.deepEqual(sb.upstreamHeaders(1, undefined), []);
});

test("usage adds up execs, traffic per host and per secret, and the budgets trip", () => {
  const m = new UsageMeter({ maxEgressBytes: 100, maxRequests: 2 });
  m.execStarted();
  m.execStarted();
  m.execEnded(30);
  m.network(request(1, 1, { secrets: ["TOKEN"] }));
  m.network(request(2, 1, { host: "b.test" }));
  assert.equal(m.flowBytes(60), false);
  assert.equal(m.flowBytes(41), true, "past 100 bytes");
  assert.equal(m.admitRequest(), true);
  assert.equal(m.admitRequest(), true);
  assert.equal(m.admitRequest(), false, "the third request is over maxRequests 2");
  m.mountWrite(7);
  const u = m.snapshot({ cpuSeconds: 1.234, peakMemoryBytes: 5, diskWrittenBytes: 6 });
  assert.deepEqual(u.execs, { count: 2, running: 1, totalDurationMs: 30, maxDurationMs: 30 });
  assert.deepEqual(u.network.byHost, {
    "api.test": { requests: 1, bytesIn: 10, bytesOut: 2 },
    "b.test": { requests: 1, bytesIn: 10, bytesOut: 2 },
  });
  assert.deepEqual(u.network.bySecret, { TOKEN: { requests: 1, bytesIn: 10, bytesOut: 2 } });
  assert.equal(u.network.bytes, 101);
  assert.equal(u.network.requests, 2);
  assert.equal(u.cpuSeconds, 1.23);
  assert.equal(u.mountWrittenBytes, 7);
});

test("file events after their exec ended (a handle released after exit) get a batch under it", async () => {
  spans.reset();
  const sb = new SandboxTracer("vm-0123abcd", false);
  sb.startSandbox().end(false);
  const exec = sb.startExec(7, ["sh", "-c", "echo t > /work/f"]);
  sb.fileOp(7, { op: "open", errno: 0 });
  exec.end(0);
  sb.fileOp(7, { op: "write", size: 2, errno: 0 });
  sb.fileOp(7, { op: "release", errno: 0 });
  const [execSpan] = spans.byName("wheellock.exec");
  const before = spans.byName("wheellock.files");
  assert.equal(before.length, 1, "the batch up to the exit went out with the exec");
  const deadline = Date.now() + 5000;
  while (spans.byName("wheellock.files").length < 2 && Date.now() < deadline)
    await new Promise((r) => setTimeout(r, 10));
  const late = spans.byName("wheellock.files")[1];
  assert.equal(late && parentOf(late), execSpan!.spanContext().spanId);
  assert.equal(late!.attributes["wheellock.files.bytes_written"], 2);
  assert.equal(late!.attributes["wheellock.files.ops.release"], 1);
  sb.close();
});

test("with propagation and no SDK recording, the guest's own trace context is still removed", () => {
  trace.disable(); // the provider registered above goes: nothing records (last test here)
  const sb = new SandboxTracer("vm-0123abcd", true);
  sb.startSandbox().end(false);
  assert.deepEqual(sb.upstreamHeaders(1, undefined), [
    ["traceparent", ""],
    ["tracestate", ""],
  ]);
});
