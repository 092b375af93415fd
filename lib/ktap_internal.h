/* ktap_internal.h: what the KTAP line reader (ktap.c) and the test-tree builder (ktap_tree.c) share. */
#ifndef KSCOPE_KTAP_INTERNAL_H
#define KSCOPE_KTAP_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>

#include <kscope/ktap.h>

/* What a line is, once its prefix is gone. */
enum ktap_kind { KL_VERSION, KL_HEADER, KL_PLAN, KL_RESULT, KL_TEXT };

/* One classified line; the pointers are into the parser's line buffer. */
struct ktap_line {
	enum ktap_kind kind;
	const char *text;         /* KL_TEXT (and every kind): the line, prefix stripped */
	bool ktap;                /* KL_VERSION: "KTAP version", else "TAP version" */
	unsigned long version;    /* KL_VERSION */
	const char *name;         /* KL_HEADER, KL_RESULT */
	unsigned long plan;       /* KL_PLAN */
	bool ok;                  /* KL_RESULT */
	unsigned long number;     /* KL_RESULT */
	const char *directive;    /* KL_RESULT: the directive's word, "" when none */
	size_t directive_len;
	const char *reason;       /* KL_RESULT: the text after that word, "" when none */
};

/* Strings with a byte budget (KS_KTAP_LOG_MAX). */
struct ktap_strv {
	char **v;
	size_t n, cap, bytes;
};

/* A test with what only the parser needs; t comes first so the two convert. */
struct ktap_node {
	struct ks_ktap_test t;
	size_t log_cap, attrs_cap, children_cap, log_bytes;
	unsigned own_errors;
	bool ended;
};

/* A parent being read: the root or an open subtest. */
struct ktap_frame {
	struct ktap_node *n;
	long expected;            /* its plan, -1 when none came */
	unsigned long next;       /* the number its next child gets */
	bool header_open;         /* still in its version / header / attributes / plan lines */
	bool has_version, has_header;
	size_t header_from;       /* where its header lines start in its log */
	struct ktap_strv pending; /* lines whose test is not known yet */
};

struct ks_ktap {
	char *line;               /* the line being assembled, KS_KTAP_LINE_MAX + 1 bytes */
	size_t len;
	bool overlong;
	bool started;             /* the version line came */
	bool done;                /* the KTAP has ended: later lines are not read */
	bool finished;            /* ks_ktap_finish() was called */
	bool broken;              /* out of memory once: p only frees */
	char *prefix;             /* what came before "KTAP version" on the version line */
	size_t prefix_len;
	unsigned prefix_groups;   /* "[...]" groups in it, when it is only those and blanks */
	bool prefix_blank;        /* it is only blanks */
	struct ktap_node *root;
	struct ktap_frame *stack; /* stack[0] is the root's while it is open */
	size_t depth, stack_cap;
	struct ks_ktap_error *errors;
	size_t nerrors, errors_cap;
	struct ks_ktap_callbacks cb;
	struct ks_ktap_stats st;  /* st.lines is also the current line's number */
};

/* Blanks as kunit's \s sees them, minus the newline that never reaches a line. */
static inline bool ktap_blank(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v';
}

/* ktap_tree.c: the version line l started the log. */
int ktap_tree_start(struct ks_ktap *p, const struct ktap_line *l);

/* ktap_tree.c: one more line of the log. */
int ktap_tree_line(struct ks_ktap *p, const struct ktap_line *l);

/* ktap_tree.c: the log has ended: missing results crash, open parents end. */
int ktap_tree_end(struct ks_ktap *p);

/* ktap_tree.c: records an error against n (NULL: no test) in kunit's words. */
int ktap_error(struct ks_ktap *p, struct ktap_node *n, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* ktap_tree.c: frees the tree, the open parents and the errors. */
void ktap_tree_free(struct ks_ktap *p);

#endif
