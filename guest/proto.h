/* Wire constants from docs/PROTOCOL.md (version 1). Keep in sync with src/channel. */
#ifndef WL_PROTO_H
#define WL_PROTO_H

#define WL_PROTOCOL_VERSION 1u
#define WL_MAGIC 0x57u
#define WL_HEADER_SIZE 12u
#define WL_MAX_PAYLOAD 262144u
#define WL_INITIAL_WINDOW 262144u

enum wl_frame_type {
	FT_HELLO = 0x01,
	FT_CONFIGURE = 0x02,
	FT_POWEROFF = 0x04,
	FT_PING = 0x05,
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
};

/* HELLO */
#define T_HELLO_VERSION 1
#define T_HELLO_BOOT_MS 2
#define T_HELLO_AGENT 3
/* CONFIGURE */
#define T_CONF_TIME_UNIX_MS 1
#define T_CONF_HOSTNAME 2
#define T_CONF_SEED 3
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
#define T_ERR_MESSAGE 1
#define T_ERR_ERRNO 2
/* file ops: PATH is tag 1 everywhere */
#define T_PATH 1
#define T_FW_MODE 2
#define T_FW_UID 3
#define T_FW_GID 4
#define T_FR_SIZE 1
#define T_FL_ENTRY 1
#define T_FS_FOLLOW 2
#define T_MKDIR_MODE 2
#define T_RM_RECURSIVE 2
/* PORT_FORWARD */
#define T_PF_PORT 1
/* stat record */
#define T_ST_NAME 1
#define T_ST_SIZE 2
#define T_ST_MODE 3
#define T_ST_UID 4
#define T_ST_GID 5
#define T_ST_MTIME_MS 6
#define T_ST_LINK 7

#endif
