/* test_vm.c: the vm module against real QEMU: shapes, lifecycle, snapshots, every outcome. */
#include <dirent.h>
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include <kscope/chan.h>
#include <kscope/kt_abi.h>
#include <kscope/loop.h>
#include <kscope/qmp.h>
#include <kscope/sym.h>
#include <kscope/vm.h>

#include "vm_internal.h"
#include "vmboot.h"
#include "leftovers.h"

#define SEC 1000000000ll

struct fixture {
	struct ks_loop *loop;
	char base[64];
};

static int setup(void **state)
{
	static struct fixture f;

	if (!vm_have_qemu())
		skip();
	f.loop = ks_loop_new(NULL);
	snprintf(f.base, sizeof(f.base), "/tmp/kscope-test-vm-XXXXXX");
	assert_non_null(mkdtemp(f.base));
	*state = &f;
	return 0;
}

/* Nothing may remain: no runtime dir, no /dev/shm file of ours. */
static int teardown(void **state)
{
	struct fixture *f = *state;

	ks_loop_free(f->loop);
	expect_no_leftovers(f->base);
	return 0;
}

/* Remembers the QMP events the VM saw, in order, so a test can wait for one. */
static char seen[64][32];
static int nseen;

static void record(struct ks_vm *vm, const char *event, void *data)
{
	(void)vm, (void)data;
	if (event && nseen < 64)
		snprintf(seen[nseen++], sizeof(seen[0]), "%s", event);
}

static bool saw(struct fixture *f, const char *event)
{
	uint64_t deadline = ks_loop_now_ns() + 10 * SEC;

	while (ks_loop_now_ns() < deadline) {
		for (int i = 0; i < nseen; i++)
			if (!strcmp(seen[i], event))
				return true;
		ks_loop_run_once(f->loop, SEC / 10);
	}
	return false;
}

static struct ks_vmspec *spec_with(const char *const *kv)
{
	struct ks_error err = { 0 };
	struct ks_vmspec *s = ks_vmspec_new(NULL);

	assert_int_equal(ks_vmspec_set(s, "kernel", vm_demo_kernel(), &err), 0);
	assert_int_equal(ks_vmspec_set(s, "accel", "tcg", &err), 0);
	for (int i = 0; kv && kv[i]; i += 2)
		if (ks_vmspec_set(s, kv[i], kv[i + 1], &err) < 0)
			fail_msg("%s", err.msg);
	return s;
}

static struct ks_vm *start(struct fixture *f, const char *name, const char *const *kv,
			   struct ks_vm_opts *o)
{
	struct ks_vm_opts def;
	struct ks_error err = { 0 };

	if (!o) {
		ks_vm_opts_init(&def);
		o = &def;
	}
	o->name = name;
	o->rundir_base = f->base;
	struct ks_vmspec *s = spec_with(kv);
	struct ks_vm *vm = ks_vm_start(f->loop, s, o, &err);
	ks_vmspec_free(s);
	if (!vm)
		fail_msg("start: %s", err.msg);
	nseen = 0;
	ks_vm_on_event(vm, record, NULL);
	return vm;
}

static void runs_to_exit_code(void **state)
{
	struct fixture *f = *state;
	struct ks_vm *vm = start(f, "exit", (const char *const[]){ "cpus", "2", NULL }, NULL);

	assert_int_equal(ks_vm_accel(vm), KS_ACCEL_TCG);
	assert_int_equal(ks_vm_wait(vm, 60 * SEC), 0);
	const struct ks_vm_outcome *o = ks_vm_outcome(vm);
	assert_int_equal(o->end, KS_VM_END_EXIT_CODE);
	assert_int_equal(o->exit_code, KT_EXIT_PASS);
	assert_int_equal(ks_vm_state(vm), KS_VM_ENDED);
	/* The console was captured from the first byte. */
	struct ks_chan *c = ks_vm_chan(vm, 0);
	assert_non_null(c);
	struct ks_chan_stats st;
	ks_chan_stats(c, &st);
	assert_true(st.lines > 60);
	ks_vm_free(vm);
}

static void failure_exit_code(void **state)
{
	struct fixture *f = *state;
	struct ks_vm *vm = start(f, "fail", (const char *const[]){ "append",
								   "kt.filter=example_fail", NULL },
				 NULL);

	assert_int_equal(ks_vm_wait(vm, 60 * SEC), 0);
	assert_int_equal(ks_vm_outcome(vm)->end, KS_VM_END_EXIT_CODE);
	assert_int_equal(ks_vm_outcome(vm)->exit_code, KT_EXIT_FAIL);
	ks_vm_free(vm);
}

static json_t *qmp(struct ks_vm *vm, const char *cmd)
{
	json_t *reply = NULL;
	struct ks_error err = { 0 };

	if (ks_qmp_call(ks_vm_qmp(vm), cmd, NULL, &reply, 10 * SEC, &err) < 0)
		fail_msg("%s: %s", cmd, err.msg);
	return reply;
}

static const char *const hang_numa[] = {
	"cpus", "4", "sockets", "2", "cores", "2", "memory", "256M", "numa", "128M,0-1",
	"numa", "128M,2-3", "append", "kt.filter=example_crash.hang", NULL
};

/* 2 sockets x 2 cores on 2 NUMA nodes, as QMP reports it; pause and resume with events. */
static void topology_pause_resume(void **state)
{
	struct fixture *f = *state;
	struct ks_vm *vm = start(f, "shape", hang_numa, NULL);
	struct ks_error err = { 0 };

	json_t *cpus = qmp(vm, "query-cpus-fast");
	assert_int_equal(json_array_size(cpus), 4);
	for (size_t i = 0; i < 4; i++) {
		json_t *props = json_object_get(json_array_get(cpus, i), "props");
		int socket = (int)json_integer_value(json_object_get(props, "socket-id"));
		int core = (int)json_integer_value(json_object_get(props, "core-id"));
		int node = (int)json_integer_value(json_object_get(props, "node-id"));
		int idx = socket * 2 + core;
		assert_true(socket >= 0 && socket < 2 && core >= 0 && core < 2);
		assert_int_equal(node, idx / 2);
	}
	json_decref(cpus);
	assert_int_equal(ks_vm_ram(vm)->nfiles, 2);
	assert_int_equal(ks_vm_state(vm), KS_VM_RUNNING);
	assert_int_equal(ks_vm_pause(vm, &err), 0);
	assert_true(saw(f, "STOP"));
	assert_int_equal(ks_vm_state(vm), KS_VM_PAUSED);
	json_t *st = qmp(vm, "query-status");
	assert_string_equal(json_string_value(json_object_get(st, "status")), "paused");
	json_decref(st);
	assert_int_equal(ks_vm_resume(vm, &err), 0);
	assert_true(saw(f, "RESUME"));
	assert_int_equal(ks_vm_state(vm), KS_VM_RUNNING);
	ks_vm_free(vm);
}

static volatile uint8_t *map_ram(struct ks_vm *vm)
{
	const struct ks_ram_layout *l = ks_vm_ram(vm);
	void *p = mmap(NULL, l->files[0].size, PROT_READ | PROT_WRITE, MAP_SHARED,
		       ks_vm_ram_fd(vm, 0), 0);

	assert_true(p != MAP_FAILED);
	return p;
}

/* Save, change guest memory, load: the memory is as it was at the save. */
static void snapshot_restores_memory(void **state)
{
	struct fixture *f = *state;
	struct ks_vm *vm = start(f, "snap", hang_numa, NULL);
	struct ks_error err = { 0 };
	struct ks_vm_snapshot *list;
	size_t n;
	const size_t off = 100u << 20; /* 100 MiB into node 0: the demo kernel leaves it alone */
	volatile uint8_t *ram = map_ram(vm);

	assert_int_equal(ks_vm_pause(vm, &err), 0);
	ram[off] = 0x11;
	assert_int_equal(ks_vm_snapshot_save(vm, "s1", &err), 0);
	ram[off] = 0x22;
	assert_int_equal(ks_vm_resume(vm, &err), 0);
	usleep(100000);
	assert_int_equal(ks_vm_snapshot_load(vm, "s1", &err), 0);
	assert_int_equal(ram[off], 0x11);
	/* Saving a tag again replaces it, RAM included. */
	assert_int_equal(ks_vm_pause(vm, &err), 0);
	ram[off] = 0x33;
	assert_int_equal(ks_vm_snapshot_save(vm, "s1", &err), 0);
	ram[off] = 0x44;
	assert_int_equal(ks_vm_snapshot_load(vm, "s1", &err), 0);
	assert_int_equal(ram[off], 0x33);
	assert_int_equal(ks_vm_snapshot_list(vm, &list, &n, &err), 0);
	assert_int_equal(n, 1);
	assert_string_equal(list[0].tag, "s1");
	assert_true(list[0].vm_state_size > 0);
	/* The RAM kscope keeps: the kernel image at least, never the whole guest. */
	assert_true(list[0].ram_size > 64 * 1024);
	assert_true(list[0].ram_size < 128ull << 20);
	free(list);
	assert_int_equal(ks_vm_snapshot_load(vm, "nosuch", &err), -ENOENT);
	assert_string_equal(err.msg, "snapshot load: no snapshot 'nosuch'");
	assert_int_equal(ks_vm_snapshot_delete(vm, "s1", &err), 0);
	assert_int_equal(ks_vm_snapshot_list(vm, &list, &n, &err), 0);
	assert_int_equal(n, 0);
	free(list);
	assert_true(ks_vm_snapshot_save(vm, "bad tag", &err) < 0);
	munmap((void *)ram, ks_vm_ram(vm)->files[0].size);
	ks_vm_free(vm);
}

/* A register of vCPU 0 from HMP `info registers` (the value after "NAME="); 0 when it is
 * not there (in 32-bit mode, early in the boot, RIP is EIP). */
static uint64_t reg(struct ks_vm *vm, const char *name)
{
	struct ks_error err = { 0 };
	char *out = NULL, key[16];
	const char *at;
	uint64_t v;

	if (ks_qmp_hmp(ks_vm_qmp(vm), "info registers", &out, 10 * SEC, &err) < 0)
		fail_msg("info registers: %s", err.msg);
	snprintf(key, sizeof(key), "%s=", name);
	at = strstr(out, key);
	v = at ? strtoull(at + strlen(key), NULL, 16) : 0;
	free(out);
	return v;
}

#define KERNEL_BASE 0xffffffff80000000ull  /* the demo's image: VA = PA + this */

/* The demo's hang(): `cli`, 7 bytes of nop, then the loop `pause; jmp .-2` at +8. */
static uint64_t hang_loop(void)
{
	struct ks_error err = { 0 };
	struct ks_symtab *t = ks_sym_load(vm_demo_kernel(), &err);
	const struct ks_sym *s = t ? ks_sym_find(t, "hang") : NULL;
	uint64_t va;

	if (!s)
		fail_msg("no symbol hang in the demo kernel: %s", err.msg);
	va = s->addr + 8;
	ks_sym_free(t);
	return va;
}

/* Runs the loop until vCPU 0 spins in the hang case's loop. */
static void wait_in_loop(struct fixture *f, struct ks_vm *vm, uint64_t loop)
{
	uint64_t deadline = ks_loop_now_ns() + 30 * SEC, rip = 0;

	while (ks_loop_now_ns() < deadline) {
		rip = reg(vm, "RIP");
		if (rip >= loop && rip < loop + 4)
			return;
		ks_loop_run_once(f->loop, SEC / 50);
	}
	fail_msg("vCPU 0 never reached the hang loop at 0x%llx (RIP 0x%llx)",
		 (unsigned long long)loop, (unsigned long long)rip);
}

static const char *status(struct ks_vm *vm)
{
	static char buf[32];
	json_t *st = qmp(vm, "query-status");

	snprintf(buf, sizeof(buf), "%s", json_string_value(json_object_get(st, "status")));
	json_decref(st);
	return buf;
}

/* EAX after the vCPUs ran for a while from a loaded snapshot (and are stopped again). */
static uint64_t eax_after_running(struct ks_vm *vm, uint64_t *before)
{
	struct ks_error err = { 0 };

	*before = reg(vm, "RAX") & 0xffffffff;
	assert_int_equal(ks_vm_resume(vm, &err), 0);
	usleep(100000);
	assert_int_equal(ks_vm_pause(vm, &err), 0);
	return reg(vm, "RAX") & 0xffffffff;
}

/*
 * The guest runs the code of the snapshot it was loaded from, not translations TCG made of
 * other code at the same address. The hang loop is made `inc %eax; jmp .-2` in snapshot
 * "inc", `pause; jmp .-2` (as built) in snapshot "loop": loading one after the other swaps
 * what the vCPU does, though each time it was spinning in the other loop's translation.
 * The loop is in the kernel image, which QEMU's reset in loadvm writes back as it was
 * built: "inc" can only run if its RAM came back after that.
 */
static void snapshot_load_runs_saved_code(void **state)
{
	static const uint8_t inc[2] = { 0xff, 0xc0 }, pause[2] = { 0xf3, 0x90 };
	struct fixture *f = *state;
	struct ks_vm *vm = start(f, "snapcode", (const char *const[]){
		"append", "kt.filter=example_crash.hang", NULL }, NULL);
	struct ks_error err = { 0 };
	uint64_t loop = hang_loop(), before, after;
	volatile uint8_t *ram = map_ram(vm), *code = ram + (loop - KERNEL_BASE);

	wait_in_loop(f, vm, loop);
	assert_memory_equal((const void *)code, pause, 2);
	/* Saved running: stopped for the save, running again after it. */
	assert_int_equal(ks_vm_snapshot_save(vm, "loop", &err), 0);
	assert_int_equal(ks_vm_state(vm), KS_VM_RUNNING);
	assert_string_equal(status(vm), "running");
	assert_int_equal(ks_vm_pause(vm, &err), 0);
	memcpy((void *)code, inc, 2);
	/* Saved paused: still paused after it. */
	assert_int_equal(ks_vm_snapshot_save(vm, "inc", &err), 0);
	assert_string_equal(status(vm), "paused");
	assert_int_equal(ks_vm_snapshot_load(vm, "inc", &err), 0);
	assert_string_equal(status(vm), "paused");
	assert_memory_equal((const void *)code, inc, 2);
	after = eax_after_running(vm, &before);
	assert_true(after != before);
	assert_int_equal(ks_vm_snapshot_load(vm, "loop", &err), 0);
	assert_memory_equal((const void *)code, pause, 2);
	after = eax_after_running(vm, &before);
	assert_int_equal(after, before);
	assert_int_equal(ks_vm_snapshot_load(vm, "inc", &err), 0);
	after = eax_after_running(vm, &before);
	assert_true(after != before);
	munmap((void *)ram, ks_vm_ram(vm)->files[0].size);
	ks_vm_free(vm);
}

/* A digest of every RAM file: their bytes (read, which leaves holes as they are), and
 * where their data extents are. */
struct ram_digest {
	uint64_t bytes, extents;
};

static uint64_t fnv(uint64_t h, const void *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		h = (h ^ ((const uint8_t *)p)[i]) * 0x100000001b3ull;
	return h;
}

static struct ram_digest digest(struct ks_vm *vm)
{
	const struct ks_ram_layout *l = ks_vm_ram(vm);
	struct ram_digest d = { 0xcbf29ce484222325ull, 0xcbf29ce484222325ull };
	const size_t chunk = 1u << 20;
	uint8_t *buf = malloc(chunk);

	assert_non_null(buf);
	for (size_t i = 0; i < l->nfiles; i++) {
		int fd = ks_vm_ram_fd(vm, i);
		off_t size = (off_t)l->files[i].size;

		for (off_t at = 0; at < size; at += (off_t)chunk) {
			assert_int_equal(pread(fd, buf, chunk, at), (ssize_t)chunk);
			d.bytes = fnv(d.bytes, buf, chunk);
		}
		for (off_t at = 0, data, hole; at < size; at = hole) {
			if ((data = lseek(fd, at, SEEK_DATA)) < 0)
				break;
			hole = lseek(fd, data, SEEK_HOLE);
			off_t ext[2] = { data, hole };
			d.extents = fnv(d.extents, ext, sizeof(ext));
		}
	}
	free(buf);
	return d;
}

/* The RAM copies this process holds: memfds named after their snapshot. */
static int ram_copies(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	char path[300], target[300];
	int n = 0;

	assert_non_null(d);
	while ((e = readdir(d))) {
		ssize_t len;

		snprintf(path, sizeof(path), "/proc/self/fd/%s", e->d_name);
		if ((len = readlink(path, target, sizeof(target) - 1)) <= 0)
			continue;
		target[len] = 0;
		n += strstr(target, "memfd:kscope-snapshot-") != NULL;
	}
	closedir(d);
	return n;
}

/*
 * A load brings back all of RAM as it was at the save, byte for byte and hole for hole, on
 * every NUMA node's file: after the guest rebooted (rewriting its image, page tables and
 * data) and the host wrote pages that were holes and pages that were data. Then the guest
 * runs on from where it was saved.
 */
static void snapshot_restores_all_ram(void **state)
{
	struct fixture *f = *state;
	struct ks_vm *vm = start(f, "snapram", hang_numa, NULL);
	struct ks_error err = { 0 };
	uint64_t loop = hang_loop();
	const uint64_t hole = 100u << 20, image = loop - KERNEL_BASE;
	static uint8_t junk[8192];
	struct ram_digest saved, now;

	memset(junk, 0x5a, sizeof(junk));
	wait_in_loop(f, vm, loop);
	assert_int_equal(ks_vm_pause(vm, &err), 0);
	saved = digest(vm);
	assert_int_equal(ks_vm_snapshot_save(vm, "all", &err), 0);
	assert_int_equal(ram_copies(), 2); /* one per NUMA node's file */
	now = digest(vm);
	assert_true(now.bytes == saved.bytes && now.extents == saved.extents);
	assert_int_equal(ks_vm_resume(vm, &err), 0);
	assert_int_equal(ks_vm_reset(vm, &err), 0);
	assert_true(saw(f, "RESET"));
	wait_in_loop(f, vm, loop);
	assert_int_equal(ks_vm_pause(vm, &err), 0);
	assert_int_equal(pwrite(ks_vm_ram_fd(vm, 0), junk, sizeof(junk), (off_t)hole), 8192);
	assert_int_equal(pwrite(ks_vm_ram_fd(vm, 0), junk, sizeof(junk), (off_t)image), 8192);
	assert_int_equal(pwrite(ks_vm_ram_fd(vm, 1), junk, sizeof(junk), (off_t)hole), 8192);
	now = digest(vm);
	assert_true(now.bytes != saved.bytes && now.extents != saved.extents);
	nseen = 0;
	assert_int_equal(ks_vm_snapshot_load(vm, "all", &err), 0);
	now = digest(vm);
	assert_true(now.bytes == saved.bytes);
	assert_true(now.extents == saved.extents);
	/* It runs on: back in the loop, nothing stops it. */
	assert_int_equal(ks_vm_resume(vm, &err), 0);
	usleep(300000);
	wait_in_loop(f, vm, loop);
	assert_int_equal(ks_vm_state(vm), KS_VM_RUNNING);
	for (int i = 0; i < nseen; i++)
		if (strcmp(seen[i], "STOP") && strcmp(seen[i], "RESUME"))
			fail_msg("event %s after the load", seen[i]);
	assert_int_equal(ks_vm_snapshot_delete(vm, "all", &err), 0);
	assert_int_equal(ram_copies(), 0);
	assert_int_equal(ks_vm_snapshot_load(vm, "all", &err), -ENOENT);
	/* The copies go with the VM. */
	assert_int_equal(ks_vm_snapshot_save(vm, "a", &err), 0);
	assert_int_equal(ks_vm_snapshot_save(vm, "b", &err), 0);
	assert_int_equal(ram_copies(), 4);
	ks_vm_destroy(vm);
	assert_int_equal(ram_copies(), 0);
	ks_vm_free(vm);
}

static void panic_pauses_then_destroy(void **state)
{
	struct fixture *f = *state;
	struct ks_vm *vm = start(f, "panic", (const char *const[]){
		"append", "kt.filter=example_crash.page_fault", NULL }, NULL);

	/* By time, not by rounds: one round may be one callback, and lines come fast. */
	uint64_t deadline = ks_loop_now_ns() + 60 * SEC;
	while (!ks_vm_outcome(vm)->panicked && ks_loop_now_ns() < deadline)
		ks_loop_run_once(f->loop, SEC / 10);
	if (!ks_vm_outcome(vm)->panicked)
		fail_msg("no panic; state %d, %s", ks_vm_state(vm), ks_vm_outcome(vm)->detail);
	assert_int_equal(ks_vm_state(vm), KS_VM_PAUSED);
	ks_vm_destroy(vm);
	assert_int_equal(ks_vm_state(vm), KS_VM_ENDED);
	assert_int_equal(ks_vm_outcome(vm)->end, KS_VM_END_DESTROYED);
	ks_vm_free(vm);
}

static void triple_fault_is_named(void **state)
{
	struct fixture *f = *state;
	struct ks_vm_opts o;

	ks_vm_opts_init(&o);
	o.no_reboot = true;
	struct ks_vm *vm = start(f, "triple", (const char *const[]){
		"append", "kt.filter=example_crash.triple_fault", NULL }, &o);
	assert_int_equal(ks_vm_wait(vm, 60 * SEC), 0);
	assert_int_equal(ks_vm_outcome(vm)->end, KS_VM_END_TRIPLE_FAULT);
	struct ks_error err = { 0 };
	assert_int_equal(ks_vm_reset(vm, &err), -EOPNOTSUPP);
	ks_vm_free(vm);
}

/* With pause_on_shutdown the triple fault pauses the VM for a look; destroying it later keeps
 * the outcome. */
static void triple_fault_pauses_at_shutdown(void **state)
{
	struct fixture *f = *state;
	struct ks_error err = { 0 };
	struct ks_vm_opts o;

	ks_vm_opts_init(&o);
	o.pause_on_shutdown = true;
	struct ks_vm *vm = start(f, "shutpause", (const char *const[]){
		"append", "kt.filter=example_crash.triple_fault", NULL }, &o);
	assert_true(saw(f, "SHUTDOWN"));
	assert_true(saw(f, "STOP"));
	assert_int_equal(ks_vm_state(vm), KS_VM_PAUSED);
	assert_string_equal(ks_vm_shutdown_reason(vm), "guest-reset");
	json_t *st = qmp(vm, "query-status");
	assert_string_equal(json_string_value(json_object_get(st, "status")), "shutdown");
	json_decref(st);
	assert_int_equal(ks_vm_reset(vm, &err), -EOPNOTSUPP);
	ks_vm_destroy(vm);
	assert_int_equal(ks_vm_outcome(vm)->end, KS_VM_END_TRIPLE_FAULT);
	ks_vm_free(vm);
	/* Without a shutdown, destroying it is still the host's doing. */
	vm = start(f, "shutpause", hang_numa, &o);
	assert_null(ks_vm_shutdown_reason(vm));
	ks_vm_destroy(vm);
	assert_int_equal(ks_vm_outcome(vm)->end, KS_VM_END_DESTROYED);
	ks_vm_free(vm);
}

static void killed_qemu_is_named(void **state)
{
	struct fixture *f = *state;
	struct ks_vm *vm = start(f, "killed", hang_numa, NULL);

	kill(ks_vm_pid(vm), SIGTERM);
	assert_int_equal(ks_vm_wait(vm, 10 * SEC), 0);
	/* QEMU turns SIGTERM into a shutdown (host-signal); SIGKILL is a kill. */
	assert_int_equal(ks_vm_outcome(vm)->end, KS_VM_END_POWEROFF);
	ks_vm_free(vm);
	vm = start(f, "killed", hang_numa, NULL);
	kill(ks_vm_pid(vm), SIGKILL);
	assert_int_equal(ks_vm_wait(vm, 10 * SEC), 0);
	assert_int_equal(ks_vm_outcome(vm)->end, KS_VM_END_KILLED);
	assert_int_equal(ks_vm_outcome(vm)->signal, SIGKILL);
	ks_vm_free(vm);
}

static void reset_and_stop(void **state)
{
	struct fixture *f = *state;
	struct ks_vm *vm = start(f, "reset", hang_numa, NULL);
	struct ks_error err = { 0 };

	assert_int_equal(ks_vm_reset(vm, &err), 0);
	assert_true(saw(f, "RESET"));
	assert_int_equal(ks_vm_stop(vm, 10 * SEC, &err), 0);
	assert_int_equal(ks_vm_outcome(vm)->end, KS_VM_END_POWEROFF);
	assert_true(ks_vm_pause(vm, &err) < 0);
	assert_non_null(strstr(err.msg, "has ended"));
	ks_vm_free(vm);
}

static void names_do_not_collide(void **state)
{
	struct fixture *f = *state;
	struct ks_vm_opts o;
	struct ks_error err = { 0 };
	struct ks_vm *a = start(f, "twin", hang_numa, NULL);
	struct ks_vm *b = start(f, "other", hang_numa, NULL);

	assert_int_not_equal(ks_vm_pid(a), ks_vm_pid(b));
	ks_vm_opts_init(&o);
	o.name = "twin";
	o.rundir_base = f->base;
	struct ks_vmspec *s = spec_with(NULL);
	assert_null(ks_vm_start(f->loop, s, &o, &err));
	assert_non_null(strstr(err.msg, "a VM named 'twin' already exists"));
	o.name = "bad/name";
	assert_null(ks_vm_start(f->loop, s, &o, &err));
	assert_non_null(strstr(err.msg, "name:"));
	ks_vmspec_free(s);
	ks_vm_free(a);
	ks_vm_free(b);
}

static void qemu_start_failure_is_shown(void **state)
{
	struct fixture *f = *state;
	struct ks_vm_opts o;
	struct ks_error err = { 0 };

	ks_vm_opts_init(&o);
	o.name = "broken";
	o.rundir_base = f->base;
	struct ks_vmspec *s = spec_with((const char *const[]){ "qemu-arg", "-bogus-option", NULL });
	assert_null(ks_vm_start(f->loop, s, &o, &err));
	print_message("# %s\n", err.msg);
	assert_non_null(strstr(err.msg, "QEMU failed to start"));
	assert_non_null(strstr(err.msg, "-bogus-option"));
	ks_vmspec_free(s);
	/* A spec that fails validation as a whole never reaches QEMU. */
	s = spec_with((const char *const[]){ "cpus", "4", "sockets", "3", NULL });
	assert_null(ks_vm_start(f->loop, s, &o, &err));
	assert_non_null(strstr(err.msg, "topology:"));
	ks_vmspec_free(s);
}

/* What a start's callback (ks_vm_launch) saw. */
struct launched {
	int calls, rc;
	char msg[256];
};

static void on_launched(struct ks_vm *vm, int rc, const struct ks_error *err, void *data)
{
	struct launched *l = data;

	(void)vm;
	l->calls++;
	l->rc = rc;
	snprintf(l->msg, sizeof(l->msg), "%s", rc < 0 && err ? err->msg : "");
}

static struct ks_vm *launch(struct fixture *f, const char *name, const char *const *kv,
			    struct launched *l)
{
	struct ks_vm_opts o;
	struct ks_error err = { 0 };
	struct ks_vmspec *s = spec_with(kv);
	struct ks_vm *vm;

	ks_vm_opts_init(&o);
	o.name = name;
	o.rundir_base = f->base;
	vm = ks_vm_launch(f->loop, s, &o, on_launched, l, &err);
	ks_vmspec_free(s);
	if (!vm)
		fail_msg("launch %s: %s", name, err.msg);
	return vm;
}

static void wait_launched(struct fixture *f, struct launched *l, int n)
{
	uint64_t deadline = ks_loop_now_ns() + 30 * SEC;
	int done = 0;

	while (done < n && ks_loop_now_ns() < deadline) {
		ks_loop_run_once(f->loop, SEC / 10);
		done = 0;
		for (int i = 0; i < n; i++)
			done += l[i].calls;
	}
	assert_int_equal(done, n);
}

/* Three QEMUs launched at once all come up, each with QMP and its console from the first
 * byte, and run the demo kernel to its exit code. */
static void launch_several_at_once(void **state)
{
	struct fixture *f = *state;
	struct launched l[3] = { 0 };
	struct ks_vm *vm[3];
	char name[16];

	for (int i = 0; i < 3; i++) {
		snprintf(name, sizeof(name), "at-once%d", i);
		vm[i] = launch(f, name, (const char *const[]){ "cpus", "2", NULL }, &l[i]);
		assert_true(ks_vm_starting(vm[i]));
	}
	wait_launched(f, l, 3);
	for (int i = 0; i < 3; i++) {
		struct ks_chan_stats st;

		if (l[i].rc != 0)
			fail_msg("vm %d: %s", i, l[i].msg);
		assert_false(ks_vm_starting(vm[i]));
		assert_int_equal(ks_vm_wait(vm[i], 60 * SEC), 0);
		assert_int_equal(ks_vm_outcome(vm[i])->end, KS_VM_END_EXIT_CODE);
		assert_int_equal(ks_vm_outcome(vm[i])->exit_code, KT_EXIT_PASS);
		ks_chan_stats(ks_vm_chan(vm[i], 0), &st);
		assert_true(st.lines > 60);
		ks_vm_free(vm[i]);
	}
}

/* A QEMU that rejects its command line says so through the callback, QEMU gone. */
static void launch_failure_through_callback(void **state)
{
	struct fixture *f = *state;
	struct launched l = { 0 };
	struct ks_vm *vm = launch(f, "broken", (const char *const[]){ "qemu-arg",
							       "-bogus-option", NULL }, &l);
	pid_t pid = ks_vm_pid(vm);

	wait_launched(f, &l, 1);
	assert_true(l.rc < 0);
	print_message("# %s\n", l.msg);
	assert_non_null(strstr(l.msg, "QEMU failed to start"));
	assert_non_null(strstr(l.msg, "-bogus-option"));
	assert_int_equal(ks_vm_state(vm), KS_VM_ENDED);
	assert_true(kill(pid, 0) < 0 && errno == ESRCH);
	ks_vm_free(vm);
}

/* Destroyed while QEMU starts up (before its sockets, and with QMP connected but QEMU not in
 * its main loop yet): no process, socket or /dev/shm file is left (teardown checks the last
 * two), and the callback never comes. */
static void launch_destroyed_mid_start(void **state)
{
	struct fixture *f = *state;
	const int64_t after_ms[] = { 0, 5, 15, 25 };
	char name[16], sock[160];

	for (size_t i = 0; i < sizeof(after_ms) / sizeof(after_ms[0]); i++) {
		struct launched l = { 0 };
		struct ks_vm *vm;
		pid_t pid;

		snprintf(name, sizeof(name), "cut%zu", i);
		vm = launch(f, name, hang_numa, &l);
		pid = ks_vm_pid(vm);
		snprintf(sock, sizeof(sock), "%s/qmp.sock", ks_vm_rundir(vm));
		for (uint64_t end = ks_loop_now_ns() + (uint64_t)after_ms[i] * 1000000;
		     ks_loop_now_ns() < end && !l.calls;)
			ks_loop_run_once(f->loop, 1000000);
		if (i % 2)
			ks_vm_destroy(vm);
		ks_vm_free(vm);
		assert_true(kill(pid, 0) < 0 && errno == ESRCH);
		assert_int_not_equal(access(sock, F_OK), 0);
		for (uint64_t end = ks_loop_now_ns() + SEC / 5; ks_loop_now_ns() < end;)
			ks_loop_run_once(f->loop, SEC / 20);
		assert_int_equal(l.calls, 0);
	}
}

/* The KVM probe's guest really runs (here under TCG), and auto always picks with a reason. */
static void probe_kernel_and_accel(void **state)
{
	struct fixture *f = *state;
	char path[128];
	struct ks_error err = { 0 };

	snprintf(path, sizeof(path), "%s/probe.elf", f->base);
	assert_int_equal(ks_probe_kernel_write(path, 0x2a, &err), 0);
	struct vm_result r;
	assert_int_equal(vm_boot(path, NULL, 30, &r), 0);
	assert_int_equal(r.status, (0x2a << 1) | 1);
	vm_result_free(&r);
	unlink(path);
	struct ks_vmspec *s = spec_with(NULL);
	const char *why = NULL;
	ks_vmspec_set(s, "accel", "auto", NULL);
	/* The answer is kept for later kscope processes, keyed by boot and QEMU binary. */
	setenv("KSCOPE_RUNDIR", f->base, 1);
	enum ks_accel a = ks_vm_pick_accel(s, &why);
	unsetenv("KSCOPE_RUNDIR");
	snprintf(path, sizeof(path), "%s/kvm-probe", f->base);
	FILE *cache = fopen(path, "r");
	char line[512] = "";
	assert_non_null(cache);
	assert_non_null(fgets(line, sizeof(line), cache));
	assert_non_null(strstr(line, "qemu-system-x86_64"));
	fclose(cache);
	unlink(path);
	assert_true(a == KS_ACCEL_KVM || a == KS_ACCEL_TCG);
	assert_non_null(why);
	assert_non_null(strstr(why, a == KS_ACCEL_KVM ? "kvm" : "tcg"));
	print_message("# accel auto: %s\n", why);
	ks_vmspec_free(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(runs_to_exit_code, setup, teardown),
		cmocka_unit_test_setup_teardown(failure_exit_code, setup, teardown),
		cmocka_unit_test_setup_teardown(topology_pause_resume, setup, teardown),
		cmocka_unit_test_setup_teardown(snapshot_restores_memory, setup, teardown),
		cmocka_unit_test_setup_teardown(snapshot_load_runs_saved_code, setup, teardown),
		cmocka_unit_test_setup_teardown(snapshot_restores_all_ram, setup, teardown),
		cmocka_unit_test_setup_teardown(panic_pauses_then_destroy, setup, teardown),
		cmocka_unit_test_setup_teardown(triple_fault_is_named, setup, teardown),
		cmocka_unit_test_setup_teardown(triple_fault_pauses_at_shutdown, setup, teardown),
		cmocka_unit_test_setup_teardown(killed_qemu_is_named, setup, teardown),
		cmocka_unit_test_setup_teardown(reset_and_stop, setup, teardown),
		cmocka_unit_test_setup_teardown(names_do_not_collide, setup, teardown),
		cmocka_unit_test_setup_teardown(qemu_start_failure_is_shown, setup, teardown),
		cmocka_unit_test_setup_teardown(launch_several_at_once, setup, teardown),
		cmocka_unit_test_setup_teardown(launch_failure_through_callback, setup, teardown),
		cmocka_unit_test_setup_teardown(launch_destroyed_mid_start, setup, teardown),
		cmocka_unit_test_setup_teardown(probe_kernel_and_accel, setup, teardown),
	};

	return cmocka_run_group_tests_name("vm", tests, NULL, NULL);
}
