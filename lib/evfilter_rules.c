/* evfilter_rules.c: rule sets (--trace, --pause-on, --on) and the strongest action they match. */
#include <errno.h>
#include <stdlib.h>

#include <kscope/evfilter.h>

struct ks_evrules {
	struct ks_evrule *r;
	size_t n, cap;
};

struct ks_evrules *ks_evrules_new(struct ks_error *err)
{
	struct ks_evrules *rs = calloc(1, sizeof(*rs));

	if (!rs)
		ks_error_set(err, -ENOMEM, "out of memory");
	return rs;
}

void ks_evrules_free(struct ks_evrules *rs)
{
	if (!rs)
		return;
	for (size_t i = 0; i < rs->n; i++)
		ks_evfilter_free(rs->r[i].filter);
	free(rs->r);
	free(rs);
}

/* Parses text, a spec with action or a rule (action NONE), and appends the rule. */
static int add(struct ks_evrules *rs, const char *text, enum ks_evaction action,
	       struct ks_error *err)
{
	struct ks_evrule rule = { .action = action };
	struct ks_error local;
	int rc = 0;

	/* The parse's own code (-EINVAL or -ENOMEM) is wanted even when the caller's err is not. */
	if (!err)
		err = &local;
	if (action == KS_EVACT_NONE)
		rc = ks_evrule_parse(text, &rule, err);
	else if (!(rule.filter = ks_evfilter_parse(text, err)))
		rc = err->code;
	if (rc < 0)
		return rc;
	if (rs->n == rs->cap) {
		size_t cap = rs->cap ? rs->cap * 2 : 8;
		struct ks_evrule *r = realloc(rs->r, cap * sizeof(*r));
		if (!r) {
			ks_evfilter_free(rule.filter);
			return ks_error_set(err, -ENOMEM, "out of memory");
		}
		rs->r = r;
		rs->cap = cap;
	}
	rs->r[rs->n++] = rule;
	return 0;
}

int ks_evrules_add_trace(struct ks_evrules *rs, const char *spec, struct ks_error *err)
{
	return add(rs, spec, KS_EVACT_LOG, err);
}

int ks_evrules_add_pause_on(struct ks_evrules *rs, const char *spec, struct ks_error *err)
{
	return add(rs, spec, KS_EVACT_PAUSE, err);
}

int ks_evrules_add_on(struct ks_evrules *rs, const char *text, struct ks_error *err)
{
	return add(rs, text, KS_EVACT_NONE, err);
}

enum ks_evaction ks_evrules_match(const struct ks_evrules *rs, const struct ks_event *ev)
{
	enum ks_evaction best = KS_EVACT_NONE;

	for (size_t i = 0; i < rs->n && best < KS_EVACT_STOP; i++)
		if (rs->r[i].action > best && ks_evfilter_match(rs->r[i].filter, ev))
			best = rs->r[i].action;
	return best;
}

size_t ks_evrules_count(const struct ks_evrules *rs)
{
	return rs->n;
}

const struct ks_evrule *ks_evrules_get(const struct ks_evrules *rs, size_t i)
{
	return i < rs->n ? &rs->r[i] : NULL;
}

int ks_evrules_resolve(struct ks_evrules *rs, const struct ks_symtab *t,
		       struct ks_error *err)
{
	int rc = 0;

	for (size_t i = 0; i < rs->n && rc == 0; i++)
		rc = ks_evfilter_resolve(rs->r[i].filter, t, err);
	return rc;
}
