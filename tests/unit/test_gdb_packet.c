/* test_gdb_packet.c: the gdb client's pure parts: its packet parser on recorded QEMU traffic
 * and malformed input, reply parsing, and x86-64 register decoding. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <kscope/gdb.h>

#include "gdb_internal.h"
#include "gdb_stub.h"

/* Values of the recorded sessions (demo kernel as it was when they were recorded). */
#define KMAIN 0xffffffff8010cca0ull

/* ---- the parser on recorded traffic ---- */

static const char *const transcripts[] = {
	"handshake.txt", "pvh-entry.txt", "memory.txt", "chunked-read.txt", "watchpoint.txt",
	"step.txt", "interrupt.txt", "attach-running.txt",
};

/* What the stub sent, as one byte stream, and the units it is made of. */
struct stream {
	char *bytes;
	size_t len;
	char *units[512];  /* each unit's raw text */
	size_t unit_len[512];
	int n;
};

static void stub_stream(const char *script, struct stream *s)
{
	memset(s, 0, sizeof(*s));
	s->bytes = malloc(strlen(script));
	for (const char *p = script; (p = strstr(p, "gdb <- ")); ) {
		const char *nl = strchr(p, '\n');

		p += 7;
		assert_true(s->n < 512);
		s->units[s->n] = s->bytes + s->len;
		s->unit_len[s->n] = stub_unescape(p, (size_t)(nl - p), s->bytes + s->len);
		s->len += s->unit_len[s->n++];
	}
}

/* Checks unit i of s against what the parser made of it. */
static void check_unit(const struct stream *s, int i, const struct ks_gdb_packet *pkt,
		       size_t used)
{
	const char *u = s->units[i];
	size_t n = s->unit_len[i];

	assert_int_equal(used, n);
	if (u[0] == '+') {
		assert_int_equal(pkt->kind, KS_GDB_PKT_ACK);
		return;
	}
	/* QEMU escapes nothing in these replies: the data is what lies between $ and #. */
	assert_int_equal(pkt->kind, KS_GDB_PKT_DATA);
	assert_int_equal(pkt->len, n - 4);
	assert_memory_equal(pkt->data, u + 1, n - 4);
}

/* Parses s with bytes arriving `step` at a time (0: all at once). */
static void parse_in_steps(const struct stream *s, size_t step)
{
	struct ks_gdb_packet pkt = { 0 };
	size_t have = step ? 0 : s->len, pos = 0;
	int i = 0;

	while (i < s->n) {
		size_t used;
		int r = ks_gdb_parse(s->bytes + pos, have - pos, 8192, &used, &pkt, NULL);

		assert_true(r >= 0);
		if (r == 0) {
			assert_int_equal(used, 0);
			assert_true(have < s->len);
			have = have + step < s->len ? have + step : s->len;
			continue;
		}
		check_unit(s, i++, &pkt, used);
		pos += used;
	}
	assert_int_equal(pos, s->len);
	ks_gdb_packet_clear(&pkt);
}

static void parser_on_recorded_traffic(void **state)
{
	(void)state;
	for (size_t t = 0; t < sizeof(transcripts) / sizeof(transcripts[0]); t++) {
		char *script = stub_slurp(transcripts[t]);
		struct stream s;

		stub_stream(script, &s);
		assert_true(s.n > 10);
		parse_in_steps(&s, 0);    /* every unit joined in one buffer */
		parse_in_steps(&s, 1);    /* one byte at a time */
		parse_in_steps(&s, 7);
		parse_in_steps(&s, 4096);
		free(s.bytes);
		free(script);
	}
}

/* ---- the parser on made-up input ---- */

struct parse_case {
	const char *in;
	size_t max;
	int ret;
	size_t consumed;
	enum ks_gdb_pkt_kind kind;
	const char *data;     /* decoded, for ret 1 */
	const char *message;  /* part of the error message */
};

static const struct parse_case parse_cases[] = {
	{ "+", 100, 1, 1, KS_GDB_PKT_ACK, "", NULL },
	{ "-$OK#9a", 100, 1, 1, KS_GDB_PKT_NACK, "", NULL },
	{ "$OK#9a+", 100, 1, 6, KS_GDB_PKT_DATA, "OK", NULL },
	{ "$#00", 100, 1, 4, KS_GDB_PKT_DATA, "", NULL },
	{ "%Stop:T05thread:p01.02;#e7", 100, 1, 26, KS_GDB_PKT_NOTIFY, "Stop:T05thread:p01.02;",
	  NULL },
	/* Run-length encoding: ' ' is 3 more, '<' 31 more. */
	{ "$0* #7a", 100, 1, 7, KS_GDB_PKT_DATA, "0000", NULL },
	{ "$a0*<b#59", 100, 1, 9, KS_GDB_PKT_DATA, "a00000000000000000000000000000000b", NULL },
	/* Escapes: } then the byte xor 0x20, for # $ } * and anything else. */
	{ "$}\x03}\x04}]}\x0a}P#2f", 100, 1, 14, KS_GDB_PKT_DATA, "#$}*p", NULL },
	{ "$O", 100, 0, 0, 0, NULL, NULL },
	{ "$OK#", 100, 0, 0, 0, NULL, NULL },
	{ "$OK#9", 100, 0, 0, 0, NULL, NULL },
	{ "", 100, 0, 0, 0, NULL, NULL },
	{ "$OK#00", 100, -EBADMSG, 6, KS_GDB_PKT_DATA, NULL, "bad checksum (computed 9a)" },
	{ "%OK#00$OK#9a", 100, -EBADMSG, 6, KS_GDB_PKT_NOTIFY, NULL, "bad checksum" },
	{ "$OK#zz", 100, -EPROTO, 6, 0, NULL, "checksum is not hex" },
	{ "$OK#9", 100, 0, 0, 0, NULL, NULL },
	{ "xyz$OK#9a", 100, -EPROTO, 3, 0, NULL, "garbage between packets: xyz" },
	{ "\x03\r\n+", 100, -EPROTO, 3, 0, NULL, "garbage" },
	{ "$*3#5d", 100, -EPROTO, 6, 0, NULL, "nothing to repeat" },
	{ "$0*\x1f#79", 100, -EPROTO, 7, 0, NULL, "without a count" },
	{ "$0}#ad", 100, -EPROTO, 6, 0, NULL, "ends in an escape" },
	{ "$0123456789#0d", 8, -EMSGSIZE, 14, 0, NULL, "longer than 8 bytes" },
	{ "$0123456789", 8, -EMSGSIZE, 11, 0, NULL, "longer than 8 bytes" },
	{ "$0*~#d8", 64, -EMSGSIZE, 7, 0, NULL, "once run-length decoded" },
};

static void parser_cases(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(parse_cases) / sizeof(parse_cases[0]); i++) {
		const struct parse_case *c = &parse_cases[i];
		struct ks_gdb_packet pkt = { 0 };
		struct ks_error err = { 0 };
		size_t used = 99;
		int r = ks_gdb_parse(c->in, strlen(c->in), c->max, &used, &pkt, &err);

		if (r != c->ret || used != c->consumed)
			fail_msg("case %zu (%s): got %d, %zu consumed (%s)", i, c->in, r, used,
				 err.msg);
		if (r == 1 || r == -EBADMSG)
			assert_int_equal(pkt.kind, c->kind);
		if (r == 1)
			assert_int_equal(pkt.len, strlen(c->data));
		if (r == 1 && pkt.len)
			assert_string_equal(pkt.data, c->data);
		if (c->message && !strstr(err.msg, c->message))
			fail_msg("case %zu: message '%s' lacks '%s'", i, err.msg, c->message);
		ks_gdb_packet_clear(&pkt);
	}
}

/* Random bytes, heavy in the protocol's special characters: errors, never a crash. */
static void parser_survives_noise(void **state)
{
	static const char alphabet[] = "$#}*%+-0123456789abcdefOKT:;\x03\x00\xff";
	struct ks_gdb_packet pkt = { 0 };
	char buf[64];
	unsigned seed = 12345;

	(void)state;
	for (int round = 0; round < 20000; round++) {
		size_t len = (size_t)(rand_r(&seed) % (int)sizeof(buf)), pos = 0;

		for (size_t i = 0; i < len; i++)
			buf[i] = alphabet[rand_r(&seed) % (int)(sizeof(alphabet) - 1)];
		while (pos < len) {
			size_t used;
			int r = ks_gdb_parse(buf + pos, len - pos, 32, &used, &pkt, NULL);

			assert_true(used <= len - pos);
			if (r == 0)
				break;
			assert_true(used > 0);
			assert_true(r == 1 || r == -EBADMSG || r == -EPROTO || r == -EMSGSIZE);
			if (r == 1)
				assert_true(pkt.len <= 32);
			pos += used;
		}
	}
	ks_gdb_packet_clear(&pkt);
}

static void frame_escapes(void **state)
{
	char out[64];
	size_t n;
	struct ks_gdb_packet pkt = { 0 };
	size_t used;

	(void)state;
	n = ks_gdb_frame("OK", 2, out, sizeof(out));
	assert_int_equal(n, 6);
	assert_memory_equal(out, "$OK#9a", 6);
	/* Too small a buffer: nothing written past it, the size needed returned. */
	assert_int_equal(ks_gdb_frame("OK", 2, out, 2), 6);
	n = ks_gdb_frame("a#b$c}d*\x00", 9, out, sizeof(out));
	assert_int_equal(n, 9 + 4 + 4);
	assert_memory_equal(out, "$a}\x03" "b}\x04" "c}]d}\x0a\x00#", 15);
	assert_int_equal(ks_gdb_parse(out, n, 100, &used, &pkt, NULL), 1);
	assert_int_equal(used, n);
	assert_int_equal(pkt.len, 9);
	assert_memory_equal(pkt.data, "a#b$c}d*\x00", 9);
	ks_gdb_packet_clear(&pkt);
}

/* ---- replies ---- */

struct stop_case {
	const char *in;
	int ret;
	enum ks_gdb_stop_kind kind;
	int code;
	int64_t pid, tid;
	enum ks_gdb_watch watch;
	uint64_t watch_addr;
};

static const struct stop_case stop_cases[] = {
	{ "T05thread:p01.01;", 0, KS_GDB_STOP_SIGNAL, 5, 1, 1, KS_GDB_WATCH_NONE, 0 },
	{ "T02thread:p01.02;", 0, KS_GDB_STOP_SIGNAL, 2, 1, 2, KS_GDB_WATCH_NONE, 0 },
	{ "T05thread:p01.01;watch:ffffffff801231d0;", 0, KS_GDB_STOP_SIGNAL, 5, 1, 1,
	  KS_GDB_WATCH_WRITE, 0xffffffff801231d0ull },
	{ "T05thread:p1.2;rwatch:10;", 0, KS_GDB_STOP_SIGNAL, 5, 1, 2, KS_GDB_WATCH_READ, 0x10 },
	{ "T05awatch:1000;thread:3", 0, KS_GDB_STOP_SIGNAL, 5, 0, 3, KS_GDB_WATCH_ACCESS,
	  0x1000 },
	{ "T05thread:p01.01;core:0;06:0000000000000000;", 0, KS_GDB_STOP_SIGNAL, 5, 1, 1,
	  KS_GDB_WATCH_NONE, 0 },
	{ "S05", 0, KS_GDB_STOP_SIGNAL, 5, 0, 0, KS_GDB_WATCH_NONE, 0 },
	{ "W00", 0, KS_GDB_STOP_EXITED, 0, 0, 0, KS_GDB_WATCH_NONE, 0 },
	{ "W01;process:1", 0, KS_GDB_STOP_EXITED, 1, 0, 0, KS_GDB_WATCH_NONE, 0 },
	{ "X09", 0, KS_GDB_STOP_TERMINATED, 9, 0, 0, KS_GDB_WATCH_NONE, 0 },
	{ "T0", -EPROTO, 0, 0, 0, 0, 0, 0 },
	{ "Tzz", -EPROTO, 0, 0, 0, 0, 0, 0 },
	{ "T05thread", -EPROTO, 0, 0, 0, 0, 0, 0 },
	{ "T05thread:pzz;", -EPROTO, 0, 0, 0, 0, 0, 0 },
	{ "T05thread:p1.2x;", -EPROTO, 0, 0, 0, 0, 0, 0 },
	{ "T05watch:xyz;", -EPROTO, 0, 0, 0, 0, 0, 0 },
	{ "T05watch:11112222333344445;", -EPROTO, 0, 0, 0, 0, 0, 0 },
	{ "S05x", -EPROTO, 0, 0, 0, 0, 0, 0 },
	{ "OK", -EPROTO, 0, 0, 0, 0, 0, 0 },
	{ "E14", -EPROTO, 0, 0, 0, 0, 0, 0 },
	{ "", -EPROTO, 0, 0, 0, 0, 0, 0 },
};

static void stop_replies(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(stop_cases) / sizeof(stop_cases[0]); i++) {
		const struct stop_case *c = &stop_cases[i];
		char *copy = strdup(c->in);
		struct ks_gdb_stop st;
		struct ks_gdb_tid tid;
		int r = ks_gdb_parse_stop(copy, strlen(copy), &st, &tid);

		if (r != c->ret)
			fail_msg("case %zu (%s): got %d", i, c->in, r);
		if (r == 0) {
			assert_int_equal(st.kind, c->kind);
			assert_int_equal(st.code, c->code);
			assert_int_equal(st.vcpu, -1);
			assert_int_equal(tid.pid, c->pid);
			assert_int_equal(tid.tid, c->tid);
			assert_int_equal(st.watch, c->watch);
			assert_int_equal(st.watch_addr, c->watch_addr);
		}
		free(copy);
	}
}

static void console_output(void **state)
{
	char out[] = "O48690a", bad[] = "O4869z0";
	struct ks_gdb_stop st;
	struct ks_gdb_tid tid;

	(void)state;
	assert_true(ks_gdb_is_stop(out, strlen(out)));
	assert_int_equal(ks_gdb_parse_stop(out, strlen(out), &st, &tid), 0);
	assert_int_equal(st.kind, KS_GDB_STOP_OUTPUT);
	assert_string_equal(st.output, "Hi\n");
	assert_false(ks_gdb_is_stop(bad, strlen(bad)));
	assert_false(ks_gdb_is_stop("O123", 4));
	assert_false(ks_gdb_is_stop("OK", 2));
	assert_false(ks_gdb_is_stop("0123", 4));
}

static void thread_ids(void **state)
{
	struct ks_gdb_tid *list = NULL, t;
	size_t n = 0;
	const char *s = "p01.02", *e;
	char buf[32];

	(void)state;
	assert_int_equal(ks_gdb_parse_thread_list("mp01.01", 7, &list, &n), 1);
	assert_int_equal(ks_gdb_parse_thread_list("mp01.02,p01.03", 14, &list, &n), 1);
	assert_int_equal(ks_gdb_parse_thread_list("l", 1, &list, &n), 0);
	assert_int_equal(n, 3);
	assert_int_equal(list[2].pid, 1);
	assert_int_equal(list[2].tid, 3);
	assert_int_equal(ks_gdb_parse_thread_list("m", 1, &list, &n), -EPROTO);
	assert_int_equal(ks_gdb_parse_thread_list("mp01.01,", 8, &list, &n), -EPROTO);
	assert_int_equal(ks_gdb_parse_thread_list("x", 1, &list, &n), -EPROTO);
	free(list);
	e = s + strlen(s);
	assert_int_equal(ks_gdb_parse_tid(&s, e, &t), 0);
	assert_ptr_equal(s, e);
	assert_string_equal(ks_gdb_format_tid(&t, true, buf, sizeof(buf)), "p1.2");
	assert_string_equal(ks_gdb_format_tid(&t, false, buf, sizeof(buf)), "2");
	s = "p1.-1";
	assert_int_equal(ks_gdb_parse_tid(&s, s + 5, &t), 0);
	assert_int_equal(t.tid, -1);
	assert_string_equal(ks_gdb_format_tid(&t, true, buf, sizeof(buf)), "p1.-1");
	s = "p7";
	assert_int_equal(ks_gdb_parse_tid(&s, s + 2, &t), 0);
	assert_int_equal(t.pid, 7);
	assert_int_equal(t.tid, -1);
	s = "zz";
	assert_int_equal(ks_gdb_parse_tid(&s, s + 2, &t), -EPROTO);
}

static void supported_and_small_replies(void **state)
{
	static const char qemu[] = "PacketSize=1000;qXfer:features:read+;vContSupported+;"
				   "multiprocess+";
	bool mp = false, xml = false;
	uint8_t b[4];
	char hex[9] = { 0 };

	(void)state;
	assert_int_equal(ks_gdb_parse_supported(qemu, strlen(qemu), &mp, &xml), 4096);
	assert_true(mp && xml);
	mp = xml = false;
	assert_int_equal(ks_gdb_parse_supported("PacketSize=zz;swbreak+", 22, &mp, &xml), 0);
	assert_int_equal(ks_gdb_parse_supported("", 0, &mp, &xml), 0);
	assert_false(mp || xml);
	assert_int_equal(ks_gdb_hex_decode("00ff7F80", 4, b), 0);
	assert_int_equal(b[1], 0xff);
	assert_int_equal(b[2], 0x7f);
	assert_int_equal(ks_gdb_hex_decode("0g", 1, b), -EPROTO);
	ks_gdb_hex_encode(b, 4, hex);
	assert_string_equal(hex, "00ff7f80");
	assert_int_equal(ks_gdb_error_reply("E14", 3), 0x14);
	assert_int_equal(ks_gdb_error_reply("OK", 2), -1);
	assert_int_equal(ks_gdb_error_reply("E1", 2), -1);
	assert_int_equal(ks_gdb_error_reply("Exx", 3), -1);
}

/* ---- x86-64 registers ---- */

static void decode_recorded(const char *file, const char *request, int n,
			    struct ks_x86_regs *r, uint8_t *raw)
{
	char *script = stub_slurp(file), *hex = stub_recorded_reply(script, request, n);

	assert_int_equal(strlen(hex), 2 * KS_X86_REGS_SIZE);
	assert_int_equal(ks_gdb_hex_decode(hex, KS_X86_REGS_SIZE, raw), 0);
	assert_int_equal(ks_x86_regs_decode(raw, KS_X86_REGS_SIZE, r), 0);
	free(hex);
	free(script);
}

static void registers_of_recorded_replies(void **state)
{
	uint8_t raw[KS_X86_REGS_SIZE], again[KS_X86_REGS_SIZE];
	struct ks_x86_regs r;

	(void)state;
	/* At kmain, in long mode. */
	decode_recorded("memory.txt", "$g#67", 0, &r, raw);
	assert_int_equal(r.rip, KMAIN);
	assert_int_equal(r.rsi, KMAIN);
	assert_int_equal(r.rsp, 0xffffc00000026ff8ull);
	assert_int_equal(r.r15, 0xffffffff8011c67full);
	assert_int_equal(r.rflags, 0x246);
	assert_int_equal(r.cs, 0x8);
	assert_int_equal(r.ss, 0x10);
	assert_int_equal(r.gs_base, 0xffffffff80128060ull);
	assert_int_equal(r.cr0, 0x80010011);
	assert_int_equal(r.cr3, 0x102000);
	assert_int_equal(r.cr4, 0x20);
	assert_int_equal(r.efer, 0xd01);
	assert_int_equal(r.fctrl, 0x37f);
	assert_int_equal(r.mxcsr, 0x1f80);
	assert_string_equal(ks_x86_mode(&r), "long");
	ks_x86_regs_encode(&r, again);
	assert_memory_equal(raw, again, sizeof(raw));
	/* At the PVH entry, in 32-bit mode: 64-bit fields stay 64-bit wide. */
	decode_recorded("pvh-entry.txt", "$g#67", 0, &r, raw);
	assert_int_equal(r.rip, 0x100000);
	assert_int_equal(r.rax, 0x2badb002);
	assert_int_equal(r.cr0, 0x11);
	assert_int_equal(r.efer, 0);
	assert_string_equal(ks_x86_mode(&r), "protected");
	/* At the reset vector. */
	decode_recorded("handshake.txt", "$g#67", 1, &r, raw);
	assert_int_equal(r.rip, 0xfff0);
	assert_int_equal(r.cs, 0xf000);
	assert_int_equal(r.rdx, 0x60fb1);
	assert_int_equal(r.cr0, 0x60000010);
	assert_string_equal(ks_x86_mode(&r), "real");
	assert_int_equal(ks_x86_regs_decode(raw, KS_X86_REGS_SIZE - 1, &r), -EPROTO);
}

static void register_numbers(void **state)
{
	unsigned total = 0;

	(void)state;
	for (unsigned i = 0; i < KS_X86_NREGS; i++) {
		assert_non_null(ks_x86_reg_name(i));
		assert_int_equal(ks_x86_reg_by_name(ks_x86_reg_name(i)), (int)i);
		total += ks_x86_reg_size(i);
	}
	assert_int_equal(total, KS_X86_REGS_SIZE);
	assert_int_equal(KS_X86_NREGS, 66);
	assert_string_equal(ks_x86_reg_name(KS_X86_RIP), "rip");
	assert_string_equal(ks_x86_reg_name(KS_X86_EFER), "efer");
	assert_string_equal(ks_x86_reg_name(KS_X86_ST0 + 7), "st7");
	assert_string_equal(ks_x86_reg_name(KS_X86_XMM0 + 15), "xmm15");
	assert_string_equal(ks_x86_reg_name(KS_X86_MXCSR), "mxcsr");
	assert_int_equal(KS_X86_RIP, 16);
	assert_int_equal(KS_X86_CR0, 27);
	assert_int_equal(KS_X86_FCTRL, 41);
	assert_int_equal(ks_x86_reg_size(KS_X86_EFLAGS), 4);
	assert_int_equal(ks_x86_reg_size(KS_X86_ST0), 10);
	assert_int_equal(ks_x86_reg_size(KS_X86_XMM0), 16);
	assert_null(ks_x86_reg_name(KS_X86_NREGS));
	assert_int_equal(ks_x86_reg_size(KS_X86_NREGS), 0);
	assert_int_equal(ks_x86_reg_by_name("eax"), -ENOENT);
}

static void flags_and_text(void **state)
{
	uint8_t raw[KS_X86_REGS_SIZE];
	struct ks_x86_regs r;
	char buf[2048], small[8];
	int n;

	(void)state;
	ks_x86_flags_format(KS_X86_FLAGS_CR0, 0x80010011, buf, sizeof(buf));
	assert_string_equal(buf, "PG WP ET PE");
	ks_x86_flags_format(KS_X86_FLAGS_EFER, 0xd01, buf, sizeof(buf));
	assert_string_equal(buf, "NXE LMA LME SCE");
	ks_x86_flags_format(KS_X86_FLAGS_CR4, 0x20, buf, sizeof(buf));
	assert_string_equal(buf, "PAE");
	ks_x86_flags_format(KS_X86_FLAGS_RFLAGS, 0x3246, buf, sizeof(buf));
	assert_string_equal(buf, "IOPL=3 IF ZF PF");
	ks_x86_flags_format(KS_X86_FLAGS_RFLAGS, 0x2, buf, sizeof(buf));
	assert_string_equal(buf, "");
	n = ks_x86_flags_format(KS_X86_FLAGS_CR0, 0x80010011, small, sizeof(small));
	assert_int_equal(n, 11);
	assert_string_equal(small, "PG WP E");
	decode_recorded("memory.txt", "$g#67", 0, &r, raw);
	n = ks_x86_regs_format(&r, buf, sizeof(buf));
	assert_int_equal(n, (int)strlen(buf));
	assert_non_null(strstr(buf, "rax ffffc00000027000  rbx ffffffff8011d33d"));
	assert_non_null(strstr(buf, "rip ffffffff8010cca0  rflags 00000246 [ IF ZF PF ]\n"));
	assert_non_null(strstr(buf, "cr0 0000000080010011 [ PG WP ET PE ]\n"));
	assert_non_null(strstr(buf, "efer 0000000000000d01 [ NXE LMA LME SCE ]\n"));
	assert_non_null(strstr(buf, "gs_base ffffffff80128060"));
	assert_non_null(strstr(buf, "mode long\n"));
	/* Cut short, it says how much it needed. */
	assert_int_equal(ks_x86_regs_format(&r, small, sizeof(small)), n);
	assert_int_equal(strlen(small), sizeof(small) - 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(parser_on_recorded_traffic),
		cmocka_unit_test(parser_cases),
		cmocka_unit_test(parser_survives_noise),
		cmocka_unit_test(frame_escapes),
		cmocka_unit_test(stop_replies),
		cmocka_unit_test(console_output),
		cmocka_unit_test(thread_ids),
		cmocka_unit_test(supported_and_small_replies),
		cmocka_unit_test(registers_of_recorded_replies),
		cmocka_unit_test(register_numbers),
		cmocka_unit_test(flags_and_text),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
