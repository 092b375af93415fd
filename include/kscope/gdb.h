/* gdb.h: a client of QEMU's gdbstub (GDB remote protocol) on a ks_loop; x86-64 registers. */
#ifndef KSCOPE_GDB_H
#define KSCOPE_GDB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <kscope/error.h>
#include <kscope/loop.h>
#include <kscope/types.h>

struct ks_gdb;

/* Time each request may take until ks_gdb_set_timeout() says otherwise. */
#define KS_GDB_DEFAULT_TIMEOUT_NS 5000000000ll

/* The packet size assumed when the stub does not announce one (GDB's own default). */
#define KS_GDB_DEFAULT_PACKET_SIZE 400u

/* Largest PacketSize taken from a stub; a larger announcement is clamped to it. */
#define KS_GDB_MAX_PACKET_SIZE (1u << 20)

/* What the client knows of the target's execution. */
enum ks_gdb_run_state {
	KS_GDB_STOPPED,  /* every vCPU stopped (all-stop mode): requests can be sent */
	KS_GDB_RUNNING,  /* resumed by ks_gdb_continue() or ks_gdb_step(): only interrupt */
	KS_GDB_EXITED,   /* the stub reported the end of the target (W or X) */
};

/* Kinds of stop replies. */
enum ks_gdb_stop_kind {
	KS_GDB_STOP_SIGNAL,     /* T or S: stopped with signal `code` */
	KS_GDB_STOP_EXITED,     /* W: the target exited with status `code` */
	KS_GDB_STOP_TERMINATED, /* X: the target ended with signal `code` */
	KS_GDB_STOP_OUTPUT,     /* O: console output, no change of state (`output`) */
};

/* Which watchpoint fired. */
enum ks_gdb_watch {
	KS_GDB_WATCH_NONE,
	KS_GDB_WATCH_WRITE,   /* "watch:" */
	KS_GDB_WATCH_READ,    /* "rwatch:" */
	KS_GDB_WATCH_ACCESS,  /* "awatch:" */
};

/* GDB's signal numbers as QEMU reports them. */
#define KS_GDB_SIGINT 2   /* interrupted (0x03) or paused from outside (QMP stop) */
#define KS_GDB_SIGTRAP 5  /* breakpoint, watchpoint, single step, or the initial stop */

/* One stop reply. */
struct ks_gdb_stop {
	enum ks_gdb_stop_kind kind;
	int code;                /* signal number (SIGNAL, TERMINATED) or exit status (EXITED) */
	int vcpu;                /* vCPU index of the reply's thread, -1 if it named none */
	enum ks_gdb_watch watch; /* the watchpoint that fired, if any */
	ks_gva_t watch_addr;     /* the address it reported (valid when watch != NONE) */
	bool swbreak, hwbreak;   /* the stub said a software / hardware breakpoint hit */
	const char *output;      /* OUTPUT: the text, NUL-terminated, valid during the callback */
	uint64_t recv_ns;        /* ks_loop_now_ns() when the reply arrived */
};

/*
 * Called for every stop reply but the answer to "?": a breakpoint or watchpoint hit after
 * ks_gdb_continue(), the end of a step or an interrupt, a pause through QMP, the end of the
 * target, console output. It runs from the loop, possibly inside a request of the client's
 * own, when it cannot make requests (-EBUSY). stop is valid during the call only.
 */
typedef void (*ks_gdb_stop_cb)(struct ks_gdb *g, const struct ks_gdb_stop *stop, void *data);

/* Breakpoint and watchpoint types: the numbers of the Z/z packets. */
enum ks_gdb_bp_type {
	KS_GDB_BP_SW = 0,      /* software breakpoint (under KVM an int3, which the software
				* KVM of the project's machines cannot take: use TCG) */
	KS_GDB_BP_HW = 1,      /* hardware breakpoint */
	KS_GDB_WP_WRITE = 2,   /* write watchpoint */
	KS_GDB_WP_READ = 3,    /* read watchpoint */
	KS_GDB_WP_ACCESS = 4,  /* read or write watchpoint */
};

/* ---- connection ---- */

/*
 * Connects to the gdbstub at the Unix socket path, retrying while the socket does not exist
 * yet or refuses connections, then negotiates within timeout_ns (< 0: no limit):
 * qSupported (the stub's PacketSize), QStartNoAckMode (acks stay on if the stub refuses it,
 * as QEMU 7.2 does), "?" (the initial stop), the vCPU list, the target description (QEMU
 * answers p/P only after it) and the physical-memory mode. QEMU pauses the VM when a
 * client connects. Runs on loop, which must outlive the client; with loop NULL the client
 * makes and owns a private one. Returns NULL on failure with err filled (-ETIMEDOUT,
 * -ENAMETOOLONG, -ECONNRESET, -EPROTO, ...). Free with ks_gdb_free(). Setting
 * KSCOPE_GDB_DEBUG=1 in the environment turns on ks_gdb_set_debug(g, stderr) from the
 * start.
 */
struct ks_gdb *ks_gdb_connect(struct ks_loop *loop, const char *path, int64_t timeout_ns,
			      struct ks_error *err);

/*
 * Like ks_gdb_connect() on fd, an already connected stream socket, whose ownership passes to
 * the client (it is closed by ks_gdb_free(), and on failure here).
 */
struct ks_gdb *ks_gdb_attach(struct ks_loop *loop, int fd, int64_t timeout_ns,
			     struct ks_error *err);

/*
 * Detaches ("D": QEMU removes every breakpoint and watchpoint and resumes the VM, so none
 * is left to stop a guest nobody watches any more) if still connected, interrupting a
 * running target first and waiting at most the request timeout (capped at 1 s) for each,
 * then closes the connection and frees the client. Takes NULL. Not from a callback.
 */
void ks_gdb_free(struct ks_gdb *g);

/* Detaches now (see ks_gdb_free()) and closes the connection. 0 or -errno, err filled. */
int ks_gdb_detach(struct ks_gdb *g, struct ks_error *err);

/* False once the peer has closed the connection, broken the protocol, or been detached. */
bool ks_gdb_connected(const struct ks_gdb *g);

/*
 * Why the client is disconnected (a negative errno and a message), or NULL while it is
 * connected. Borrowed: valid until ks_gdb_free().
 */
const struct ks_error *ks_gdb_disconnect_reason(const struct ks_gdb *g);

/* The loop the client runs on. */
struct ks_loop *ks_gdb_loop(const struct ks_gdb *g);

/*
 * Copies all traffic to f, one line per unit as it is on the wire (bytes outside
 * printable ASCII and "\" written as \xNN): "gdb -> " before what the client sends,
 * "gdb <- " before what it receives, "gdb -- " before the client's own remarks. NULL turns
 * it off. f must outlive the client.
 */
void ks_gdb_set_debug(struct ks_gdb *g, FILE *f);

/* Sets the time each request may take (< 0: no limit); the default is 5 s. */
void ks_gdb_set_timeout(struct ks_gdb *g, int64_t timeout_ns);

/* The stub's PacketSize in bytes (4096 for QEMU 7.2). */
size_t ks_gdb_packet_size(const struct ks_gdb *g);

/*
 * The most bytes one "m" request reads (half the PacketSize: 2048 for QEMU 7.2); longer
 * reads are split into chunks of this size.
 */
size_t ks_gdb_max_read(const struct ks_gdb *g);

/* The target's architecture from its description ("i386:x86-64"), or NULL if none came. */
const char *ks_gdb_arch(const struct ks_gdb *g);

/* True while packets are acknowledged with "+" (the stub refused QStartNoAckMode). */
bool ks_gdb_acks(const struct ks_gdb *g);

/* ---- threads (one per vCPU) ---- */

/* The number of vCPUs found at connection (or by the last ks_gdb_list_vcpus()). */
unsigned ks_gdb_vcpu_count(const struct ks_gdb *g);

/*
 * Asks the stub for its threads again (qfThreadInfo / qsThreadInfo): thread i of the list
 * is vCPU i. Returns the count (> 0) or -errno with err filled.
 */
int ks_gdb_list_vcpus(struct ks_gdb *g, struct ks_error *err);

/*
 * Makes vcpu the thread that registers and virtual memory refer to (Hg). The choice is
 * remembered, so the register and memory calls below only send Hg when it changes.
 * Returns 0, -EINVAL for a vCPU that does not exist, or -errno.
 */
int ks_gdb_select_vcpu(struct ks_gdb *g, unsigned vcpu, struct ks_error *err);

/* ---- execution ---- */

/* What the client knows of the target's execution (see enum ks_gdb_run_state). */
enum ks_gdb_run_state ks_gdb_state(const struct ks_gdb *g);

/*
 * The last stop reply (the answer to "?" at connection, or the latest one since).
 * Borrowed: valid until the next stop or ks_gdb_free().
 */
const struct ks_gdb_stop *ks_gdb_last_stop(const struct ks_gdb *g);

/* Calls cb for every asynchronous stop reply from now on (cb NULL: no more calls). */
void ks_gdb_on_stop(struct ks_gdb *g, ks_gdb_stop_cb cb, void *data);

/*
 * Resumes every vCPU (vCont;c) and returns at once; the stop reply comes later, to the
 * callback and to ks_gdb_wait_stop(). Returns 0, -EBUSY if already running, -ENOTCONN, or
 * -errno, err filled.
 */
int ks_gdb_continue(struct ks_gdb *g, struct ks_error *err);

/*
 * Runs the loop until the target is stopped (or has exited), at most timeout_ns (< 0: no
 * limit), and copies the last stop into *stop (may be NULL). Returns 0 at once when it is
 * already stopped, -ETIMEDOUT, or -ENOTCONN when the connection ended first.
 */
int ks_gdb_wait_stop(struct ks_gdb *g, struct ks_gdb_stop *stop, int64_t timeout_ns);

/*
 * Steps one instruction on vcpu alone (vCont;s:thread) and waits for its stop reply,
 * copied into *stop (may be NULL). Returns 0, -EBUSY while running, -ETIMEDOUT (the target
 * then stays running until a stop comes), or -errno, err filled.
 */
int ks_gdb_step(struct ks_gdb *g, unsigned vcpu, struct ks_gdb_stop *stop,
		struct ks_error *err);

/*
 * Stops every vCPU: sends 0x03 and waits (the request timeout) for the stop reply, copied
 * into *stop (may be NULL). When the client already knows the target stopped (QEMU reports
 * every stop, those from QMP too) it sends nothing and returns the last stop at once.
 * Returns 0, -ETIMEDOUT, or -errno, err filled.
 */
int ks_gdb_interrupt(struct ks_gdb *g, struct ks_gdb_stop *stop, struct ks_error *err);

/*
 * Tells the client that the VM was resumed by other means (QMP cont, ks_vm_resume()), which
 * QEMU does not report over gdb: the client then refuses requests (any byte sent to a
 * running VM only stops it, and the request would be lost) until a stop reply comes, and
 * ks_gdb_interrupt() really interrupts.
 */
void ks_gdb_note_resumed(struct ks_gdb *g);

/* ---- breakpoints and watchpoints ---- */

/*
 * Inserts a breakpoint or watchpoint of type at addr (Z0..Z4) on every vCPU. kind is the
 * breakpoint's instruction length (1 on x86; 0 means 1) or the watched length in bytes
 * (1, 2, 4 or 8, aligned; 0 is -EINVAL). Returns 0, -EOPNOTSUPP when the stub does not
 * know the type, -EIO when it refused (err holds its error number), -EBUSY while running,
 * or -errno.
 */
int ks_gdb_set_breakpoint(struct ks_gdb *g, enum ks_gdb_bp_type type, ks_gva_t addr,
			  unsigned kind, struct ks_error *err);

/* Removes what ks_gdb_set_breakpoint() inserted (z0..z4); same arguments and errors. */
int ks_gdb_clear_breakpoint(struct ks_gdb *g, enum ks_gdb_bp_type type, ks_gva_t addr,
			    unsigned kind, struct ks_error *err);

/* ---- memory ---- */

/*
 * Switches "m"/"M" between virtual addresses (off, the default) and guest physical ones
 * (Qqemu.PhyMemMode). The mode is remembered (and read from the stub at connection, as
 * QEMU keeps it across clients), so switching to the current mode sends nothing. Returns
 * 0, -EOPNOTSUPP when the stub has no such mode, or -errno.
 */
int ks_gdb_set_phys_mode(struct ks_gdb *g, bool on, struct ks_error *err);

/* True when "m"/"M" take physical addresses. */
bool ks_gdb_phys_mode(const struct ks_gdb *g);

/*
 * Reads len bytes of guest virtual memory at gva, as vcpu's page tables map it, into buf,
 * in chunks of ks_gdb_max_read() bytes (switching physical mode off if needed). Returns 0,
 * -EFAULT when the stub could not read a chunk (err names its address), -EBUSY while
 * running, -EINVAL, or -errno.
 */
int ks_gdb_read_virt(struct ks_gdb *g, unsigned vcpu, ks_gva_t gva, void *buf, size_t len,
		     struct ks_error *err);

/* Writes len bytes from buf at gva (M packets that fit the PacketSize); as above. */
int ks_gdb_write_virt(struct ks_gdb *g, unsigned vcpu, ks_gva_t gva, const void *buf,
		      size_t len, struct ks_error *err);

/*
 * Reads len bytes of guest physical memory at gpa into buf, switching physical mode on if
 * needed, in chunks of ks_gdb_max_read() bytes. Errors as ks_gdb_read_virt().
 */
int ks_gdb_read_phys(struct ks_gdb *g, ks_gpa_t gpa, void *buf, size_t len,
		     struct ks_error *err);

/* Writes len bytes of guest physical memory at gpa from buf; as ks_gdb_read_phys(). */
int ks_gdb_write_phys(struct ks_gdb *g, ks_gpa_t gpa, const void *buf, size_t len,
		      struct ks_error *err);

/* ---- x86-64 registers ---- */

/* Register numbers of QEMU's x86-64 target (i386-64bit.xml), as p/P take them. */
enum ks_x86_reg {
	KS_X86_RAX, KS_X86_RBX, KS_X86_RCX, KS_X86_RDX,
	KS_X86_RSI, KS_X86_RDI, KS_X86_RBP, KS_X86_RSP,
	KS_X86_R8, KS_X86_R9, KS_X86_R10, KS_X86_R11,
	KS_X86_R12, KS_X86_R13, KS_X86_R14, KS_X86_R15,
	KS_X86_RIP,                                     /* 16: 8 bytes */
	KS_X86_EFLAGS,                                  /* 17: 4 bytes */
	KS_X86_CS, KS_X86_SS, KS_X86_DS, KS_X86_ES,     /* 18..23: 4 bytes each */
	KS_X86_FS, KS_X86_GS,
	KS_X86_FS_BASE, KS_X86_GS_BASE, KS_X86_K_GS_BASE, /* 24..26: 8 bytes */
	KS_X86_CR0, KS_X86_CR2, KS_X86_CR3, KS_X86_CR4,  /* 27..32: 8 bytes */
	KS_X86_CR8, KS_X86_EFER,
	KS_X86_ST0,                                     /* 33..40: 10 bytes each */
	KS_X86_FCTRL = KS_X86_ST0 + 8,                  /* 41..48: 4 bytes each */
	KS_X86_FSTAT, KS_X86_FTAG, KS_X86_FISEG, KS_X86_FIOFF, KS_X86_FOSEG, KS_X86_FOOFF,
	KS_X86_FOP,
	KS_X86_XMM0,                                    /* 49..64: 16 bytes each */
	KS_X86_MXCSR = KS_X86_XMM0 + 16,                /* 65: 4 bytes */
	KS_X86_NREGS,
};

/* Bytes of the whole register block ("g"): 1216 hex digits. */
#define KS_X86_REGS_SIZE 608u

/* One vCPU's registers as QEMU's gdbstub gives them. */
struct ks_x86_regs {
	uint64_t rax, rbx, rcx, rdx, rsi, rdi, rbp, rsp;
	uint64_t r8, r9, r10, r11, r12, r13, r14, r15;
	uint64_t rip;
	uint64_t rflags;          /* the stub sends the low 32 bits (eflags) */
	uint16_t cs, ss, ds, es, fs, gs;  /* selectors (sent as 32-bit values) */
	uint64_t fs_base, gs_base, k_gs_base;
	uint64_t cr0, cr2, cr3, cr4, cr8, efer;
	struct { uint64_t mantissa; uint16_t sign_exp; } st[8];  /* x87 st(i), 80 bits */
	uint32_t fctrl, fstat, ftag, fiseg, fioff, foseg, fooff, fop;
	struct { uint64_t lo, hi; } xmm[16];
	uint32_t mxcsr;
};

/* Control-register bits used to tell the CPU mode. */
#define KS_X86_CR0_PE (1ull << 0)
#define KS_X86_CR0_PG (1ull << 31)
#define KS_X86_CR4_PAE (1ull << 5)
#define KS_X86_EFER_LME (1ull << 8)
#define KS_X86_EFER_LMA (1ull << 10)
#define KS_X86_RFLAGS_TF (1ull << 8)
#define KS_X86_RFLAGS_IF (1ull << 9)

/*
 * Reads every register of vcpu ("g") into *regs. Returns 0, -EPROTO when the reply is not
 * a whole x86-64 register block, -EBUSY while running, or -errno, err filled.
 */
int ks_gdb_read_regs(struct ks_gdb *g, unsigned vcpu, struct ks_x86_regs *regs,
		     struct ks_error *err);

/* Writes every register of vcpu ("G") from *regs. Errors as ks_gdb_read_regs(). */
int ks_gdb_write_regs(struct ks_gdb *g, unsigned vcpu, const struct ks_x86_regs *regs,
		      struct ks_error *err);

/*
 * Reads register regno of vcpu ("p") as raw little-endian bytes into buf (size bytes).
 * Returns its length in bytes, -ENOSPC when buf is too small, -EIO when the stub refused
 * (no such register), or -errno.
 */
int ks_gdb_read_reg(struct ks_gdb *g, unsigned vcpu, unsigned regno, void *buf, size_t size,
		    struct ks_error *err);

/* Writes register regno of vcpu ("P") from len raw little-endian bytes. 0 or -errno. */
int ks_gdb_write_reg(struct ks_gdb *g, unsigned vcpu, unsigned regno, const void *buf,
		     size_t len, struct ks_error *err);

/* Reads a register of at most 8 bytes as an integer (zero-extended). 0 or -errno. */
int ks_gdb_read_reg_u64(struct ks_gdb *g, unsigned vcpu, enum ks_x86_reg reg,
			uint64_t *value, struct ks_error *err);

/* Writes a register of at most 8 bytes from an integer (truncated to its size). */
int ks_gdb_write_reg_u64(struct ks_gdb *g, unsigned vcpu, enum ks_x86_reg reg,
			 uint64_t value, struct ks_error *err);

/* A register write for ks_gdb_continue_at(). */
struct ks_gdb_reg_write {
	enum ks_x86_reg reg;   /* a register of at most 8 bytes */
	uint64_t value;        /* truncated to the register's size */
};

/*
 * Writes n registers of the vCPU that stopped last and continues every vCPU, that one from
 * pc, in one go: a P packet per write, whose replies are not waited for, then "c ADDR",
 * which sets the RIP of QEMU's continue thread (every stop makes it the stopping vCPU). QEMU
 * handles packets in order while the VM is stopped, so the writes are done before any vCPU
 * runs; their replies are taken and dropped when they come, and one that is not "OK" is
 * counted (ks_gdb_lost_writes()), since the vCPU then already runs. Those replies are not
 * acknowledged (acks on): they come when the VM may run again, and QEMU takes any byte sent
 * to a running VM for an interrupt; its system-mode stub does not wait for acks. Use it for
 * writes the stub is known to take (ks_gdb_write_reg_u64() answers that). n may be 0. Returns 0;
 * -EBUSY while running or with a request in flight; -ESRCH when the last stop named no vCPU
 * (no continue thread is known); -EINVAL for a register of more than 8 bytes; -ENOTCONN or
 * -errno, err filled.
 */
int ks_gdb_continue_at(struct ks_gdb *g, ks_gva_t pc, const struct ks_gdb_reg_write *w,
		       size_t n, struct ks_error *err);

/* Register writes of ks_gdb_continue_at() that the stub refused, since the connection
 * began. */
uint64_t ks_gdb_lost_writes(const struct ks_gdb *g);

/*
 * Decodes a register block (the bytes of a "g" reply, len >= KS_X86_REGS_SIZE; more is
 * ignored) into *regs. Returns 0 or -EPROTO when it is too short.
 */
int ks_x86_regs_decode(const uint8_t *raw, size_t len, struct ks_x86_regs *regs);

/* Encodes *regs into KS_X86_REGS_SIZE bytes at raw, as "G" takes them. */
void ks_x86_regs_encode(const struct ks_x86_regs *regs, uint8_t *raw);

/* The name of register reg ("rax", "eflags", "st0", "xmm15", ...), or NULL. */
const char *ks_x86_reg_name(unsigned reg);

/* The size of register reg in bytes, or 0 if there is no such register. */
unsigned ks_x86_reg_size(unsigned reg);

/* The number of the register called name (as ks_x86_reg_name() spells it), or -ENOENT. */
int ks_x86_reg_by_name(const char *name);

/* Registers whose bits have names. */
enum ks_x86_flags_reg { KS_X86_FLAGS_RFLAGS, KS_X86_FLAGS_CR0, KS_X86_FLAGS_CR4,
			KS_X86_FLAGS_EFER };

/*
 * Writes the names of the bits set in value, highest first, separated by spaces ("PG WP NE
 * ET PE"; rflags also "IOPL=n" when not 0), into buf (size bytes, always NUL-terminated).
 * Returns the length the whole text needs, like snprintf.
 */
int ks_x86_flags_format(enum ks_x86_flags_reg reg, uint64_t value, char *buf, size_t size);

/*
 * The CPU mode the control registers show: "real", "protected" (32-bit, paging or not),
 * or "long" (EFER.LMA: 64-bit or compatibility mode). Static string.
 */
const char *ks_x86_mode(const struct ks_x86_regs *regs);

/*
 * Writes *regs for humans into buf (size bytes, always NUL-terminated): general registers,
 * rip and rflags with its flags, segments and bases, control registers with their flags,
 * the CPU mode; several lines, each ending in "\n". Returns the length the whole text
 * needs, like snprintf.
 */
int ks_x86_regs_format(const struct ks_x86_regs *regs, char *buf, size_t size);

#endif
