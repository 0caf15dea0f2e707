import { readFileSync } from "node:fs";
import { join } from "node:path";
import { packageRoot } from "../paths.js";

/** The version in package.json. Kept free of commander: `wheellock version` loads only this. */
export function packageVersion(): string {
  const pkg = JSON.parse(readFileSync(join(packageRoot(), "package.json"), "utf8")) as {
    version: string;
  };
  return pkg.version;
}

/** What `wheellock version` prints. */
export function versionLine(): string {
  return `wheellock ${packageVersion()}\n`;
}
