// One sandbox booted from an image on a "node" (this process's WHEELLOCK_CACHE_DIR /
// WHEELLOCK_DATA_DIR), cold (no snapshot): runs each command given as a JSON array on the
// command line in turn and prints their results as one JSON line.
//   node --import tsx test/helpers/exec-in-image.ts IMAGE '["cmd","arg"]' ...
import { Sandbox } from "../../src/index.js";

const [image, ...commands] = process.argv.slice(2);
if (!image) throw new Error("usage: exec-in-image.ts IMAGE COMMAND_JSON...");
const sb = await Sandbox.create({ image, snapshot: false, memoryMb: 1024, timeoutSeconds: 900 });
try {
  const results = [];
  for (const command of commands) {
    const r = await sb.exec(JSON.parse(command) as string[]);
    results.push({ exitCode: r.exitCode, stdout: r.stdout, stderr: r.stderr });
  }
  process.stdout.write(`${JSON.stringify(results)}\n`);
} finally {
  await sb.close();
}
