// Worker entry: workers do not inherit the parent's `--import tsx` loader, so register it here.
import { register } from "tsx/esm/api";

register();
await import("./worker.ts");
