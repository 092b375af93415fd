/* gdb_ops.c: GDB client operations: negotiation, threads, run control, breakpoints, memory. */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include <kscope/gdb.h>

#include "gdb_internal.h"

#define MAX_XML (64u << 10)

/* ---- negotiation ---- */

#define SUPPORTED "qSupported:multiprocess+;swbreak+;hwbreak+;vContSupported+;xmlRegisters=i386"

static int negotiate_supported(struct ks_gdb *g, struct ks_error *err)
{
	static const char q[] = SUPPORTED;
	static const char *const both[] = { SUPPORTED, "QStartNoAckMode" };
	static const bool no_stop[] = { false, false };
	const struct ks_gdb_packet *rep;
	size_t size;
	int r;

	/* The second does not depend on the first's answer. */
	ks_gdb_send_ahead(g, both, no_stop, 2);
	r = ks_gdb_request(g, q, sizeof(q) - 1, &rep, err);
	if (r < 0)
		return r;
	size = ks_gdb_parse_supported(rep->data, rep->len, &g->multiprocess, &g->xml);
	g->packet_size = size < 64 ? KS_GDB_DEFAULT_PACKET_SIZE :
			 size > KS_GDB_MAX_PACKET_SIZE ? KS_GDB_MAX_PACKET_SIZE : size;
	ks_gdb_remark(g, "packet size %zu, %s, %s", g->packet_size,
		      g->multiprocess ? "multiprocess" : "single process",
		      g->xml ? "target description" : "no target description");
	r = ks_gdb_request(g, "QStartNoAckMode", 15, &rep, err);
	if (r < 0)
		return r;
	/* The "+" for this "OK" was the last ack either side sends. */
	if (rep->len == 2 && !memcmp(rep->data, "OK", 2))
		g->acks = false;
	else
		ks_gdb_remark(g, "the stub keeps acks on");
	return 0;
}

/* Appends one qXfer reply ("m..." more to come, "l..." the last) to *xml; 1 when last. */
static int append_xfer(const struct ks_gdb_packet *rep, char **xml, size_t *len)
{
	char *x;

	if (rep->len == 0 || (rep->data[0] != 'm' && rep->data[0] != 'l'))
		return -EPROTO;
	x = realloc(*xml, *len + rep->len);
	if (!x)
		return -ENOMEM;
	memcpy(x + *len, rep->data + 1, rep->len - 1);
	*len += rep->len - 1;
	x[*len] = '\0';
	*xml = x;
	return rep->data[0] == 'l';
}

/* Reads target.xml (QEMU answers p/P only after it) and keeps its architecture. */
static int read_target_xml(struct ks_gdb *g, struct ks_error *err)
{
	char cmd[64], *xml = NULL, *a, *e;
	size_t len = 0;
	int r = 0;

	while (g->xml && r == 0 && len < MAX_XML) {
		const struct ks_gdb_packet *rep;

		snprintf(cmd, sizeof(cmd), "qXfer:features:read:target.xml:%zx,%zx", len,
			 g->packet_size - 5);
		r = ks_gdb_request(g, cmd, strlen(cmd), &rep, err);
		if (r < 0)
			goto out;
		r = append_xfer(rep, &xml, &len);
		if (r < 0) {
			ks_error_set(err, r, "gdb: %s: %s", cmd, r == -EPROTO ?
				     "unexpected reply" : strerror(-r));
			goto out;
		}
	}
	a = xml ? strstr(xml, "<architecture>") : NULL;
	e = a ? strstr(a, "</architecture>") : NULL;
	if (e)
		g->arch = strndup(a + 14, (size_t)(e - a - 14));
	r = 0;
out:
	free(xml);
	return r;
}

static int read_phys_mode(struct ks_gdb *g, struct ks_error *err)
{
	const struct ks_gdb_packet *rep;
	int r = ks_gdb_request(g, "qqemu.PhyMemMode", 16, &rep, err);

	if (r < 0)
		return r;
	g->phys_known = rep->len == 1 && (rep->data[0] == '0' || rep->data[0] == '1');
	g->phys_mode = g->phys_known && rep->data[0] == '1';
	return 0;
}

/*
 * The requests of the steps after the first, as a stub like QEMU's takes them (up to four
 * vCPUs), sent at once: one round trip instead of seven. Sent once the ack mode is settled,
 * so that who acks what does not depend on when the replies come. A stub with more vCPUs
 * costs one wait, then the steps ask it the rest.
 */
static int guess_ahead(struct ks_gdb *g, struct ks_error *err)
{
	char xfer[64];
	const char *cmds[] = { "qfThreadInfo", "qsThreadInfo", "qsThreadInfo", "qsThreadInfo",
			       "?", xfer, "qqemu.PhyMemMode" };
	const bool stop[] = { false, false, false, false, true, false, false };
	size_t n = sizeof(cmds) / sizeof(cmds[0]);

	(void)err;
	snprintf(xfer, sizeof(xfer), "qXfer:features:read:target.xml:0,%zx", g->packet_size - 5);
	if (!g->xml) {
		cmds[5] = cmds[6];
		n--;
	}
	ks_gdb_send_ahead(g, cmds, stop, n);
	return 0;
}

static int ask_stop(struct ks_gdb *g, struct ks_error *err)
{
	return ks_gdb_exchange(g, "?", 1, true, err);
}

static int list_threads(struct ks_gdb *g, struct ks_error *err)
{
	int r = ks_gdb_list_vcpus(g, err);

	return r < 0 ? r : 0;
}

int ks_gdb_negotiate(struct ks_gdb *g, uint64_t start, int64_t timeout_ns,
		     struct ks_error *err)
{
	static int (*const steps[])(struct ks_gdb *, struct ks_error *) = {
		negotiate_supported, guess_ahead, list_threads, ask_stop, read_target_xml,
		read_phys_mode,
	};
	int64_t keep = g->timeout_ns;
	int r = 0;

	for (size_t i = 0; r == 0 && i < sizeof(steps) / sizeof(steps[0]); i++) {
		/* Each step gets what is left of the whole negotiation's time. */
		g->timeout_ns = ks_gdb_remaining(start, timeout_ns);
		r = steps[i](g, err);
	}
	g->timeout_ns = keep;
	return r;
}

/* ---- threads ---- */

int ks_gdb_list_vcpus(struct ks_gdb *g, struct ks_error *err)
{
	struct ks_gdb_tid *list = NULL;
	size_t n = 0;
	int r = 1;

	for (const char *q = "qfThreadInfo"; r == 1 && n < 4096; q = "qsThreadInfo") {
		const struct ks_gdb_packet *rep;
		char show[KS_GDB_SHOW];

		r = ks_gdb_request(g, q, strlen(q), &rep, err);
		if (r < 0)
			goto out;
		r = ks_gdb_parse_thread_list(rep->data, rep->len, &list, &n);
		if (r < 0) {
			ks_error_set(err, r, "gdb: %s: bad thread list: %s", q,
				     ks_gdb_excerpt(rep->data, rep->len, show, sizeof(show)));
			goto out;
		}
	}
	r = n ? (int)n : ks_error_set(err, -EPROTO, "gdb: the stub lists no threads");
	if (r > 0) {
		free(g->threads);
		g->threads = list;
		g->nthreads = n;
		g->selected = -1;
		list = NULL;
	}
out:
	free(list);
	return r;
}

int ks_gdb_select_vcpu(struct ks_gdb *g, unsigned vcpu, struct ks_error *err)
{
	char cmd[64] = "Hg";
	int r;

	if (vcpu >= g->nthreads)
		return ks_error_set(err, -EINVAL, "gdb: no vCPU %u (there are %zu)", vcpu,
				    g->nthreads);
	if (g->selected == (int)vcpu && g->connected)
		return 0;
	ks_gdb_format_tid(&g->threads[vcpu], g->multiprocess, cmd + 2, sizeof(cmd) - 2);
	r = ks_gdb_request_ok(g, cmd, strlen(cmd), err);
	if (r == 0)
		g->selected = (int)vcpu;
	return r;
}

/* ---- execution ---- */

int ks_gdb_continue(struct ks_gdb *g, struct ks_error *err)
{
	int r;

	if (!g->connected)
		return ks_gdb_not_connected(g, "vCont;c", err);
	if (g->state != KS_GDB_STOPPED)
		return ks_error_set(err, g->state == KS_GDB_RUNNING ? -EBUSY : -ESRCH,
				    "gdb: vCont;c: the target %s", g->state == KS_GDB_RUNNING ?
				    "is already running" : "has exited");
	if (g->req_pending)
		return ks_error_set(err, -EBUSY, "gdb: vCont;c: another request is in flight");
	r = ks_gdb_send_packet(g, "vCont;c", 7);
	if (r < 0)
		return ks_error_set(err, r, "gdb: vCont;c: %s", strerror(-r));
	g->state = KS_GDB_RUNNING;
	return 0;
}

int ks_gdb_step(struct ks_gdb *g, unsigned vcpu, struct ks_gdb_stop *stop,
		struct ks_error *err)
{
	char cmd[64] = "vCont;s:";
	int r;

	if (!g->connected)
		return ks_gdb_not_connected(g, "vCont;s", err);
	if (vcpu >= g->nthreads)
		return ks_error_set(err, -EINVAL, "gdb: no vCPU %u (there are %zu)", vcpu,
				    g->nthreads);
	if (g->state != KS_GDB_STOPPED || g->req_pending)
		return ks_error_set(err, -EBUSY, "gdb: vCont;s: the target is not stopped");
	ks_gdb_format_tid(&g->threads[vcpu], g->multiprocess, cmd + 8, sizeof(cmd) - 8);
	r = ks_gdb_send_packet(g, cmd, strlen(cmd));
	if (r < 0)
		return ks_error_set(err, r, "gdb: %s: %s", cmd, strerror(-r));
	g->state = KS_GDB_RUNNING;
	r = ks_gdb_wait_stop(g, stop, g->timeout_ns);
	if (r == -ENOTCONN)
		return ks_gdb_not_connected(g, cmd, err);
	if (r < 0)
		return ks_error_set(err, r, "gdb: %s: %s", cmd, r == -ETIMEDOUT ?
				    "no stop in time" : strerror(-r));
	return 0;
}

int ks_gdb_interrupt(struct ks_gdb *g, struct ks_gdb_stop *stop, struct ks_error *err)
{
	int r;

	if (!g->connected)
		return ks_gdb_not_connected(g, "interrupt", err);
	/*
	 * QEMU answers 0x03 only when the VM runs, and reports every stop (QMP's too), so a
	 * stopped client has nothing to ask.
	 */
	if (g->state == KS_GDB_RUNNING) {
		r = ks_gdb_send_raw(g, "\x03", 1);
		if (r < 0)
			return ks_error_set(err, r, "gdb: interrupt: %s", strerror(-r));
		r = ks_gdb_wait_stop(g, NULL, g->timeout_ns);
		if (r == -ENOTCONN)
			return ks_gdb_not_connected(g, "interrupt", err);
		if (r < 0)
			return ks_error_set(err, r, "gdb: interrupt: %s", r == -ETIMEDOUT ?
					    "no stop in time" : strerror(-r));
	}
	if (stop)
		*stop = g->last_stop;
	return 0;
}

int ks_gdb_set_phys_mode(struct ks_gdb *g, bool on, struct ks_error *err)
{
	int r;

	if (g->phys_mode == on && g->connected)
		return 0;
	if (!g->phys_known && g->connected)
		return ks_error_set(err, -EOPNOTSUPP, "gdb: the stub has no physical memory mode");
	r = ks_gdb_request_ok(g, on ? "Qqemu.PhyMemMode:1" : "Qqemu.PhyMemMode:0", 18, err);
	if (r == 0)
		g->phys_mode = on;
	return r;
}

bool ks_gdb_phys_mode(const struct ks_gdb *g)
{
	return g->phys_mode;
}

/* ---- breakpoints and watchpoints ---- */

static int breakpoint(struct ks_gdb *g, char op, enum ks_gdb_bp_type type, ks_gva_t addr,
		      unsigned kind, struct ks_error *err)
{
	char cmd[64];

	if ((unsigned)type > KS_GDB_WP_ACCESS)
		return ks_error_set(err, -EINVAL, "gdb: breakpoint type %u", (unsigned)type);
	if (kind == 0 && type >= KS_GDB_WP_WRITE)
		return ks_error_set(err, -EINVAL, "gdb: a watchpoint of 0 bytes");
	snprintf(cmd, sizeof(cmd), "%c%u,%" PRIx64 ",%x", op, (unsigned)type, addr,
		 kind ? kind : 1);
	return ks_gdb_request_ok(g, cmd, strlen(cmd), err);
}

int ks_gdb_set_breakpoint(struct ks_gdb *g, enum ks_gdb_bp_type type, ks_gva_t addr,
			  unsigned kind, struct ks_error *err)
{
	return breakpoint(g, 'Z', type, addr, kind, err);
}

int ks_gdb_clear_breakpoint(struct ks_gdb *g, enum ks_gdb_bp_type type, ks_gva_t addr,
			    unsigned kind, struct ks_error *err)
{
	return breakpoint(g, 'z', type, addr, kind, err);
}

/* ---- memory ---- */

/* Reads one chunk of at most ks_gdb_max_read() bytes; returns the bytes read or -errno. */
static int read_chunk(struct ks_gdb *g, uint64_t addr, uint8_t *buf, size_t n,
		      struct ks_error *err)
{
	const struct ks_gdb_packet *rep;
	char cmd[64], show[KS_GDB_SHOW];
	int r;

	snprintf(cmd, sizeof(cmd), "m%" PRIx64 ",%zx", addr, n);
	r = ks_gdb_request(g, cmd, strlen(cmd), &rep, err);
	if (r < 0)
		return r;
	if (ks_gdb_error_reply(rep->data, rep->len) >= 0 || rep->len == 0)
		return ks_error_set(err, -EFAULT, "gdb: cannot read %zu bytes of %s memory at "
				    "0x%" PRIx64 " (%s)", n, g->phys_mode ? "physical" :
				    "virtual", addr, rep->len ? rep->data : "empty reply");
	/* A stub may return fewer bytes than asked for, never more. */
	if (rep->len % 2 || rep->len > 2 * n || ks_gdb_hex_decode(rep->data, rep->len / 2, buf))
		return ks_error_set(err, -EPROTO, "gdb: %s: not %zu bytes of hex: %s", cmd, n,
				    ks_gdb_excerpt(rep->data, rep->len, show, sizeof(show)));
	return (int)(rep->len / 2);
}

static int read_mem(struct ks_gdb *g, uint64_t addr, void *buf, size_t len,
		    struct ks_error *err)
{
	size_t chunk = ks_gdb_max_read(g);

	if (addr + len < addr && addr + len != 0)
		return ks_error_set(err, -EINVAL, "gdb: %zu bytes at 0x%" PRIx64 " wrap around",
				    len, addr);
	for (size_t off = 0; off < len;) {
		size_t n = len - off < chunk ? len - off : chunk;
		int r = read_chunk(g, addr + off, (uint8_t *)buf + off, n, err);

		if (r < 0)
			return r;
		off += (size_t)r;
	}
	return 0;
}

/* The most bytes one "M" request carries: its header, then two hex digits a byte. */
static size_t max_write(const struct ks_gdb *g)
{
	char hdr[64];
	size_t room;

	/* The longest header: a 64-bit address and a length of 8 hex digits. */
	snprintf(hdr, sizeof(hdr), "M%" PRIx64 ",%x:", UINT64_MAX, UINT32_MAX);
	room = g->packet_size - 1 - strlen(hdr);
	return room / 2 ? room / 2 : 1;
}

static int write_mem(struct ks_gdb *g, uint64_t addr, const void *buf, size_t len,
		     struct ks_error *err)
{
	size_t chunk = max_write(g);
	char *cmd = malloc(64 + 2 * chunk);
	int r = 0;

	if (!cmd)
		return ks_error_set(err, -ENOMEM, "gdb: out of memory");
	if (addr + len < addr && addr + len != 0)
		r = ks_error_set(err, -EINVAL, "gdb: %zu bytes at 0x%" PRIx64 " wrap around",
				 len, addr);
	for (size_t off = 0; r == 0 && off < len; off += chunk) {
		size_t n = len - off < chunk ? len - off : chunk;
		int h = snprintf(cmd, 64, "M%" PRIx64 ",%zx:", addr + off, n);

		ks_gdb_hex_encode((const uint8_t *)buf + off, n, cmd + h);
		r = ks_gdb_request_ok(g, cmd, (size_t)h + 2 * n, err);
		if (r == -EIO)
			r = ks_error_set(err, -EFAULT, "gdb: cannot write %zu bytes of %s memory "
					 "at 0x%" PRIx64, n, g->phys_mode ? "physical" : "virtual",
					 addr + off);
	}
	free(cmd);
	return r;
}

int ks_gdb_read_virt(struct ks_gdb *g, unsigned vcpu, ks_gva_t gva, void *buf, size_t len,
		     struct ks_error *err)
{
	int r = ks_gdb_set_phys_mode(g, false, err);

	if (r == 0)
		r = ks_gdb_select_vcpu(g, vcpu, err);
	return r < 0 ? r : read_mem(g, gva, buf, len, err);
}

int ks_gdb_write_virt(struct ks_gdb *g, unsigned vcpu, ks_gva_t gva, const void *buf,
		      size_t len, struct ks_error *err)
{
	int r = ks_gdb_set_phys_mode(g, false, err);

	if (r == 0)
		r = ks_gdb_select_vcpu(g, vcpu, err);
	return r < 0 ? r : write_mem(g, gva, buf, len, err);
}

int ks_gdb_read_phys(struct ks_gdb *g, ks_gpa_t gpa, void *buf, size_t len,
		     struct ks_error *err)
{
	int r = ks_gdb_set_phys_mode(g, true, err);

	return r < 0 ? r : read_mem(g, gpa, buf, len, err);
}

int ks_gdb_write_phys(struct ks_gdb *g, ks_gpa_t gpa, const void *buf, size_t len,
		      struct ks_error *err)
{
	int r = ks_gdb_set_phys_mode(g, true, err);

	return r < 0 ? r : write_mem(g, gpa, buf, len, err);
}
