/* syscall.h: syscall/sysret, the ring-3 user task and its system calls. */
#ifndef ARCH_SYSCALL_H
#define ARCH_SYSCALL_H

/* System call numbers (RAX); arguments in RDI, RSI, RDX; result in RAX. */
#define SYS_WRITE 1  /* (buf, len): appends to this CPU's user log; bytes or -EFAULT */
#define SYS_GETCPU 2 /* (): the CPU index */
#define SYS_ADD 3    /* (a, b): a + b */
#define SYS_EXIT 4   /* (code): ends the task; user_run() returns code */

#define USER_LOG_SIZE 256

#ifndef __ASSEMBLER__
#include <stddef.h>
#include <stdint.h>

/* The user programs in the user blob (arch/x86_64/user.S); each gets an argument in RDI. */
enum user_prog {
	USER_HELLO,   /* writes a greeting, calls getcpu and add(40, 2), exits with the sum */
	USER_GETCPU,  /* exits with getcpu() */
	USER_ADD,     /* exits with add(arg, arg) */
	USER_EFAULT,  /* write() with bad pointers: exits 0 when all got -EFAULT, else 1..5 */
	USER_KREAD,   /* reads the kernel address arg: must be killed by #PF */
	USER_PRIV,    /* executes cli: must be killed by #GP */
	USER_REGS,    /* checks that a syscall keeps its registers; exits 0 or the bad one */
	USER_BADSYS,  /* exits with the result of system call number arg (-ENOSYS expected) */
	USER_SPIN,    /* spins in ring 3 until the quadword at USER_DATA_VA is non-zero (exits
		       * with it) or the TSC reaches arg (exits with 0); makes no other syscall */
	USER_NPROGS
};

/* How a user task ended. */
struct user_result {
	int killed;   /* 0: it called exit; 1: an exception killed it */
	long code;    /* exit code */
	int vector;   /* killed: the exception */
	uint64_t error, cr2, rip;
};

/* Enables syscall/sysret on this CPU (EFER.SCE, STAR, LSTAR, SFMASK). */
void syscall_cpu_init(void);

/* Maps the user code page, the zeroed user data page (USER_DATA_VA) and one stack page per
 * online CPU. Returns 0 or -ENOMEM. Call again after user_space_fini() to start afresh. */
int user_space_init(void);

/* Unmaps and frees what user_space_init() mapped. */
void user_space_fini(void);

/*
 * Runs program prog in ring 3 on this CPU with arg in RDI, until it exits or an exception
 * kills it; fills *res. Returns 0, or -EINVAL when user space is not set up. The task's
 * output (SYS_WRITE) is in user_log().
 */
int user_run(enum user_prog prog, uint64_t arg, struct user_result *res);

/* The physical page behind USER_DATA_VA; 0 when user space is not set up. */
uint64_t user_data_pa(void);

/* This CPU's user log: what the last task wrote with SYS_WRITE (NUL-terminated). */
const char *user_log(void);

/* Copies n bytes from user address src into dst. Returns 0, or -EFAULT when any byte is
 * outside user space or unmapped. */
int copy_from_user(void *dst, uint64_t src, size_t n);

/* Called from trap_dispatch() for an exception taken in ring 3: kills the task. */
struct trap_frame;
__attribute__((noreturn)) void user_fault(const struct trap_frame *f);

/* C side of the syscall entry. */
long syscall_dispatch(long nr, long a0, long a1, long a2);

#endif /* __ASSEMBLER__ */
#endif /* ARCH_SYSCALL_H */
