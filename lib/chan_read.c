/* chan_read.c: reading a channel's lines back: waiting for one, the tail of the ring, dumps. */
#include <errno.h>
#include <regex.h>
#include <stdlib.h>
#include <string.h>

#include <kscope/chan.h>

#include "chan_internal.h"

/* ---- reading back: waits, tails, dumps ---- */

struct matcher {
	const char *text;
	size_t len;
	bool is_regex;
	regex_t re;
};

static int matcher_init(struct matcher *m, const char *pattern, unsigned flags)
{
	if (!pattern || (flags & ~KS_CHAN_MATCH_REGEX))
		return -EINVAL;
	m->text = pattern;
	m->len = strlen(pattern);
	m->is_regex = flags & KS_CHAN_MATCH_REGEX;
	if (m->is_regex && regcomp(&m->re, pattern, REG_EXTENDED | REG_NOSUB) != 0)
		return -EINVAL;
	return 0;
}

static bool matches(const struct matcher *m, const struct ks_chan_line *l)
{
	regmatch_t whole = { .rm_so = 0, .rm_eo = (regoff_t)l->len };

	if (!m->is_regex)
		return memmem(l->text, l->len, m->text, m->len) != NULL;
#ifdef REG_STARTEND
	return regexec(&m->re, l->text, 1, &whole, REG_STARTEND) == 0;
#else
	(void)whole;
	return regexec(&m->re, l->text, 0, NULL, 0) == 0;
#endif
}

/* The ring's entry for line number n, or NULL if it is not (or no longer) there. */
static const struct rec *ring_line(const struct ks_chan *ch, uint64_t n)
{
	uint64_t oldest = ch->st.lines - ch->ring_count + 1;

	if (n < oldest || n > ch->st.lines)
		return NULL;
	return ch->ring[(ch->ring_head + (n - oldest)) % ch->ring_cap];
}

/* Copies lines first..first+n-1 of the ring into one block (see ks_chan_tail()). */
static struct ks_chan_line *copy_lines(const struct ks_chan *ch, uint64_t first, size_t n)
{
	size_t size = n * sizeof(struct ks_chan_line) + strlen(ch->name) + 1;
	struct ks_chan_line *out;
	char *name, *p;

	for (size_t i = 0; i < n; i++)
		size += ring_line(ch, first + i)->line.len + 1;
	out = malloc(size);
	if (!out)
		return NULL;
	name = (char *)(out + n);
	strcpy(name, ch->name);
	p = name + strlen(name) + 1;
	for (size_t i = 0; i < n; i++) {
		const struct ks_chan_line *l = &ring_line(ch, first + i)->line;

		out[i] = *l;
		out[i].chan = name;
		out[i].text = p;
		memcpy(p, l->text, l->len + 1);
		p += l->len + 1;
	}
	return out;
}

int ks_chan_wait_line(struct ks_chan *ch, const char *pattern, unsigned flags,
		      uint64_t *cursor, int64_t timeout_ns, struct ks_chan_line **line)
{
	uint64_t start = ks_loop_now_ns(), next = (cursor ? *cursor : ch->st.lines) + 1;
	const struct rec *hit = NULL;
	struct matcher m;
	int r;

	if (line)
		*line = NULL;
	r = matcher_init(&m, pattern, flags);
	if (r < 0)
		return r;
	for (bool first = true;; first = false) {
		int64_t left;

		for (; !hit && next <= ch->st.lines; next++) {
			const struct rec *c = ring_line(ch, next);

			if (c && matches(&m, &c->line))
				hit = c;
		}
		if (hit)
			break;
		r = -ECONNRESET;
		if (ch->closed)
			goto out;
		left = chan_remaining(start, timeout_ns);
		r = -ETIMEDOUT;
		if (left == 0 && !first)
			goto out;
		r = ks_loop_run_once(ch->loop, left);
		if (r < 0)
			goto out;
	}
	r = 0;
	if (line && !(*line = copy_lines(ch, hit->line.lineno, 1)))
		r = -ENOMEM;
	if (cursor && r == 0)
		*cursor = hit->line.lineno;
out:
	if (m.is_regex)
		regfree(&m.re);
	return r;
}

int ks_chan_tail(const struct ks_chan *ch, size_t n, struct ks_chan_line **lines,
		 size_t *count)
{
	if (n > ch->ring_count)
		n = ch->ring_count;
	*lines = NULL;
	*count = 0;
	if (n == 0)
		return 0;
	*lines = copy_lines(ch, ch->st.lines - n + 1, n);
	if (!*lines)
		return -ENOMEM;
	*count = n;
	return 0;
}

int ks_chan_dump(const struct ks_chan *ch, size_t n, FILE *f)
{
	int r = 0;

	if (n > ch->ring_count)
		n = ch->ring_count;
	for (uint64_t i = ch->st.lines - n + 1; i <= ch->st.lines && n; i++)
		if (chan_format_line(f, ch->name, &ring_line(ch, i)->line, ch->st.open_ns) < 0)
			r = -EIO;
	return r;
}
