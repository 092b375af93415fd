/* ktstate.h: decode a kt_ kernel's in-memory test state (see kt_abi.h) from guest memory. */
#ifndef KSCOPE_KTSTATE_H
#define KSCOPE_KTSTATE_H

#include <stddef.h>
#include <stdint.h>

#include <kscope/error.h>
#include <kscope/kt_abi.h>
#include <kscope/types.h>

/* One case, as the kernel last recorded it. */
struct ks_kt_case {
	char *name;
	uint32_t flags;  /* KT_ABI_F_* */
	uint32_t status; /* KT_ST_* */
	uint64_t start_ns, duration_ns;
	uint32_t params_total, params_failed;
	uint32_t failures;
	uint32_t fail_line;
	char *fail_file; /* NULL when the case has no failure */
};

/* One suite and its cases. */
struct ks_kt_suite {
	char *name;
	uint32_t flags, status;
	uint32_t n_pass, n_fail, n_skip, n_selected;
	uint64_t start_ns, duration_ns;
	size_t ncases;
	struct ks_kt_case *cases;
};

/* A consistent snapshot of the whole state (a plain record: read its fields directly). */
struct ks_kt_state {
	uint64_t seq;
	uint32_t phase;     /* KT_PHASE_* */
	int32_t cur_suite;  /* -1 when none */
	int32_t cur_case;
	int32_t cur_param;
	uint32_t n_pass, n_fail, n_skip, n_selected;
	uint64_t now_ns;
	ks_gva_t sites;
	uint32_t nsites;
	size_t nsuites;
	struct ks_kt_suite *suites;
};

/*
 * Reads the state rooted at `state` (the address of the kernel's `kt_state` symbol) through
 * read(ctx, ...), retrying while the kernel changes it. Returns a snapshot the caller frees
 * with ks_kt_state_free(), or NULL with err filled: bad magic or version, a count or size out
 * of range, an unreadable address, or a state that kept changing.
 */
struct ks_kt_state *ks_kt_state_read(ks_read_gva_fn read, void *ctx, ks_gva_t state,
				     struct ks_error *err);

/*
 * The same for a kernel that is stopped (paused, or ended with its RAM still mapped): one
 * read, whatever the sequence lock says. A kernel stopped between its two updates of `seq`
 * (at a watchpoint on its phase, or crashed there) leaves it odd for good, and what it wrote
 * so far is all there is to read.
 */
struct ks_kt_state *ks_kt_state_read_stopped(ks_read_gva_fn read, void *ctx, ks_gva_t state,
					     struct ks_error *err);

/* Frees a snapshot; NULL is fine. */
void ks_kt_state_free(struct ks_kt_state *st);

/* "pass", "fail", ... for a KT_ST_* value; "invalid" for others. Static string. */
const char *ks_kt_status_name(uint32_t status);

/* "boot", "ready", ... for a KT_PHASE_* value; "invalid" for others. Static string. */
const char *ks_kt_phase_name(uint32_t phase);

#endif
