/**
 * Image builds from Dockerfiles: every RUN an ordinary wheellock sandbox, layers read from
 * its writable disk, results in the local image store (see docs/BUILD.md). The builder loads
 * on first use: nothing else needs its code.
 */
export type { BuildOptions, BuildResult, BuildSecretOption } from "./options.js";
export {
  plainBuildProgress,
  ttyBuildProgress,
  silentBuildProgress,
  type BuildProgress,
} from "./progress.js";

type Builder = typeof import("./builder.js");

/** Builds an image from a Dockerfile (see builder.ts and docs/BUILD.md). */
export async function buildImage(
  ...args: Parameters<Builder["buildImage"]>
): ReturnType<Builder["buildImage"]> {
  return (await import("./builder.js")).buildImage(...args);
}
