import { Command } from "commander";
import { runSetup } from "../setup/index.js";

export function setupCommand(): Command {
  return new Command("setup")
    .option("--kernel <path>", "use this guest kernel instead of Debian's cloud kernel")
    .option(
      "--wait",
      "build the minimal guest kernel now and wait for it (default: in the background)",
    )
    .action(async (flags: { kernel?: string; wait?: boolean }) => {
      const result = await runSetup({
        ...(flags.kernel !== undefined ? { kernel: flags.kernel } : {}),
        waitForKernel: flags.wait === true,
        log: (msg) => process.stderr.write(`${msg}\n`),
      });
      process.stderr.write(
        `ready: kernel ${result.kernel.version}, default image ${result.image.digest.slice(0, 19)}\n`,
      );
    });
}
