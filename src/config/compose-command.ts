/** The parts of an OCI image config that decide what runs. */
export interface ImageCommandConfig {
  entrypoint?: readonly string[] | undefined;
  cmd?: readonly string[] | undefined;
}

/**
 * The argv to run, by Docker's rules: the image ENTRYPOINT followed by the user's arguments,
 * or by the image CMD when the user gave none. Without an image config the user's arguments are
 * the command. May be empty (nothing to run). Never returns or mutates the inputs' arrays.
 */
export function composeCommand(
  imageConfig: ImageCommandConfig | undefined,
  userArgs: readonly string[],
): string[] {
  if (imageConfig === undefined) return [...userArgs];
  const tail = userArgs.length > 0 ? userArgs : (imageConfig.cmd ?? []);
  return [...(imageConfig.entrypoint ?? []), ...tail];
}

/**
 * Applies `--entrypoint` the way Docker does: the image ENTRYPOINT is replaced by the single
 * word given (an empty string clears it), and the image CMD is dropped too, because it was
 * written as arguments for the old entrypoint. Other fields of the image config are kept.
 */
export function withEntrypointOverride<T extends ImageCommandConfig>(
  imageConfig: T | undefined,
  entrypoint: string,
): Omit<T, "entrypoint" | "cmd"> & { entrypoint: string[]; cmd: string[] } {
  return { ...(imageConfig as T), entrypoint: entrypoint === "" ? [] : [entrypoint], cmd: [] };
}
