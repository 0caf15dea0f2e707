/**
 * Unix `st_mode` as Go's `os.FileMode`, the bit layout the reference puts in `list_files` and
 * file events (reference/matchlock-rpc.md §8.5): permission bits low, type and special bits
 * high. Go clients decode it into a uint32, so the result is always in [0, 2^32).
 */
const S_IFMT = 0o170000;

const TYPE_BITS: Readonly<Record<number, number>> = {
  0o040000: 2 ** 31, // directory
  0o120000: 2 ** 27, // symlink
  0o060000: 2 ** 26, // block device
  0o020000: 2 ** 26 + 2 ** 21, // character device
  0o010000: 2 ** 25, // named pipe
  0o140000: 2 ** 24, // socket
};

export function goFileMode(mode: number): number {
  let out = mode & 0o777;
  out += TYPE_BITS[mode & S_IFMT] ?? 0;
  if (mode & 0o4000) out += 2 ** 23; // setuid
  if (mode & 0o2000) out += 2 ** 22; // setgid
  if (mode & 0o1000) out += 2 ** 20; // sticky
  return out;
}
