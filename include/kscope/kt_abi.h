/* kt_abi.h: the in-memory test state and magic-message conventions shared by kernel and host. */
#ifndef KSCOPE_KT_ABI_H
#define KSCOPE_KT_ABI_H

/*
 * A kernel that links the kt_ library keeps its whole test state in guest memory at the
 * symbol `kt_state` (struct kt_abi_state). A host follows the tests by reading memory alone:
 *
 *   kt_state --suites--> [ VA, VA, ... ]           nsuites pointers of ptr_size bytes
 *                           |
 *                           v
 *                      struct kt_abi_suite --cases--> case record 0, 1, ... (case_stride apart)
 *                                                       each begins with struct kt_abi_case
 *
 * All addresses are guest virtual addresses stored as 64-bit integers; all integers are in the
 * guest's byte order (little-endian on x86-64 and AArch64). Names are NUL-terminated strings.
 *
 * Consistency: `seq` is a sequence lock. The kernel makes it odd before it changes anything
 * and even again afterwards, so it grows by 2 at every change. A host that reads an even
 * `seq`, then the fields it wants, then the same `seq` again has a consistent view; otherwise
 * it retries. A host that only wants progress can watch `seq` alone.
 *
 * Choosing the tests: the kernel stores `phase` = READY last, once every record is filled,
 * and reads which cases to run only after its KT_MAGIC_READY message, which follows. A host
 * that stops the kernel anywhere in between (a write watchpoint on `phase` stops it right
 * after that store) may rewrite each case's status (KT_ST_NONE runs, KT_ST_FILTERED does
 * not), the n_selected counts and the order of the suite pointers and case records. Stopped
 * there, it finds `seq` odd; the kernel makes it even afterwards. The kernel stores each
 * 32-bit field near `phase` on its own (no wider stores across it), so that such a
 * watchpoint fires only when the phase changes.
 */

#ifdef __ASSEMBLER__
#define KT_ABI_U64(x) x
#else
#include <stdint.h>
#define KT_ABI_U64(x) x##ULL
#endif

/* "KSCOPEKT" as bytes in memory (little-endian). */
#define KT_ABI_MAGIC KT_ABI_U64(0x544b45504f43534b)
#define KT_ABI_VERSION 1

/* Status of a case or suite (kt_abi_case.status, kt_abi_suite.status). */
#define KT_ST_NONE 0     /* selected, not reached yet */
#define KT_ST_RUNNING 1  /* running now */
#define KT_ST_PASS 2
#define KT_ST_FAIL 3
#define KT_ST_SKIP 4
#define KT_ST_FILTERED 5 /* not selected by the filter: will not run */

/* Phase of the whole run (kt_abi_state.phase). */
#define KT_PHASE_BOOT 0    /* structure valid, records not filled yet */
#define KT_PHASE_READY 1   /* records filled, no test started: a good snapshot point */
#define KT_PHASE_RUNNING 2
#define KT_PHASE_DONE 3    /* every selected test has a result */
#define KT_PHASE_LISTED 4  /* kt.list: names printed, nothing ran */

/* Flags of a case or suite. */
#define KT_ABI_F_DESTRUCTIVE 0x1 /* leaves the kernel unusable afterwards: restore the machine */
#define KT_ABI_F_PARAM 0x2       /* parameterized case: one numbered result per parameter */
#define KT_ABI_F_OPT_IN 0x4      /* suite runs only when a filter selects it */

/*
 * Magic-instruction messages. On x86-64 the kernel executes `xchg %bx,%bx` with the id in
 * RAX, the first argument in RDI and the second in RSI. Every site's address is also listed
 * (as 64-bit values) in the ELF section `kt_magic_sites`, and from kt_abi_state.sites.
 */
#define KT_MAGIC_BOOT 0x01        /* first instructions of boot; args 0 */
#define KT_MAGIC_READY 0x02       /* tests about to start; a0 = VA of kt_state */
#define KT_MAGIC_SUITE_START 0x10 /* a0 = suite index */
#define KT_MAGIC_SUITE_END 0x11   /* a0 = suite index, a1 = KT_ST_* */
#define KT_MAGIC_CASE_START 0x12  /* a0 = suite index << 32 | case index */
#define KT_MAGIC_CASE_END 0x13    /* a0 = suite index << 32 | case index, a1 = KT_ST_* */
#define KT_MAGIC_DONE 0x14        /* a0 = number of failed cases */
#define KT_MAGIC_PANIC 0x1f       /* kernel crash; a0 = exception vector or cause, a1 = RIP */
#define KT_MAGIC_USER 0x100       /* ids from here on are the kernel's own */

/*
 * Exit convention of kt_ kernels with QEMU's isa-debug-exit device (port 0xf4): the kernel
 * writes one of these values and QEMU exits with status KT_EXIT_STATUS(value).
 */
#define KT_EXIT_PASS 0x10  /* every selected test passed or was skipped (also after kt.list) */
#define KT_EXIT_FAIL 0x11  /* at least one test failed */
#define KT_EXIT_PANIC 0x12 /* the kernel crashed and no pvpanic device was there */
#define KT_EXIT_STATUS(v) ((((v) & 0xff) << 1) | 1)

#ifndef __ASSEMBLER__

/* One test case. Records are kt_abi_suite.case_stride bytes apart (the kernel's own
 * struct begins with this one). */
struct kt_abi_case {
	uint64_t name;          /* VA of the case name */
	uint32_t flags;         /* KT_ABI_F_* */
	uint32_t status;        /* KT_ST_* */
	uint64_t start_ns;      /* kernel clock when the case started; 0 before */
	uint64_t duration_ns;   /* 0 until the case ended */
	uint32_t params_total;  /* parameterized: parameters run so far */
	uint32_t params_failed; /* parameterized: parameters failed so far */
	uint32_t fail_line;     /* line of the first failed expectation; 0 if none */
	uint32_t failures;      /* failed expectations and assertions so far */
	uint64_t fail_file;     /* VA of the file name of the first failure; 0 if none */
};

/* One suite. The kernel's own struct begins with this one. */
struct kt_abi_suite {
	uint64_t name;        /* VA of the suite name */
	uint64_t cases;       /* VA of the first case record */
	uint32_t ncases;
	uint32_t case_stride; /* bytes from one case record to the next */
	uint32_t flags;       /* KT_ABI_F_* */
	uint32_t status;      /* KT_ST_* */
	uint32_t n_pass;      /* cases of this suite with each result so far */
	uint32_t n_fail;
	uint32_t n_skip;
	uint32_t n_selected;  /* cases that will run */
	uint64_t start_ns;
	uint64_t duration_ns;
};

/* The root, at the symbol `kt_state`. */
struct kt_abi_state {
	uint64_t magic;     /* KT_ABI_MAGIC */
	uint32_t version;   /* KT_ABI_VERSION */
	uint32_t size;      /* sizeof(struct kt_abi_state) in the kernel */
	uint64_t seq;       /* sequence lock, see above */
	uint64_t suites;    /* VA of nsuites suite pointers */
	uint32_t nsuites;
	uint32_t ptr_size;  /* bytes per suite pointer (8 on 64-bit kernels) */
	uint32_t phase;     /* KT_PHASE_* */
	int32_t cur_suite;  /* index of the running suite, -1 when none */
	int32_t cur_case;   /* index of the running case in that suite, -1 when none */
	int32_t cur_param;  /* index of the running parameter, -1 when none */
	uint32_t n_pass;    /* over all suites, cases with each result so far */
	uint32_t n_fail;
	uint32_t n_skip;
	uint32_t n_selected;
	uint64_t now_ns;    /* kernel clock at the last change */
	uint64_t sites;     /* VA of the magic-site table (64-bit addresses) */
	uint32_t nsites;
	uint32_t reserved;
};

#endif /* __ASSEMBLER__ */
#endif /* KSCOPE_KT_ABI_H */
