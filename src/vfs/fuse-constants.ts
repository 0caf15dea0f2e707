/**
 * FUSE wire constants (linux/fuse.h). We negotiate protocol 7.31: every field we read or write
 * exists in that layout, and the 6.1 guest kernel (7.37) accepts an older minor from the server.
 */

export const FUSE_KERNEL_VERSION = 7;
/** The minor we speak; the kernel adapts to the lower of its own and ours. */
export const FUSE_OUR_MINOR = 31;
/** MAX_PAGES arrived in 7.28; below that max_write cannot exceed 32 pages. */
export const FUSE_MIN_KERNEL_MINOR = 28;

export const FUSE_ROOT_ID = 1n;

export const IN_HEADER_BYTES = 40;
export const OUT_HEADER_BYTES = 16;

/** Linux 6.1 caps max_pages at FUSE_MAX_MAX_PAGES = 256, i.e. 1 MiB with 4 KiB pages. */
export const FUSE_MAX_PAGES = 256;
export const PAGE_BYTES = 4096;
export const MAX_WRITE_BYTES = FUSE_MAX_PAGES * PAGE_BYTES;
/**
 * The readahead window the INIT reply allows (the kernel keeps the smaller of this and the
 * mount's window, which the agent raises to the same 4 MiB): four 1 MiB READs in flight.
 */
export const MAX_READAHEAD_BYTES = 4 * MAX_WRITE_BYTES;
/** Largest request the kernel can send: headers, fuse_write_in and max_write of data, plus slack for names. */
export const MAX_REQUEST_BYTES = MAX_WRITE_BYTES + PAGE_BYTES;
/** Linux NAME_MAX; longer names are refused before any provider sees them. */
export const NAME_MAX_BYTES = 255;
/** Symlink targets are bounded like Linux PATH_MAX. */
export const PATH_MAX_BYTES = 4096;

export enum Opcode {
  LOOKUP = 1,
  FORGET = 2,
  GETATTR = 3,
  SETATTR = 4,
  READLINK = 5,
  SYMLINK = 6,
  MKNOD = 8,
  MKDIR = 9,
  UNLINK = 10,
  RMDIR = 11,
  RENAME = 12,
  LINK = 13,
  OPEN = 14,
  READ = 15,
  WRITE = 16,
  STATFS = 17,
  RELEASE = 18,
  FSYNC = 20,
  SETXATTR = 21,
  GETXATTR = 22,
  LISTXATTR = 23,
  REMOVEXATTR = 24,
  FLUSH = 25,
  INIT = 26,
  OPENDIR = 27,
  READDIR = 28,
  RELEASEDIR = 29,
  FSYNCDIR = 30,
  GETLK = 31,
  SETLK = 32,
  SETLKW = 33,
  ACCESS = 34,
  CREATE = 35,
  INTERRUPT = 36,
  BMAP = 37,
  DESTROY = 38,
  IOCTL = 39,
  POLL = 40,
  BATCH_FORGET = 42,
  FALLOCATE = 43,
  READDIRPLUS = 44,
  RENAME2 = 45,
  LSEEK = 46,
  COPY_FILE_RANGE = 47,
}

/**
 * Not a kernel opcode: the guest agent's report (a bare in-header, unique 0, no reply) that
 * it dropped at least one notification because its queue was full. guest/proto.h
 * WL_FUSE_NOTIFY_LOST; test/unit/guest-contract.test.ts keeps the two equal.
 */
export const NOTIFY_LOST_OPCODE = 0x574c0001;

/** fuse_init_in/out flags we use. */
export const InitFlag = {
  ASYNC_READ: 1 << 0,
  ATOMIC_O_TRUNC: 1 << 3,
  BIG_WRITES: 1 << 5,
  AUTO_INVAL_DATA: 1 << 12,
  PARALLEL_DIROPS: 1 << 18,
  /** The server clears set-id bits on chown, truncate and write (the kernel then skips a GETATTR per chown). */
  HANDLE_KILLPRIV: 1 << 19,
  MAX_PAGES: 1 << 22,
} as const;

/** fuse_setattr_in.valid bits. */
export const SetattrValid = {
  MODE: 1 << 0,
  UID: 1 << 1,
  GID: 1 << 2,
  SIZE: 1 << 3,
  ATIME: 1 << 4,
  MTIME: 1 << 5,
  FH: 1 << 6,
  ATIME_NOW: 1 << 7,
  MTIME_NOW: 1 << 8,
  LOCKOWNER: 1 << 9,
} as const;

export const FUSE_GETATTR_FH = 1;
export const RENAME_NOREPLACE = 1;
export const RENAME_EXCHANGE = 2;

/** fuse_open_out.open_flags */
export const FOPEN_KEEP_CACHE = 1 << 1;
/** The kernel may cache a directory's READDIR results (kept across opens with KEEP_CACHE). */
export const FOPEN_CACHE_DIR = 1 << 3;

/** Notification codes (out header error field, unique 0). */
export const NotifyCode = { INVAL_INODE: 2, INVAL_ENTRY: 3 } as const;

export const S_IFMT = 0o170000;
export const S_IFDIR = 0o040000;
export const S_IFREG = 0o100000;
export const S_IFLNK = 0o120000;
export const S_IFIFO = 0o010000;

/**
 * Write-behind (guest/fuse_wb.c): bit 0 of the in-header's `padding` (offset 36) says the
 * guest's relay already answered this request (WRITE, SETATTR, RELEASE) and drops the host's
 * reply. The server runs such requests in arrival order and every other request after all
 * earlier ones of them; a hostile guest may set it on anything, it changes only that order.
 * guest/proto.h WL_FUSE_RELAY_ANSWERED; test/unit/guest-contract.test.ts keeps them equal.
 */
export const RELAY_ANSWERED_FLAG = 1;

/**
 * Host -> relay, a fuse_out_header with unique 0 and this `error` (never a kernel notify code;
 * the relay consumes it): the oldest `count` write-behind requests are done. Payload: u32
 * count, u32 errors, then per error u64 unique, i32 errno, u32 0. guest/proto.h
 * WL_RELAY_BEHIND_DONE.
 */
export const RELAY_BEHIND_DONE = 0x574c0202;

/**
 * Host -> relay, unique 0, this `error`: a directory's fresh attributes after a guest request
 * changed it, sent before that request's reply. Payload: u64 nodeid, then a fuse_attr_out
 * (attr_valid, attr_valid_nsec, dummy, fuse_attr). guest/proto.h WL_RELAY_NODE_ATTR.
 */
export const RELAY_NODE_ATTR = 0x574c0201;

/**
 * Host -> relay, unique 0, this `error`: the file just opened or created (payload: u64
 * nodeid) is on a provider whose writes may fail for lack of space (VfsHandle.spaceLimited),
 * so the relay writes nothing of it behind. Sent before the OPEN or CREATE reply.
 * guest/proto.h WL_RELAY_SYNC_WRITES.
 */
export const RELAY_SYNC_WRITES = 0x574c0203;

/**
 * The FUSE relay's directory cache (guest/fuse_dircache.c; docs/PROTOCOL.md "Directory
 * listings held by the FUSE relay"). Guest -> host: a request with this opcode (unique 0,
 * body {u32 op, u32 0}): op 0 asks for the listing of directory `nodeid`, op 1 says the relay
 * dropped it. Host -> guest: messages with unique 0 and one of RelayCode in `error`, which
 * the relay consumes (never the kernel). guest/proto.h holds the same numbers.
 */
export const LIST_DIR_OPCODE = 0x574c0002;
export const RelayCode = {
  DIR_LISTING: 0x574c0101,
  DIR_ADD: 0x574c0102,
  DIR_REMOVE: 0x574c0103,
  DIR_DROP: 0x574c0104,
} as const;
