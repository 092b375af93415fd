/* test_gdb.c: the gdb client against a fake stub: recorded QEMU sessions replayed, acks,
 * chunking, timeouts, stops, broken and hung-up peers. */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cmocka.h>

#include <kscope/gdb.h>

#include "gdb_internal.h"
#include "gdb_stub.h"

#define MS 1000000ll
#define TIMEOUT (5000 * MS)

/* Values of the recorded sessions (demo kernel as it was when they were recorded). */
#define KMAIN 0xffffffff8010cca0ull
#define KT_RUN 0xffffffff8011afa0ull
#define KT_STATE 0xffffffff801231c0ull
#define KERNEL_VA_BASE 0xffffffff80000000ull

/* ---- the client replaying recorded sessions ---- */

/* Runs call, which may pass `err` (a fresh error record); fails the test with its message. */
#define OK(call) do { struct ks_error e_ = { 0 }; struct ks_error *err = &e_; \
	if ((call) < 0) fail_msg("%s:%d: %s", __FILE__, __LINE__, e_.msg); } while (0)

static struct ks_gdb *attach(struct stub *s, const char *script, enum stub_mode mode)
{
	struct ks_error err = { 0 };
	struct ks_gdb *g = ks_gdb_attach(NULL, stub_start(s, script, mode), TIMEOUT, &err);

	if (!g)
		fail_msg("attach: %s", err.msg);
	return g;
}

/* Frees g (it detaches) and checks that the client followed the script. */
static void finish(struct stub *s, struct ks_gdb *g, char *script)
{
	ks_gdb_free(g);
	stub_join(s);
	free(script);
}

static void run_to(struct ks_gdb *g, enum ks_gdb_bp_type type, uint64_t addr)
{
	struct ks_gdb_stop st;

	OK(ks_gdb_set_breakpoint(g, type, addr, 1, err));
	OK(ks_gdb_continue(g, err));
	assert_int_equal(ks_gdb_wait_stop(g, &st, TIMEOUT), 0);
	OK(ks_gdb_clear_breakpoint(g, type, addr, 1, err));
	assert_int_equal(st.code, KS_GDB_SIGTRAP);
	assert_int_equal(st.vcpu, 0);
}

static void replay_handshake(enum stub_mode mode)
{
	char *script = stub_slurp("handshake.txt");
	struct stub s;
	struct ks_gdb *g = attach(&s, script, mode);
	struct ks_x86_regs r;

	assert_int_equal(ks_gdb_vcpu_count(g), 2);
	assert_string_equal(ks_gdb_arch(g), "i386:x86-64");
	assert_int_equal(ks_gdb_packet_size(g), 4096);
	assert_int_equal(ks_gdb_max_read(g), 2048);
	assert_true(ks_gdb_acks(g));
	assert_false(ks_gdb_phys_mode(g));
	assert_int_equal(ks_gdb_state(g), KS_GDB_STOPPED);
	assert_int_equal(ks_gdb_last_stop(g)->code, KS_GDB_SIGTRAP);
	assert_int_equal(ks_gdb_last_stop(g)->vcpu, 0);
	OK(ks_gdb_read_regs(g, 0, &r, err));
	assert_int_equal(r.rip, 0xfff0);
	OK(ks_gdb_read_regs(g, 1, &r, err));
	assert_int_equal(r.cs, 0xf000);
	finish(&s, g, script);
}

static void handshake_whole(void **state) { (void)state; replay_handshake(STUB_WHOLE); }
static void handshake_bytes(void **state) { (void)state; replay_handshake(STUB_BYTES); }
static void handshake_joined(void **state) { (void)state; replay_handshake(STUB_JOINED); }

static void replay_pvh_entry(void **state)
{
	char *script = stub_slurp("pvh-entry.txt");
	struct stub s;
	struct ks_gdb *g = attach(&s, script, STUB_WHOLE);
	struct ks_x86_regs r;
	uint64_t rip;

	(void)state;
	run_to(g, KS_GDB_BP_HW, 0x100000);
	OK(ks_gdb_read_regs(g, 0, &r, err));
	assert_string_equal(ks_x86_mode(&r), "protected");
	OK(ks_gdb_read_reg_u64(g, 0, KS_X86_RIP, &rip, err));
	assert_int_equal(rip, 0x100000);
	OK(ks_gdb_read_regs(g, 1, &r, err));
	assert_int_equal(r.rip, 0xfff0);
	finish(&s, g, script);
}

static void replay_memory(void **state)
{
	char *script = stub_slurp("memory.txt");
	struct stub s;
	struct ks_gdb *g = attach(&s, script, STUB_JOINED);
	struct ks_error e = { 0 };
	struct ks_x86_regs r;
	char b[8];

	(void)state;
	run_to(g, KS_GDB_BP_HW, KMAIN);
	OK(ks_gdb_read_regs(g, 0, &r, err));
	OK(ks_gdb_read_virt(g, 0, KT_STATE, b, 8, err));
	assert_memory_equal(b, "KSCOPEKT", 8);
	OK(ks_gdb_read_phys(g, KT_STATE - KERNEL_VA_BASE, b, 8, err));
	assert_true(ks_gdb_phys_mode(g));
	assert_memory_equal(b, "KSCOPEKT", 8);
	OK(ks_gdb_write_virt(g, 0, KT_STATE, "kscopekt", 8, err));
	OK(ks_gdb_read_phys(g, KT_STATE - KERNEL_VA_BASE, b, 8, err));
	assert_memory_equal(b, "kscopekt", 8);
	OK(ks_gdb_write_phys(g, KT_STATE - KERNEL_VA_BASE, "KSCOPEKT", 8, err));
	OK(ks_gdb_read_virt(g, 0, KT_STATE, b, 8, err));
	assert_int_equal(ks_gdb_read_virt(g, 0, 0xdead0000, b, 8, &e), -EFAULT);
	assert_non_null(strstr(e.msg, "cannot read 8 bytes of virtual memory at 0xdead0000"));
	finish(&s, g, script);
}

static void replay_chunked_read(void **state)
{
	char *script = stub_slurp("chunked-read.txt");
	struct stub s;
	struct ks_gdb *g = attach(&s, script, STUB_WHOLE);
	size_t len = 3 * 2048 + 123;
	uint8_t *phys = malloc(len), *virt = malloc(len);

	(void)state;
	run_to(g, KS_GDB_BP_HW, KMAIN);
	OK(ks_gdb_read_phys(g, (KMAIN & ~0xfffull) - KERNEL_VA_BASE, phys, len, err));
	OK(ks_gdb_read_virt(g, 0, KMAIN & ~0xfffull, virt, len, err));
	assert_memory_equal(phys, virt, len);
	assert_memory_equal(phys, "\x00\x39\xd0\x72", 4);
	finish(&s, g, script);
	free(phys);
	free(virt);
}

static void replay_watchpoint(void **state)
{
	char *script = stub_slurp("watchpoint.txt");
	struct stub s;
	struct ks_gdb *g = attach(&s, script, STUB_BYTES);
	struct ks_gdb_stop st;

	(void)state;
	run_to(g, KS_GDB_BP_SW, KT_RUN);
	OK(ks_gdb_set_breakpoint(g, KS_GDB_WP_WRITE, KT_STATE + 16, 8, err));
	OK(ks_gdb_continue(g, err));
	assert_int_equal(ks_gdb_wait_stop(g, &st, TIMEOUT), 0);
	OK(ks_gdb_clear_breakpoint(g, KS_GDB_WP_WRITE, KT_STATE + 16, 8, err));
	assert_int_equal(st.watch, KS_GDB_WATCH_WRITE);
	assert_int_equal(st.watch_addr, KT_STATE + 16);
	assert_int_equal(st.vcpu, 0);
	finish(&s, g, script);
}

static void replay_step(void **state)
{
	char *script = stub_slurp("step.txt");
	struct stub s;
	struct ks_gdb *g = attach(&s, script, STUB_WHOLE);
	struct ks_gdb_stop st;
	struct ks_x86_regs r;
	uint64_t rax;

	(void)state;
	run_to(g, KS_GDB_BP_HW, KMAIN);
	OK(ks_gdb_step(g, 0, &st, err));
	assert_int_equal(st.vcpu, 0);
	OK(ks_gdb_read_regs(g, 0, &r, err));
	assert_true(r.rip > KMAIN && r.rip < KMAIN + 16);
	OK(ks_gdb_write_reg_u64(g, 0, KS_X86_RAX, 0x1122334455667788ull, err));
	OK(ks_gdb_read_reg_u64(g, 0, KS_X86_RAX, &rax, err));
	assert_int_equal(rax, 0x1122334455667788ull);
	r.r12 = 0xfeedfacecafebeefull;
	OK(ks_gdb_write_regs(g, 0, &r, err));
	OK(ks_gdb_read_regs(g, 0, &r, err));
	assert_int_equal(r.r12, 0xfeedfacecafebeefull);
	finish(&s, g, script);
}

static void replay_interrupt(void **state)
{
	char *script = stub_slurp("interrupt.txt");
	struct stub s;
	struct ks_gdb *g = attach(&s, script, STUB_WHOLE);
	struct ks_error e = { 0 };
	struct ks_gdb_stop st;
	uint32_t phase = 0;

	(void)state;
	OK(ks_gdb_continue(g, err));
	assert_int_equal(ks_gdb_wait_stop(g, NULL, 20 * MS), -ETIMEDOUT);
	/* Nothing may be sent to a running VM but the interrupt. */
	assert_int_equal(ks_gdb_read_regs(g, 0, &(struct ks_x86_regs){ 0 }, &e), -EBUSY);
	assert_int_equal(ks_gdb_continue(g, &e), -EBUSY);
	assert_int_equal(ks_gdb_step(g, 0, NULL, &e), -EBUSY);
	OK(ks_gdb_interrupt(g, &st, err));
	assert_int_equal(st.code, KS_GDB_SIGINT);
	assert_int_equal(st.vcpu, 0);
	OK(ks_gdb_read_virt(g, 0, KT_STATE + 0x28, &phase, 4, err));
	assert_int_equal(phase, 2);
	/* Already stopped: answered without a word to the stub. */
	OK(ks_gdb_interrupt(g, &st, err));
	assert_int_equal(st.code, KS_GDB_SIGINT);
	finish(&s, g, script);
}

/* A running VM: QEMU's stop for the connection comes before the answer to qSupported. */
static void replay_attach_running(void **state)
{
	char *script = stub_slurp("attach-running.txt");
	struct stub s;
	struct ks_gdb *g = attach(&s, script, STUB_WHOLE);
	struct ks_x86_regs r;

	(void)state;
	assert_int_equal(ks_gdb_state(g), KS_GDB_STOPPED);
	assert_int_equal(ks_gdb_last_stop(g)->vcpu, 0);
	OK(ks_gdb_read_regs(g, 0, &r, err));
	finish(&s, g, script);
}

/* ---- the client against made-up stubs ---- */

#define QSUPPORTED "=> qSupported:multiprocess+;swbreak+;hwbreak+;vContSupported+;" \
	"xmlRegisters=i386\n"

/* The steps after the ack mode, sent at once (no target description): their requests. */
#define GUESS "=> qfThreadInfo\n=> qsThreadInfo\n=> qsThreadInfo\n=> qsThreadInfo\n=> ?\n" \
	"=> qqemu.PhyMemMode\n"

/* A negotiation like QEMU's (acks stay on), two vCPUs in one thread list, no target
 * description: the two extra qsThreadInfo sent ahead get "l", dropped. */
#define HELLO_ACKS \
	QSUPPORTED "=> QStartNoAckMode\n" \
	"<- +\n<= PacketSize=1000;multiprocess+\n-> +\n<- +\n<= \n-> +\n" GUESS \
	"<- +\n<= mp01.01,p01.02\n-> +\n<- +\n<= l\n-> +\n<- +\n<= l\n-> +\n" \
	"<- +\n<= l\n-> +\n<- +\n<= T05thread:p01.01;\n-> +\n<- +\n<= 0\n-> +\n"

/* A stub that accepts no-ack mode, with PacketSize size (hex). */
#define HELLO(size) \
	QSUPPORTED "=> QStartNoAckMode\n" \
	"<- +\n<= PacketSize=" size ";multiprocess+\n-> +\n<- +\n<= OK\n-> +\n" GUESS \
	"<= mp01.01,p01.02\n<= l\n<= l\n<= l\n<= T05thread:p01.01;\n<= 0\n"

/* Appends printf-style text to a script being built. */
__attribute__((format(printf, 2, 3)))
static void add(char **script, const char *fmt, ...)
{
	size_t have = *script ? strlen(*script) : 0;
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	*script = realloc(*script, have + (size_t)n + 1);
	va_start(ap, fmt);
	vsnprintf(*script + have, (size_t)n + 1, fmt, ap);
	va_end(ap);
}

static void add_hex(char **script, uint64_t from, size_t n)
{
	for (size_t i = 0; i < n; i++)
		add(script, "%02x", (unsigned)((from + i) & 0xff));
}

/* A small PacketSize (256): reads in chunks of 128 bytes, writes in chunks of 114. */
static void chunks_follow_the_packet_size(void **state)
{
	char *script = NULL;
	uint8_t buf[300];
	struct stub s;
	struct ks_gdb *g;

	(void)state;
	add(&script, "%s=> Qqemu.PhyMemMode:1\n<= OK\n", HELLO("100"));
	for (size_t off = 0; off < 300; off += 128) {
		size_t n = 300 - off < 128 ? 300 - off : 128;

		add(&script, "=> m%zx,%zx\n<= ", 0x1000 + off, n);
		add_hex(&script, off, n);
		add(&script, "\n");
	}
	add(&script, "=> Qqemu.PhyMemMode:0\n<= OK\n=> Hgp1.2\n<= OK\n");
	for (size_t off = 0; off < 300; off += 114) {
		size_t n = 300 - off < 114 ? 300 - off : 114;

		add(&script, "=> M%zx,%zx:", 0x2000 + off, n);
		add_hex(&script, off, n);
		add(&script, "\n<= OK\n");
	}
	g = attach(&s, script, STUB_WHOLE);
	assert_false(ks_gdb_acks(g));
	assert_int_equal(ks_gdb_packet_size(g), 256);
	assert_int_equal(ks_gdb_max_read(g), 128);
	OK(ks_gdb_read_phys(g, 0x1000, buf, sizeof(buf), err));
	for (size_t i = 0; i < sizeof(buf); i++)
		assert_int_equal(buf[i], i & 0xff);
	OK(ks_gdb_write_virt(g, 1, 0x2000, buf, sizeof(buf), err));
	finish(&s, g, script);
}

/* More vCPUs than the negotiation guessed: the replies sent ahead after the last thread
 * query are dropped, and the rest is asked one request at a time. */
static void more_vcpus_than_guessed(void **state)
{
	static const char script[] =
		QSUPPORTED "=> QStartNoAckMode\n"
		"<- +\n<= PacketSize=1000;multiprocess+\n-> +\n<- +\n<= OK\n-> +\n" GUESS
		"<= mp01.01\n<= mp01.02\n<= mp01.03\n<= mp01.04\n<= T05thread:p01.01;\n<= 0\n"
		"=> qsThreadInfo\n<= mp01.05\n=> qsThreadInfo\n<= mp01.06\n=> qsThreadInfo\n<= l\n"
		"=> ?\n<= T05thread:p01.03;\n=> qqemu.PhyMemMode\n<= 1\n=> Hgp1.6\n<= OK\n";
	struct stub s;
	struct ks_gdb *g = attach(&s, script, STUB_JOINED);

	(void)state;
	assert_int_equal(ks_gdb_vcpu_count(g), 6);
	/* The answers of the second "?" and mode count, not the dropped ones. */
	assert_int_equal(ks_gdb_last_stop(g)->vcpu, 2);
	assert_true(ks_gdb_phys_mode(g));
	OK(ks_gdb_select_vcpu(g, 5, err));
	finish(&s, g, NULL);
}

/* A reply that comes too late is dropped, not taken for the next request's. */
static void a_late_reply_is_dropped(void **state)
{
	char *script = NULL;
	struct ks_error e = { 0 };
	struct ks_x86_regs r;
	struct stub s;
	struct ks_gdb *g;

	(void)state;
	add(&script, "%s=> Hgp1.1\n!sleep 150\n<= OK\n=> Hgp1.1\n<= OK\n=> g\n<= ", HELLO("1000"));
	add_hex(&script, 0x10, KS_X86_REGS_SIZE);
	add(&script, "\n");
	g = attach(&s, script, STUB_WHOLE);
	ks_gdb_set_timeout(g, 30 * MS);
	assert_int_equal(ks_gdb_read_regs(g, 0, &r, &e), -ETIMEDOUT);
	assert_non_null(strstr(e.msg, "Hgp1.1: no reply in time"));
	assert_true(ks_gdb_connected(g));
	ks_gdb_set_timeout(g, TIMEOUT);
	OK(ks_gdb_read_regs(g, 0, &r, err));
	assert_int_equal(r.rax, 0x1716151413121110ull);
	finish(&s, g, script);
}

static void the_stub_hangs_up_mid_reply(void **state)
{
	static const char script[] = HELLO("1000") "=> Hgp1.1\n<- $OK#9\n!sleep 20\n!close\n";
	struct ks_error e = { 0 };
	struct ks_x86_regs r;
	struct stub s;
	struct ks_gdb *g;

	(void)state;
	g = attach(&s, script, STUB_WHOLE);
	assert_int_equal(ks_gdb_read_regs(g, 0, &r, &e), -ECONNRESET);
	assert_non_null(strstr(e.msg, "in the middle of a packet"));
	assert_false(ks_gdb_connected(g));
	assert_int_equal(ks_gdb_disconnect_reason(g)->code, -ECONNRESET);
	assert_int_equal(ks_gdb_read_regs(g, 0, &r, &e), -ENOTCONN);
	assert_int_equal(ks_gdb_continue(g, &e), -ENOTCONN);
	assert_int_equal(ks_gdb_interrupt(g, NULL, &e), -ENOTCONN);
	finish(&s, g, NULL);
}

/* With acks on, a corrupt packet gets "-" and comes again; a "-" from the stub, ours. */
static void acks_recover_from_corruption(void **state)
{
	static const char script[] = HELLO_ACKS
		"=> Z0,1000,1\n<- +\n<- $OK#00\n-> -\n<- $OK#9a\n-> +\n"
		"=> z0,1000,1\n<- -\n=> z0,1000,1\n<- +\n<= OK\n-> +\n";
	struct stub s;
	struct ks_gdb *g;

	(void)state;
	g = attach(&s, script, STUB_JOINED);
	assert_true(ks_gdb_acks(g));
	OK(ks_gdb_set_breakpoint(g, KS_GDB_BP_SW, 0x1000, 0, err));
	OK(ks_gdb_clear_breakpoint(g, KS_GDB_BP_SW, 0x1000, 0, err));
	finish(&s, g, NULL);
}

/*
 * Register writes and a continue in one go, acks on: the stub's answers to the writes come
 * when the VM may run again, so the client must not ack them (a byte to a running QEMU
 * stops it); the stop reply that follows is acked. A refused write is counted.
 */
static void writes_and_continue_in_one_go(void **state)
{
	static const char script[] = HELLO_ACKS
		"=> Hgp1.1\n<- +\n<= OK\n-> +\n"
		"=> P7=08f0ffffffffffff\n=> P11=46020000\n=> cffffffff80001003\n"
		"<- +\n<= OK\n<- +\n<= E14\n<- +\n!sleep 10\n"
		"<= T05thread:p01.01;\n-> +\n"
		"=> cffffffff80002000\n<- +\n<= T05thread:p01.02;\n-> +\n";
	const struct ks_gdb_reg_write w[] = {
		{ KS_X86_RSP, 0xfffffffffffff008ull }, { KS_X86_EFLAGS, 0x246 },
	};
	const struct ks_gdb_reg_write xmm = { KS_X86_XMM0, 0 };
	struct ks_error e = { 0 };
	struct ks_gdb_stop st;
	struct stub s;
	struct ks_gdb *g;

	(void)state;
	g = attach(&s, script, STUB_JOINED);
	assert_int_equal(ks_gdb_continue_at(g, 0x1000, &xmm, 1, &e), -EINVAL);
	OK(ks_gdb_continue_at(g, 0xffffffff80001003ull, w, 2, err));
	assert_int_equal(ks_gdb_state(g), KS_GDB_RUNNING);
	assert_int_equal(ks_gdb_continue_at(g, 0x1000, NULL, 0, &e), -EBUSY);
	assert_int_equal(ks_gdb_wait_stop(g, &st, TIMEOUT), 0);
	assert_int_equal(st.vcpu, 0);
	assert_int_equal(ks_gdb_lost_writes(g), 1);
	/* No writes: no Hg, and the continue thread is the one that stopped (vCPU 1 next). */
	OK(ks_gdb_continue_at(g, 0xffffffff80002000ull, NULL, 0, err));
	assert_int_equal(ks_gdb_wait_stop(g, &st, TIMEOUT), 0);
	assert_int_equal(st.vcpu, 1);
	finish(&s, g, NULL);
}

/* Stops after vCont;c go to the callback, with console output and notifications around. */
struct seen {
	int n;
	struct ks_gdb_stop stops[4];
	char output[32];
};

static void on_stop(struct ks_gdb *g, const struct ks_gdb_stop *st, void *data)
{
	struct seen *seen = data;

	(void)g;
	if (st->kind == KS_GDB_STOP_OUTPUT)
		snprintf(seen->output, sizeof(seen->output), "%s", st->output);
	if (seen->n < 4)
		seen->stops[seen->n++] = *st;
}

static void stops_reach_the_callback(void **state)
{
	static const char script[] = HELLO("1000")
		"=> vCont;c\n!sleep 10\n<= O48690a\n<- %Stop:T05thread:p01.02;#e7\n"
		"<= T05thread:p01.02;awatch:1008;\n"
		"=> m1000,10\n<~ 0*<\n";
	struct seen seen = { 0 };
	struct ks_gdb_stop st;
	uint8_t b[16];
	struct stub s;
	struct ks_gdb *g;

	(void)state;
	g = attach(&s, script, STUB_WHOLE);
	ks_gdb_on_stop(g, on_stop, &seen);
	OK(ks_gdb_continue(g, err));
	assert_int_equal(ks_gdb_wait_stop(g, &st, TIMEOUT), 0);
	assert_int_equal(seen.n, 2);
	assert_int_equal(seen.stops[0].kind, KS_GDB_STOP_OUTPUT);
	assert_string_equal(seen.output, "Hi\n");
	assert_int_equal(seen.stops[1].kind, KS_GDB_STOP_SIGNAL);
	assert_int_equal(seen.stops[1].vcpu, 1);
	assert_int_equal(seen.stops[1].watch, KS_GDB_WATCH_ACCESS);
	assert_int_equal(seen.stops[1].watch_addr, 0x1008);
	assert_int_equal(st.vcpu, 1);
	/* The stopping vCPU is the stub's current one: no Hg needed; a run-length reply. */
	OK(ks_gdb_read_virt(g, 1, 0x1000, b, sizeof(b), err));
	assert_memory_equal(b, (uint8_t[16]){ 0 }, 16);
	finish(&s, g, NULL);
}

static void the_target_exits(void **state)
{
	static const char script[] = HELLO("1000") "=> vCont;c\n<= W00\n!sleep 100\n";
	struct ks_error e = { 0 };
	struct ks_gdb_stop st;
	struct stub s;
	struct ks_gdb *g;

	(void)state;
	g = attach(&s, script, STUB_WHOLE);
	OK(ks_gdb_continue(g, err));
	assert_int_equal(ks_gdb_wait_stop(g, &st, TIMEOUT), 0);
	assert_int_equal(st.kind, KS_GDB_STOP_EXITED);
	assert_int_equal(ks_gdb_state(g), KS_GDB_EXITED);
	assert_int_equal(ks_gdb_continue(g, &e), -ESRCH);
	finish(&s, g, NULL);
}

struct broken_case {
	const char *reply;  /* a script line the stub answers Hg with */
	int code;
	const char *message;
};

static const struct broken_case broken_cases[] = {
	{ "<- xyz$OK#9a", -EPROTO, "garbage between packets: xyz" },
	{ "<- $OK#zz", -EPROTO, "checksum is not hex" },
	{ "<- $OK#00", -EBADMSG, "bad checksum" },   /* no acks: nothing to recover with */
	{ "<= T05thread:zz;", -EPROTO, "malformed stop reply" },
	{ "<= E01", -EIO, "Hgp1.1: the stub refused: E01" },
	{ "<= ", -EOPNOTSUPP, "not supported" },
	{ "<= what", -EPROTO, "unexpected reply what" },
};

/* Malformed or refused answers: an error with a reason, and no crash. */
static void broken_replies(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(broken_cases) / sizeof(broken_cases[0]); i++) {
		char *script = NULL;
		struct ks_error e = { 0 };
		struct stub s;
		struct ks_gdb *g;

		add(&script, "%s=> Hgp1.1\n%s\n!sleep 20\n", HELLO("1000"), broken_cases[i].reply);
		g = attach(&s, script, STUB_WHOLE);
		assert_int_equal(ks_gdb_select_vcpu(g, 0, &e), broken_cases[i].code);
		if (!strstr(e.msg, broken_cases[i].message))
			fail_msg("case %zu: '%s' lacks '%s'", i, e.msg, broken_cases[i].message);
		finish(&s, g, script);
	}
}

static void an_oversized_packet(void **state)
{
	char *script = NULL;
	struct ks_error e = { 0 };
	struct stub s;
	struct ks_gdb *g;

	(void)state;
	add(&script, "%s=> g\n<- $", HELLO("100"));
	for (int i = 0; i < 5000; i++)
		add(&script, "0");
	add(&script, "\n!sleep 20\n");
	g = attach(&s, script, STUB_WHOLE);
	assert_int_equal(ks_gdb_request(g, "g", 1, &(const struct ks_gdb_packet *){ 0 }, &e),
			 -EMSGSIZE);
	assert_non_null(strstr(e.msg, "longer than 4096 bytes"));
	finish(&s, g, script);
}

/* ---- connecting ---- */

struct listener {
	char path[108];
	const char *script;
	struct stub s;
	pthread_t thread;
};

/* Creates the socket only after a while, as QEMU does, then plays the script. */
static void *listen_late(void *arg)
{
	struct listener *l = arg;
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM, 0), c;

	usleep(30000);
	strcpy(sa.sun_path, l->path);
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 1) < 0)
		return NULL;
	c = accept(fd, NULL, NULL);
	close(fd);
	unlink(l->path);
	stub_play(&l->s, c, l->script, STUB_WHOLE);
	return NULL;
}

static void connect_waits_for_the_socket(void **state)
{
	struct listener l = { .script = HELLO("1000") };
	struct ks_error err = { 0 };
	struct ks_gdb *g;

	(void)state;
	snprintf(l.path, sizeof(l.path), "/tmp/kscope-test-gdb-%d.sock", (int)getpid());
	assert_int_equal(pthread_create(&l.thread, NULL, listen_late, &l), 0);
	g = ks_gdb_connect(NULL, l.path, TIMEOUT, &err);
	if (!g)
		fail_msg("connect: %s", err.msg);
	assert_int_equal(ks_gdb_vcpu_count(g), 2);
	ks_gdb_free(g);
	pthread_join(l.thread, NULL);
	if (l.s.failure[0])
		fail_msg("stub: %s", l.s.failure);
	assert_null(ks_gdb_connect(NULL, l.path, 20 * MS, &err));
	assert_int_equal(err.code, -ETIMEDOUT);
	assert_null(ks_gdb_connect(NULL, NULL, 20 * MS, &err));
	assert_int_equal(err.code, -EINVAL);
	ks_gdb_free(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(handshake_whole),
		cmocka_unit_test(handshake_bytes),
		cmocka_unit_test(handshake_joined),
		cmocka_unit_test(replay_pvh_entry),
		cmocka_unit_test(replay_memory),
		cmocka_unit_test(replay_chunked_read),
		cmocka_unit_test(replay_watchpoint),
		cmocka_unit_test(replay_step),
		cmocka_unit_test(replay_interrupt),
		cmocka_unit_test(replay_attach_running),
		cmocka_unit_test(chunks_follow_the_packet_size),
		cmocka_unit_test(more_vcpus_than_guessed),
		cmocka_unit_test(a_late_reply_is_dropped),
		cmocka_unit_test(the_stub_hangs_up_mid_reply),
		cmocka_unit_test(acks_recover_from_corruption),
		cmocka_unit_test(writes_and_continue_in_one_go),
		cmocka_unit_test(stops_reach_the_callback),
		cmocka_unit_test(the_target_exits),
		cmocka_unit_test(broken_replies),
		cmocka_unit_test(an_oversized_packet),
		cmocka_unit_test(connect_waits_for_the_socket),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
