import { Command } from "commander";
import { createReadStream } from "node:fs";
import { WheellockError } from "../errors.js";
import {
  ImageStore,
  canonicalReference,
  familiarRepository,
  importImage,
  parseReference,
} from "../image/index.js";

const mb = (n: number): string => `${(n / 1e6).toFixed(1)} MB`;

export function imageCommand(): Command {
  const cmd = new Command("image");
  cmd
    .command("ls")
    .alias("list")
    .description("list stored images")
    .action(async () => {
      const rows = [["REPOSITORY", "TAG", "DIGEST", "SIZE", "CREATED"]];
      for (const r of await new ImageStore().list()) {
        rows.push([
          familiarRepository(r),
          r.tag ?? "<none>",
          r.digest.slice(0, 19),
          mb(r.sizeBytes),
          (r.created ?? r.storedAt).slice(0, 19).replace("T", " "),
        ]);
      }
      const widths =
        rows[0]?.map((_, i) => Math.max(...rows.map((row) => (row[i] ?? "").length))) ?? [];
      for (const row of rows)
        process.stdout.write(
          `${row
            .map((c, i) => c.padEnd(widths[i] ?? 0))
            .join("  ")
            .trimEnd()}\n`,
        );
    });
  cmd
    .command("rm")
    .alias("remove")
    .description("remove images from the local store")
    .argument("<images...>")
    .action(async (images: string[]) => {
      const store = new ImageStore();
      for (const image of images) {
        if (!(await store.remove(canonicalReference(parseReference(image)))))
          throw new WheellockError("ErrNotFound", `image not found: ${image}`);
        process.stdout.write(`Removed ${image}\n`);
      }
    });
  cmd
    .command("import")
    .description("import a `docker save` or OCI image-layout tarball as NAME:TAG")
    .argument("<name>", "NAME:TAG to store it as")
    .argument("[path]", "tarball (default: stdin)")
    .action(async (name: string, path: string | undefined) => {
      const source = path !== undefined && path !== "-" ? createReadStream(path) : process.stdin;
      const rec = await importImage(name, { store: new ImageStore(), source });
      process.stdout.write(
        `Imported ${name}\nDigest: ${rec.digest}\nLayers: ${rec.layers.length}\nSize: ${mb(rec.sizeBytes)}\n`,
      );
    });
  cmd
    .command("prune")
    .description("delete blobs and root disks no stored image uses (older than 10 minutes)")
    .action(async () => {
      const { files, bytes } = await new ImageStore().prune();
      process.stdout.write(`Removed ${files} unreferenced files (${mb(bytes)})\n`);
    });
  return cmd;
}
