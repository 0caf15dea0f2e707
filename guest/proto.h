/* The host<->guest contract (docs/PROTOCOL.md, version 2): wire numbers, record tags and the
 * names both sides agree on. The host's copy is src/channel/contract.ts, and
 * test/unit/guest-contract.test.ts parses this file and fails when any number or name
 * differs, so keep to its spelling: FT_<TYPE> for frame types, T_<RECORD>_<FIELD> for tags,
 * WL_* for the rest, one definition per line. */
#ifndef WL_PROTO_H
#define WL_PROTO_H

#define WL_PROTOCOL_VERSION 2u
#define WL_MAGIC 0x57u
/* magic u8, type u8, reserved u16, stream u32, length u32, token u32 */
#define WL_HEADER_SIZE 16u
#define WL_MAX_PAYLOAD 262144u
#define WL_INITIAL_WINDOW 262144u
/* guest->host window at stream open (STDOUT/STDERR): four frames, so the agent keeps sending
 * while the host's CREDIT for earlier frames is on its way back */
#define WL_GUEST_WINDOW 1048576u
/* u8 tag + u32 length before each record value */
#define WL_RECORD_ENTRY_HEADER 5u

enum wl_frame_type {
	FT_HELLO = 0x01,
	FT_CONFIGURE = 0x02,
	FT_POWEROFF = 0x04,
	FT_PING = 0x05,
	FT_NETWORK_SETUP = 0x06,
	FT_ATTRIBUTE = 0x07,
	FT_USAGE = 0x08,
	FT_MOUNT = 0x09,
	FT_EXEC = 0x10,
	FT_STARTED = 0x11,
	FT_STDIN = 0x12,
	FT_STDOUT = 0x13,
	FT_STDERR = 0x14,
	FT_EOF = 0x15,
	FT_SIGNAL = 0x16,
	FT_RESIZE = 0x17,
	FT_EXIT = 0x18,
	FT_CREDIT = 0x19,
	FT_CLOSE = 0x1A,
	FT_ERROR = 0x1F,
	FT_FILE_WRITE = 0x20,
	FT_OK = 0x21,
	FT_FILE_READ = 0x22,
	FT_FILE_LIST = 0x23,
	FT_FILE_STAT = 0x24,
	FT_MKDIR = 0x25,
	FT_REMOVE = 0x26,
	FT_PORT_FORWARD = 0x30,
	FT_DISK_MOUNT = 0x0A,
};

/* HELLO */
#define T_HELLO_VERSION 1
#define T_HELLO_BOOT_MS 2
#define T_HELLO_AGENT 3
/* CONFIGURE */
#define T_CONFIGURE_TIME_UNIX_MS 1
#define T_CONFIGURE_HOSTNAME 2
#define T_CONFIGURE_SEED 3
#define T_CONFIGURE_TOKEN 4
#define T_CONFIGURE_FREEZE 5
/* NETWORK_SETUP */
#define T_NETWORK_SETUP_CA_PEM 1
#define T_NETWORK_SETUP_CA_PATH 2
#define T_NETWORK_SETUP_BUNDLE 3
#define T_NETWORK_SETUP_HOSTS_LINE 4
/* ATTRIBUTE: which exec a process or a socket belongs to (attrib.c) */
#define T_ATTRIBUTE_PID 1
#define T_ATTRIBUTE_TCP_PORT 2
#define T_ATTRIBUTE_UDP_PORT 3
#define T_ATTRIBUTE_OK_ENTRY 1
/* one ATTRIBUTE_OK ENTRY */
#define T_ATTRIBUTION_KIND 1
#define T_ATTRIBUTION_KEY 2
#define T_ATTRIBUTION_STATE 3
#define T_ATTRIBUTION_EXEC 4
#define T_ATTRIBUTION_PID 5
#define T_ATTRIBUTION_ARG 6
#define T_ATTRIBUTION_CGROUP 7
/* ATTRIBUTION KIND: what KEY is */
#define WL_ATTRIBUTION_KIND_PID 1
#define WL_ATTRIBUTION_KIND_TCP 2
#define WL_ATTRIBUTION_KIND_UDP 3
/* ATTRIBUTION STATE: no such process or socket, an exec's (EXEC = its stream), no exec's */
#define WL_ATTRIBUTION_STATE_GONE 0
#define WL_ATTRIBUTION_STATE_EXEC 1
#define WL_ATTRIBUTION_STATE_NO_EXEC 2
/* USAGE (usage.c) */
#define T_USAGE_OK_DISK_WRITTEN_BYTES 1
/* MOUNT */
#define T_MOUNT_PATH 1
/* EXEC */
#define T_EXEC_ARGV 1
#define T_EXEC_ENV 2
#define T_EXEC_CWD 3
#define T_EXEC_USER 4
#define T_EXEC_TTY 5
#define T_EXEC_ROWS 6
#define T_EXEC_COLS 7
/* STARTED */
#define T_STARTED_PID 1
/* ERROR */
#define T_ERROR_MESSAGE 1
#define T_ERROR_ERRNO 2
/* file requests: PATH is tag 1 in every one (files.c relies on it) */
#define T_FILE_WRITE_PATH 1
#define T_FILE_WRITE_MODE 2
#define T_FILE_WRITE_UID 3
#define T_FILE_WRITE_GID 4
#define T_FILE_READ_PATH 1
#define T_FILE_READ_OK_SIZE 1
#define T_FILE_LIST_PATH 1
#define T_FILE_LIST_OK_ENTRY 1
#define T_FILE_STAT_PATH 1
#define T_FILE_STAT_FOLLOW 2
#define T_MKDIR_PATH 1
#define T_MKDIR_MODE 2
#define T_REMOVE_PATH 1
#define T_REMOVE_RECURSIVE 2
/* PORT_FORWARD */
#define T_PORT_FORWARD_PORT 1
/* stat record (FILE_STAT replies, FILE_LIST entries) */
#define T_STAT_NAME 1
#define T_STAT_SIZE 2
#define T_STAT_MODE 3
#define T_STAT_UID 4
#define T_STAT_GID 5
#define T_STAT_MTIME_MS 6
#define T_STAT_LINK 7
/* DISK_MOUNT: record i is extra disk i (serial wl-disk<i>), mounted read-write or read-only */
#define T_DISK_MOUNT_PATH 1
#define T_DISK_MOUNT_READONLY_PATH 2

/* virtio-serial port names (/sys/class/virtio-ports/<port>/name) */
#define WL_PORT_CONTROL "wheellock.ctl"
#define WL_PORT_FUSE "wheellock.fuse"
/* On the FUSE port, guest -> host: a bare fuse_in_header (len 40, unique 0) with this opcode,
 * which the kernel never uses, says the agent dropped at least one host notification (its
 * queue was full), so the host stops trusting invalidation (src/vfs/fuse-notify.ts). */
#define WL_FUSE_NOTIFY_LOST 0x574c0001u
/* Bit 0 of fuse_in_header's last 4 bytes (`padding`, 0 from the kernel): the relay answered
 * this request itself (write-behind, fuse_wb.c) and drops the host's reply. */
#define WL_FUSE_RELAY_ANSWERED 1u
/* Host -> relay (unique 0, `error` = this code; never reaches the kernel): the oldest N
 * requests written behind are done, with the errors among them (docs/PROTOCOL.md). */
#define WL_RELAY_BEHIND_DONE 0x574c0202u
/* Host -> relay: a directory's attributes after a guest request changed it, sent before that
 * request's reply; the relay answers the next GETATTR of it (fuse_wb.c). */
#define WL_RELAY_NODE_ATTR 0x574c0201u
/* Host -> relay: {u64 nodeid}: the file just opened or created may fail writes for lack of
 * space (a quota); none of its writes go behind (fuse_wb.c). Sent before the OPEN/CREATE reply. */
#define WL_RELAY_SYNC_WRITES 0x574c0203u

/* virtio-blk serials (/sys/block/vd<x>/serial); extra disk i is WL_SERIAL_EXTRA_PREFIX<i> */
#define WL_SERIAL_ROOT "wl-root"
#define WL_SERIAL_UPPER "wl-upper"
#define WL_SERIAL_EXTRA_PREFIX "wl-disk"

/* kernel command-line keys, each given as key=value (cmdline.c) */
#define WL_KEY_PRIVILEGED "wheellock.privileged"
#define WL_KEY_DISKS "wheellock.disks"
#define WL_KEY_NET "wheellock.net"
#define WL_KEY_ATTRIBUTION "wheellock.attribution"
#define WL_KEY_MOUNTS "wheellock.mounts"

/* The FUSE relay's directory cache (guest/fuse_dircache.c, docs/PROTOCOL.md "Directory
 * listings held by the FUSE relay"). Guest -> host: a fuse_in_header (unique 0) with this
 * opcode and a body {u32 op, u32 0}: op 0 asks for the listing of directory nodeid, op 1
 * says the relay no longer holds it. Host -> guest: a fuse_out_header with unique 0 and one
 * of the positive codes below in `error` (never passed to the kernel). */
#define WL_FUSE_LIST_DIR 0x574c0002u
#define WL_RELAY_DIR_LISTING 0x574c0101u
#define WL_RELAY_DIR_ADD 0x574c0102u
#define WL_RELAY_DIR_REMOVE 0x574c0103u
#define WL_RELAY_DIR_DROP 0x574c0104u

#endif
