/**
 * Kernel module metadata without host tools: Debian's kernel package ships no modules.dep (depmod
 * runs at install time, which we skip), so dependencies come from each .ko's `.modinfo` ELF
 * section (`depends=a,b`) — the same source depmod reads.
 */

/** The `key=value` strings of a module's `.modinfo` section (keys may repeat). */
export function readModinfo(ko: Buffer): Map<string, string[]> {
  const section = findElfSection(ko, ".modinfo");
  const info = new Map<string, string[]>();
  if (!section) return info;
  for (const entry of section.toString("latin1").split("\0")) {
    const eq = entry.indexOf("=");
    if (eq <= 0) continue;
    const key = entry.slice(0, eq);
    const list = info.get(key) ?? [];
    list.push(entry.slice(eq + 1));
    info.set(key, list);
  }
  return info;
}

/** Module names a module needs loaded first (hard `depends=` only). */
export function moduleDepends(ko: Buffer): string[] {
  const deps = readModinfo(ko).get("depends") ?? [];
  return deps
    .flatMap((d) => d.split(","))
    .map(normalizeModuleName)
    .filter((d) => d.length > 0);
}

/** Module names treat '-' and '_' alike (virtio-rng.ko is module virtio_rng). */
export function normalizeModuleName(name: string): string {
  return name.trim().replace(/-/g, "_");
}

/**
 * Load order for `wanted` and everything they depend on, dependencies first. Modules in `builtin`
 * are skipped (with their deps, which are then built in too); a missing module throws.
 */
export function loadOrder(
  wanted: readonly string[],
  builtin: ReadonlySet<string>,
  dependsOf: (name: string) => string[] | undefined,
): string[] {
  const order: string[] = [];
  const state = new Map<string, "visiting" | "done">();
  const visit = (raw: string, chain: string[]): void => {
    const name = normalizeModuleName(raw);
    if (builtin.has(name) || state.get(name) === "done") return;
    if (state.get(name) === "visiting")
      throw new Error(`module dependency cycle: ${[...chain, name].join(" -> ")}`);
    const deps = dependsOf(name);
    if (deps === undefined)
      throw new Error(
        `kernel module not found: ${name}${chain.length ? ` (needed by ${chain.at(-1)})` : ""}`,
      );
    state.set(name, "visiting");
    for (const d of deps) visit(d, [...chain, name]);
    state.set(name, "done");
    order.push(name);
  };
  for (const w of wanted) visit(w, []);
  return order;
}

/** The bytes of a named section of a little-endian ELF64 file, or undefined. */
function findElfSection(elf: Buffer, name: string): Buffer | undefined {
  const ELF_MAGIC = 0x464c457f;
  if (elf.length < 64 || elf.readUInt32LE(0) !== ELF_MAGIC || elf[4] !== 2 || elf[5] !== 1)
    return undefined;
  const shoff = Number(elf.readBigUInt64LE(0x28));
  const shentsize = elf.readUInt16LE(0x3a);
  const shnum = elf.readUInt16LE(0x3c);
  const shstrndx = elf.readUInt16LE(0x3e);
  if (shentsize < 64 || shoff + shnum * shentsize > elf.length || shstrndx >= shnum)
    return undefined;
  const header = (i: number): { nameOff: number; offset: number; size: number } => {
    const base = shoff + i * shentsize;
    return {
      nameOff: elf.readUInt32LE(base),
      offset: Number(elf.readBigUInt64LE(base + 24)),
      size: Number(elf.readBigUInt64LE(base + 32)),
    };
  };
  const strtab = header(shstrndx);
  for (let i = 0; i < shnum; i++) {
    const h = header(i);
    const start = strtab.offset + h.nameOff;
    const end = elf.indexOf(0, start);
    if (end < 0 || elf.toString("latin1", start, end) !== name) continue;
    if (h.offset + h.size > elf.length) return undefined;
    return elf.subarray(h.offset, h.offset + h.size);
  }
  return undefined;
}
