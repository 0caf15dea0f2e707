/** One fuzz worker: runs one target's engine (or a replay) and reports to the supervisor. */
import { parentPort, workerData } from "node:worker_threads";
import { Engine } from "./engine.js";
import { SharedInput, type WorkerJob, type WorkerMessage } from "./protocol.js";
import { loadTarget } from "./targets/index.js";

const job = workerData as WorkerJob;
const port = parentPort;
if (!port) throw new Error("fuzz/worker.ts runs as a worker thread");
const send = (m: WorkerMessage): void => port.postMessage(m);
const shared = new SharedInput(job.shared);
const target = await loadTarget(job.target);
const inputs = job.inputs.map((i) => Buffer.from(i));
const engine = new Engine({
  target,
  seed: job.seed,
  deadlineMs: job.deadlineMs,
  coverage: job.coverage,
  extraInputs: inputs,
  ...(job.heapGrowthLimitMb !== undefined
    ? { heapGrowthLimitBytes: job.heapGrowthLimitMb * 1024 * 1024 }
    : {}),
  onInput: (input) => shared.publish(input),
  onFinding: (f) =>
    send({
      type: "finding",
      kind: f.kind,
      message: f.message,
      ...(f.stack ? { stack: f.stack } : {}),
      input: f.input,
    }),
});
const stats = job.replay ? await engine.replay(inputs) : await engine.run();
send({
  type: "done",
  stats,
  ...(job.returnCorpus ? { corpus: engine.corpusInputs.map((i) => new Uint8Array(i)) } : {}),
});
