import { Command } from "commander";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { packageRoot } from "../paths.js";

export function packageVersion(): string {
  const pkg = JSON.parse(readFileSync(join(packageRoot(), "package.json"), "utf8")) as {
    version: string;
  };
  return pkg.version;
}

export function versionCommand(): Command {
  return new Command("version").description("print the version").action(() => {
    process.stdout.write(`wheellock ${packageVersion()}\n`);
  });
}
