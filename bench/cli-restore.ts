// The CLI half of issue 16's restore figures, alone and quick: the whole `wheellock run -- true`
// process restoring from a snapshot against the SDK's restore (create + first exec in an
// already-loaded process), interleaved round by round. BASE_CLI=/path/to/other/dist/cli/main.cjs
// adds that build's CLI to every round (an A/B of builds on the same snapshot; several builds:
// comma-separated).
//   npm run build && ROUNDS=10 node --import tsx bench/cli-restore.ts
import { cliRunTrueMs, createToFirstExec, stats } from "./restore.js";

const rounds = Number(process.env.ROUNDS ?? 10);
const bases = (process.env.BASE_CLI ?? "").split(",").filter((b) => b.length > 0);
const cli: number[] = [];
const baseCli: number[][] = bases.map(() => []);
const sdk: number[] = [];
// Saves the snapshot if needed and warms the page cache: nothing of it is measured.
await createToFirstExec({ snapshot: true });
cliRunTrueMs(true);
for (const base of bases) cliRunTrueMs(true, base);
for (let i = 0; i < rounds; i++) {
  process.stderr.write(`bench: cli-restore round ${i + 1}/${rounds}\n`);
  const [sdkMs, restored] = await createToFirstExec({ snapshot: true });
  if (!restored) throw new Error("the SDK start did not restore from the snapshot");
  sdk.push(sdkMs);
  cli.push(cliRunTrueMs(true));
  bases.forEach((base, b) => baseCli[b]!.push(cliRunTrueMs(true, base)));
}
const perRound = (xs: number[]) => stats(xs.map((x, i) => x / sdk[i]!));
process.stdout.write(
  `${JSON.stringify(
    {
      sdkRestoreMs: stats(sdk),
      cliRestoreMs: stats(cli),
      cliRestoreVsSdkRestorePerRound: perRound(cli),
      bases: bases.map((base, b) => ({
        cli: base,
        cliRestoreMs: stats(baseCli[b]!),
        cliRestoreVsSdkRestorePerRound: perRound(baseCli[b]!),
        thisCliVsBasePerRound: stats(cli.map((c, i) => c / baseCli[b]![i]!)),
      })),
    },
    null,
    2,
  )}\n`,
);
