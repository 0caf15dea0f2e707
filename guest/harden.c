#include "harden.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/prctl.h>
#include <unistd.h>

/* musl's headers do not carry the kernel's BPF/seccomp definitions, so the few we need
 * are spelled out here (values from linux/filter.h, linux/seccomp.h, linux/audit.h). */
struct sock_filter {
	uint16_t code;
	uint8_t jt, jf;
	uint32_t k;
};
struct sock_fprog {
	unsigned short len;
	struct sock_filter *filter;
};
struct seccomp_data {
	int nr;
	uint32_t arch;
	uint64_t instruction_pointer;
	uint64_t args[6];
};
#define BPF_LD 0x00
#define BPF_W 0x00
#define BPF_ABS 0x20
#define BPF_JMP 0x05
#define BPF_JEQ 0x10
#define BPF_JGE 0x30
#define BPF_K 0x00
#define BPF_RET 0x06
#define SECCOMP_MODE_FILTER 2
#define SECCOMP_RET_KILL_PROCESS 0x80000000u
#define SECCOMP_RET_ERRNO 0x00050000u
#define SECCOMP_RET_ALLOW 0x7fff0000u
#define AUDIT_ARCH_X86_64 0xc000003eu
#define AUDIT_ARCH_I386 0x40000003u
#define AUDIT_ARCH_AARCH64 0xc00000b7u
#define AUDIT_ARCH_ARM 0x40000028u
#define X32_SYSCALL_BIT 0x40000000u

#define STMT(c, v) {(uint16_t)(c), 0, 0, (v)}
#define JUMP(c, v, t, f) {(uint16_t)(c), (t), (f), (v)}
#define RET_EPERM (SECCOMP_RET_ERRNO | EPERM)

/* Syscalls that would let a process read other processes' memory or change the kernel:
 * ptrace, process_vm_readv, process_vm_writev, kexec_load, kexec_file_load,
 * init_module, finit_module, delete_module. 0 marks "does not exist on this ABI". */
#if defined(__x86_64__)
#define NATIVE_ARCH AUDIT_ARCH_X86_64
#define COMPAT_ARCH AUDIT_ARCH_I386
static const uint32_t native_nrs[] = {101, 310, 311, 246, 320, 175, 313, 176};
static const uint32_t compat_nrs[] = {26, 347, 348, 283, 0, 128, 350, 129};
#elif defined(__aarch64__)
#define NATIVE_ARCH AUDIT_ARCH_AARCH64
#define COMPAT_ARCH AUDIT_ARCH_ARM
static const uint32_t native_nrs[] = {117, 270, 271, 104, 294, 105, 273, 106};
static const uint32_t compat_nrs[] = {26, 376, 377, 347, 0, 128, 379, 129};
#else
#error "unsupported architecture"
#endif
#define NNRS (sizeof native_nrs / sizeof native_nrs[0])

int harden_drop_bounding(void)
{
	/* NET_ADMIN, NET_RAW, BPF and PERFMON too: a command that could craft its own packets
	 * (raw or packet sockets, or TCP_REPAIR) could send a SYN bearing another process's
	 * stamp (synstamp.h) and, on a 4-tuple in TIME_WAIT, drive its handshake to a working
	 * connection; BPF/PERFMON would let it load programs of its own. ping still works, over
	 * ICMP datagram sockets (harden_allow_ping). */
	static const int caps[] = {12 /* NET_ADMIN */, 13 /* NET_RAW */, 16 /* SYS_MODULE */,
				   17 /* SYS_RAWIO */, 19 /* SYS_PTRACE */, 21 /* SYS_ADMIN */,
				   22 /* SYS_BOOT */,  38 /* PERFMON */,    39 /* BPF */};
	for (size_t i = 0; i < sizeof caps / sizeof caps[0]; i++)
		/* EINVAL: a kernel older than the capability (5.8 for PERFMON and BPF) */
		if (prctl(PR_CAPBSET_DROP, caps[i], 0, 0, 0) != 0 && errno != EINVAL)
			return -1;
	return 0;
}

static size_t emit_list(struct sock_filter *f, size_t at, const uint32_t *nrs)
{
	for (size_t i = 0; i < NNRS; i++) {
		if (nrs[i] == 0)
			continue;
		/* equal: fall through to the EPERM just after; else skip it */
		f[at++] = (struct sock_filter)JUMP(BPF_JMP | BPF_JEQ | BPF_K, nrs[i], 0, 1);
		f[at++] = (struct sock_filter)STMT(BPF_RET | BPF_K, RET_EPERM);
	}
	f[at++] = (struct sock_filter)STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
	return at;
}

int harden_lock(void)
{
	struct sock_filter f[64];
	size_t n = 0;
	const uint32_t nr_off = offsetof(struct seccomp_data, nr);
	const uint32_t arch_off = offsetof(struct seccomp_data, arch);

	f[n++] = (struct sock_filter)STMT(BPF_LD | BPF_W | BPF_ABS, arch_off);
	/* native arch: continue at [n+1]; otherwise jump to the compat check */
	size_t native_jump = n++;
	f[n++] = (struct sock_filter)STMT(BPF_LD | BPF_W | BPF_ABS, nr_off);
#if defined(__x86_64__)
	/* x32 calls share the x86_64 arch tag with a high bit set; nothing we run needs them,
	 * and they would otherwise be a second path to the same syscalls. */
	f[n++] = (struct sock_filter)JUMP(BPF_JMP | BPF_JGE | BPF_K, X32_SYSCALL_BIT, 0, 1);
	f[n++] = (struct sock_filter)STMT(BPF_RET | BPF_K, RET_EPERM);
#endif
	n = emit_list(f, n, native_nrs);
	size_t compat_start = n;
	f[n++] = (struct sock_filter)JUMP(BPF_JMP | BPF_JEQ | BPF_K, COMPAT_ARCH, 0, 0);
	size_t compat_jump = n - 1;
	f[n++] = (struct sock_filter)STMT(BPF_LD | BPF_W | BPF_ABS, nr_off);
	n = emit_list(f, n, compat_nrs);
	size_t kill_at = n;
	f[n++] = (struct sock_filter)STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS);

	f[native_jump] = (struct sock_filter)JUMP(BPF_JMP | BPF_JEQ | BPF_K, NATIVE_ARCH, 0,
						  (uint8_t)(compat_start - native_jump - 1));
	f[compat_jump].jf = (uint8_t)(kill_at - compat_jump - 1);

	struct sock_fprog prog = {(unsigned short)n, f};
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
		return -1;
	return prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog, 0, 0);
}

/* Writes value to a /proc/sys file; a file the kernel lacks is not an error. */
static int write_sysctl(const char *path, const char *value)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? 0 : -1;
	size_t len = strlen(value);
	int ok = write(fd, value, len) == (ssize_t)len;
	close(fd);
	return ok ? 0 : -1;
}

int harden_allow_ping(void)
{
	return write_sysctl("/proc/sys/net/ipv4/ping_group_range", "0 2147483647");
}

int harden_restrict_ptrace(void)
{
	/* The minimal kernel starts with scope 1; a distribution kernel may start with 0. A kernel
	 * without Yama has no file: nothing to do (ptrace itself is filtered by harden_lock). */
	return write_sysctl("/proc/sys/kernel/yama/ptrace_scope", "1");
}
