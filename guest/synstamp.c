#include "synstamp.h"

#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "util.h"

/* The agent is built against musl, which ships no <linux/bpf.h>: the few ABI values used here
 * are Linux's stable UAPI (include/uapi/linux/bpf.h), named as there. */
enum {
	BPF_MAP_CREATE = 0,
	BPF_PROG_LOAD = 5,
	BPF_PROG_ATTACH = 8,
	BPF_MAP_TYPE_LRU_HASH = 9,
	BPF_PROG_TYPE_SOCK_OPS = 13,
	BPF_PROG_TYPE_CGROUP_SOCK_ADDR = 18,
	BPF_CGROUP_SOCK_OPS = 3,
	BPF_CGROUP_INET4_CONNECT = 10,
	BPF_CGROUP_INET6_CONNECT = 11,
	/* helpers */
	FN_map_lookup_elem = 1,
	FN_map_update_elem = 2,
	FN_get_current_pid_tgid = 14,
	FN_get_socket_cookie = 46,
	FN_sock_ops_cb_flags_set = 59,
	FN_get_current_cgroup_id = 80,
	FN_store_hdr_opt = 143,
	FN_reserve_hdr_opt = 144,
	/* struct bpf_sock_ops */
	OPS_TCP_CONNECT_CB = 3,
	OPS_HDR_OPT_LEN_CB = 14,
	OPS_WRITE_HDR_OPT_CB = 15,
	OPS_WRITE_HDR_OPT_CB_FLAG = 1 << 6,
	SOCK_OPS_OFF_OP = 0,
	SOCK_OPS_OFF_SKB_TCP_FLAGS = 212,
	/* struct bpf_sock_addr */
	SOCK_ADDR_OFF_TYPE = 32,
	TCP_FLAG_SYN = 0x02,
	STAMP_SOCK_STREAM = 1,
};

/* The option (docs/PROTOCOL.md): kind 254 (RFC 6994), length 16, experiment id "WL", then
 * the pid (u32) and the cgroup id (u64), little-endian. Its first word as the program stores
 * it: bytes FE 10 57 4C. */
#define STAMP_LEN 16
#define STAMP_HEAD 0x4C5710FE
/* Sockets that connected but have not sent their SYN yet; a connection's entry is used within
 * microseconds, and the LRU drops the rest (UDP sockets are not recorded). */
#define STAMP_MAP_ENTRIES 1024

struct insn {
	uint8_t code;
	uint8_t regs; /* dst in the low nibble, src in the high one */
	int16_t off;
	int32_t imm;
};

/* eBPF encodings, as Linux's filter.h spells them. */
#define ALU64_IMM(op, dst, imm) ((struct insn){0x07 | (op), (dst), 0, (imm)})
#define MOV64_REG(dst, src) ((struct insn){0x07 | 0xb0 | 0x08, (dst) | ((src) << 4), 0, 0})
#define MOV64_IMM(dst, imm) ALU64_IMM(0xb0, dst, imm)
#define LDX_W(dst, src, off) ((struct insn){0x01 | 0x60 | 0x00, (dst) | ((src) << 4), (off), 0})
#define LDX_DW(dst, src, off) ((struct insn){0x01 | 0x60 | 0x18, (dst) | ((src) << 4), (off), 0})
#define STX_W(dst, src, off) ((struct insn){0x03 | 0x60 | 0x00, (dst) | ((src) << 4), (off), 0})
#define STX_DW(dst, src, off) ((struct insn){0x03 | 0x60 | 0x18, (dst) | ((src) << 4), (off), 0})
#define ST_W(dst, off, imm) ((struct insn){0x02 | 0x60 | 0x00, (dst), (off), (imm)})
#define JEQ_IMM(dst, imm, off) ((struct insn){0x05 | 0x10, (dst), (off), (imm)})
#define JNE_IMM(dst, imm, off) ((struct insn){0x05 | 0x50, (dst), (off), (imm)})
#define JSET_IMM(dst, imm, off) ((struct insn){0x05 | 0x40, (dst), (off), (imm)})
#define JA(off) ((struct insn){0x05, 0, (off), 0})
#define CALL(fn) ((struct insn){0x05 | 0x80, 0, 0, (fn)})
#define EXIT() ((struct insn){0x05 | 0x90, 0, 0, 0})
/* Two instructions: dst = the map whose fd is `fd` (BPF_PSEUDO_MAP_FD). */
#define LD_MAP_FD(dst, fd) ((struct insn){0x18, (dst) | (1 << 4), 0, (fd)}), ((struct insn){0, 0, 0, 0})

#define R0 0
#define R1 1
#define R2 2
#define R3 3
#define R4 4
#define R6 6
#define FP 10

static long bpf(int cmd, void *attr, unsigned size)
{
#ifdef SYS_bpf
	return syscall(SYS_bpf, cmd, attr, size);
#else
	(void)cmd, (void)attr, (void)size;
	errno = ENOSYS;
	return -1;
#endif
}

/* The parts of union bpf_attr used here (its other members are zero: the kernel wants the
 * unused tail zeroed, so each call passes the whole 144-byte union). */
union attr {
	struct {
		uint32_t map_type, key_size, value_size, max_entries, map_flags;
	} map;
	struct {
		uint32_t prog_type, insn_cnt;
		uint64_t insns, license;
		uint32_t log_level, log_size;
		uint64_t log_buf;
		uint32_t kern_version, prog_flags;
		char prog_name[16];
		uint32_t prog_ifindex, expected_attach_type;
	} prog;
	struct {
		uint32_t target_fd, attach_bpf_fd, attach_type, attach_flags;
	} attach;
	uint8_t whole[144];
};

static int make_map(void)
{
	union attr a;
	memset(&a, 0, sizeof a);
	a.map.map_type = BPF_MAP_TYPE_LRU_HASH;
	a.map.key_size = 8;    /* socket cookie */
	a.map.value_size = 16; /* u32 pid, u32 zero, u64 cgroup id: the option's tail */
	a.map.max_entries = STAMP_MAP_ENTRIES;
	return (int)bpf(BPF_MAP_CREATE, &a, sizeof a);
}

static int load(uint32_t type, uint32_t expected_attach, const struct insn *insns, size_t n,
		const char *name)
{
	union attr a;
	memset(&a, 0, sizeof a);
	a.prog.prog_type = type;
	a.prog.insn_cnt = (uint32_t)n;
	a.prog.insns = (uint64_t)(uintptr_t)insns;
	a.prog.license = (uint64_t)(uintptr_t) "GPL";
	a.prog.expected_attach_type = expected_attach;
	strncpy(a.prog.prog_name, name, sizeof a.prog.prog_name - 1);
	int fd = (int)bpf(BPF_PROG_LOAD, &a, sizeof a);
	if (fd < 0) {
		/* Only on failure: a second load with the verifier's log says why. */
		static char log[4096];
		int saved = errno;
		a.prog.log_level = 1;
		a.prog.log_size = sizeof log;
		a.prog.log_buf = (uint64_t)(uintptr_t)log;
		log[0] = '\0';
		if (bpf(BPF_PROG_LOAD, &a, sizeof a) < 0 && log[0] != '\0')
			logmsg("synstamp: %s refused: %.300s", name, log);
		errno = saved;
	}
	return fd;
}

static int attach(int cgroup, int prog, uint32_t type)
{
	union attr a;
	memset(&a, 0, sizeof a);
	a.attach.target_fd = (uint32_t)cgroup;
	a.attach.attach_bpf_fd = (uint32_t)prog;
	a.attach.attach_type = type;
	return (int)bpf(BPF_PROG_ATTACH, &a, sizeof a);
}

/* connect4/connect6: map[socket cookie] = {tgid, cgroup id} of the process calling connect(2)
 * on a stream socket. Runs in that process's context, where the current pid means something
 * (the SYN's own callbacks may run from a timer). Always lets the connect proceed. */
static int load_connect(int map, uint32_t attach_type, const char *name)
{
	const struct insn prog[] = {
		MOV64_REG(R6, R1),
		LDX_W(R2, R6, SOCK_ADDR_OFF_TYPE),
		JNE_IMM(R2, STAMP_SOCK_STREAM, 16),
		MOV64_REG(R1, R6),
		CALL(FN_get_socket_cookie),
		STX_DW(FP, R0, -8),
		CALL(FN_get_current_pid_tgid),
		ALU64_IMM(0x70 /* rsh */, R0, 32),
		STX_DW(FP, R0, -24),
		CALL(FN_get_current_cgroup_id),
		STX_DW(FP, R0, -16),
		LD_MAP_FD(R1, map),
		MOV64_REG(R2, FP),
		ALU64_IMM(0x00 /* add */, R2, -8),
		MOV64_REG(R3, FP),
		ALU64_IMM(0x00 /* add */, R3, -24),
		MOV64_IMM(R4, 0),
		CALL(FN_map_update_elem),
		MOV64_IMM(R0, 1),
		EXIT(),
	};
	return load(BPF_PROG_TYPE_CGROUP_SOCK_ADDR, attach_type, prog, sizeof prog / sizeof prog[0],
		    name);
}

/* sock_ops: asks for the header callbacks when a connection starts, reserves the option's
 * room in its SYN, writes it there from the map, then stops the callbacks (a retransmitted
 * SYN carries no stamp; the host falls back to asking). */
static int load_sock_ops(int map)
{
	const struct insn prog[] = {
		/* 0 */ MOV64_REG(R6, R1),
		/* 1 */ LDX_W(R2, R6, SOCK_OPS_OFF_OP),
		/* 2 */ JEQ_IMM(R2, OPS_TCP_CONNECT_CB, 4),
		/* 3 */ JEQ_IMM(R2, OPS_HDR_OPT_LEN_CB, 7),
		/* 4 */ JEQ_IMM(R2, OPS_WRITE_HDR_OPT_CB, 14),
		/* 5 out */ MOV64_IMM(R0, 1),
		/* 6 */ EXIT(),
		/* 7 connect */ MOV64_REG(R1, R6),
		/* 8 */ MOV64_IMM(R2, OPS_WRITE_HDR_OPT_CB_FLAG),
		/* 9 */ CALL(FN_sock_ops_cb_flags_set),
		/* 10 */ JA(-6),
		/* 11 len */ LDX_W(R2, R6, SOCK_OPS_OFF_SKB_TCP_FLAGS),
		/* 12 */ JSET_IMM(R2, TCP_FLAG_SYN, 1),
		/* 13 */ JA(-9),
		/* 14 */ MOV64_REG(R1, R6),
		/* 15 */ MOV64_IMM(R2, STAMP_LEN),
		/* 16 */ MOV64_IMM(R3, 0),
		/* 17 */ CALL(FN_reserve_hdr_opt),
		/* 18 */ JA(-14),
		/* 19 write */ MOV64_REG(R1, R6),
		/* 20 */ CALL(FN_get_socket_cookie),
		/* 21 */ STX_DW(FP, R0, -8),
		/* 22 */ LD_MAP_FD(R1, map),
		/* 24 */ MOV64_REG(R2, FP),
		/* 25 */ ALU64_IMM(0x00, R2, -8),
		/* 26 */ CALL(FN_map_lookup_elem),
		/* 27 */ JEQ_IMM(R0, 0, 11),
		/* 28 */ LDX_W(R3, R0, 0),
		/* 29 */ LDX_DW(R4, R0, 8),
		/* 30 */ ST_W(FP, -32, STAMP_HEAD),
		/* 31 */ STX_W(FP, R3, -28),
		/* 32 */ STX_DW(FP, R4, -24),
		/* 33 */ MOV64_REG(R1, R6),
		/* 34 */ MOV64_REG(R2, FP),
		/* 35 */ ALU64_IMM(0x00, R2, -32),
		/* 36 */ MOV64_IMM(R3, STAMP_LEN),
		/* 37 */ MOV64_IMM(R4, 0),
		/* 38 */ CALL(FN_store_hdr_opt),
		/* 39 clear */ MOV64_REG(R1, R6),
		/* 40 */ MOV64_IMM(R2, 0),
		/* 41 */ CALL(FN_sock_ops_cb_flags_set),
		/* 42 */ JA(-38),
	};
	return load(BPF_PROG_TYPE_SOCK_OPS, 0, prog, sizeof prog / sizeof prog[0], "wl_stamp");
}

int synstamp_attach(int cgroup_root)
{
	int map = make_map();
	if (map < 0)
		return -1;
	int progs[3] = {
		load_connect(map, BPF_CGROUP_INET4_CONNECT, "wl_connect4"),
		load_connect(map, BPF_CGROUP_INET6_CONNECT, "wl_connect6"),
		load_sock_ops(map),
	};
	static const uint32_t types[3] = {BPF_CGROUP_INET4_CONNECT, BPF_CGROUP_INET6_CONNECT,
					  BPF_CGROUP_SOCK_OPS};
	int rc = 0, saved = 0;
	for (int i = 0; i < 3 && rc == 0; i++)
		if (progs[i] < 0 || attach(cgroup_root, progs[i], types[i]) != 0)
			rc = -1, saved = errno;
	/* Attached programs hold their map and themselves; the fds are not needed after. A
	 * failure part way leaves a connect program recording for a sock_ops program that is
	 * not there: harmless (the LRU map stays small), and the host asks as before. */
	for (int i = 0; i < 3; i++)
		if (progs[i] >= 0)
			close(progs[i]);
	close(map);
	errno = saved;
	return rc;
}
