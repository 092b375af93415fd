/* cmd_vm_ctl.c: the `kscope vm` commands that talk to a running VM's supervisor. */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <kscope/supervisor.h>
#include <kscope/vm.h>

#include "vm_cli.h"

#define SEC 1000000000ll
#define CALL_NS (15 * SEC)
#define SNAPSHOT_NS (130 * SEC)   /* savevm of a large guest takes its time */
#define GONE_NS (15 * SEC)        /* after stop/destroy: the supervisor cleans up, then exits */

static const char *str(json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));

	return s ? s : "-";
}

static long long num(json_t *o, const char *key)
{
	return (long long)json_integer_value(json_object_get(o, key));
}

/* Parses the common "NAME [more...]" shape; returns 0, or the exit status after help/usage. */
static int parse_named(const struct vm_cmd *cmd, int argc, char **argv, struct vm_args *a,
		       int min_pos, int max_pos)
{
	int rc;

	memset(&vm_flags, 0, sizeof(vm_flags));
	if ((rc = vm_parse(cmd, argc, argv, a)) != 0)
		return rc;
	if (a->help) {
		vm_usage(cmd, stdout);
		return -1;
	}
	if (a->npos < min_pos || a->npos > max_pos) {
		fprintf(stderr, "kscope vm %s: usage: kscope vm %s %s\n", cmd->name, cmd->name,
			cmd->args);
		return 2;
	}
	return 0;
}

static void format_uptime(double s, char *buf, size_t size)
{
	if (s < 60)
		snprintf(buf, size, "%.1fs", s);
	else if (s < 3600)
		snprintf(buf, size, "%dm%02ds", (int)s / 60, (int)s % 60);
	else
		snprintf(buf, size, "%dh%02dm", (int)s / 3600, (int)s % 3600 / 60);
}

static void print_json(json_t *j)
{
	char *s = json_dumps(j, JSON_INDENT(2));

	if (s)
		puts(s);
	free(s);
}

/* ---- list ---- */

/* Runtime directories only: the base also holds files of its own (e.g. a KVM probe cache). */
static int is_vm_dir(const struct dirent *e)
{
	char path[PATH_MAX];
	struct stat st;

	if (e->d_name[0] == '.')
		return 0;
	if (e->d_type != DT_UNKNOWN)
		return e->d_type == DT_DIR;
	snprintf(path, sizeof(path), "%s/%s", ks_vm_rundir_base(), e->d_name);
	return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

/* One VM's line (or JSON object), cleaning up after it if its supervisor died. */
static json_t *list_one(const struct vm_cmd *cmd, const char *name)
{
	char dir[PATH_MAX], note[PATH_MAX + 128];
	struct ks_error err = { 0 };
	struct ks_ctl_client *c;
	json_t *r = NULL;
	int reaped;

	vm_rundir(name, dir, sizeof(dir));
	if ((reaped = vm_reap_if_dead(name, note, sizeof(note))) != 0)
		return json_pack("{s:s,s:s,s:s}", "name", name, "state",
				 reaped > 0 ? "dead" : "unknown", "note", note);
	if (ks_supervisor_probe(dir, NULL) == KS_SUPERVISOR_STARTING)
		return json_pack("{s:s,s:s}", "name", name, "state", "starting");
	(void)cmd;
	if (!(c = ks_ctl_connect(dir, 2 * SEC, &err)) ||
	    ks_ctl_call(c, json_pack("{s:s}", "cmd", "status"), &r, CALL_NS, &err) < 0) {
		ks_ctl_client_free(c);
		json_decref(r);
		return json_pack("{s:s,s:s,s:s}", "name", name, "state", "unreachable", "note",
				 err.msg);
	}
	ks_ctl_client_free(c);
	json_object_del(r, "id");
	json_object_del(r, "ok");
	return r;
}

static void print_list(json_t *all)
{
	size_t i;
	json_t *v;

	printf("%-20s %-11s %-5s %-9s %s\n", "NAME", "STATE", "ACCEL", "QEMU-PID", "UPTIME");
	json_array_foreach(all, i, v) {
		char up[32] = "-", pid[16] = "-";
		json_t *note = json_object_get(v, "note");

		if (json_object_get(v, "uptime_s"))
			format_uptime(json_real_value(json_object_get(v, "uptime_s")), up,
				      sizeof(up));
		if (json_object_get(v, "qemu_pid"))
			snprintf(pid, sizeof(pid), "%lld", num(v, "qemu_pid"));
		printf("%-20s %-11s %-5s %-9s %s%s%s\n", str(v, "name"), str(v, "state"),
		       str(v, "accel"), pid, up, note ? "  " : "", note ? str(v, "note") : "");
	}
}

int vm_cmd_list(const struct vm_cmd *cmd, int argc, char **argv)
{
	struct dirent **names = NULL;
	struct vm_args a;
	json_t *all;
	int rc = parse_named(cmd, argc, argv, &a, 0, 0), n;

	if (rc != 0)
		return rc < 0 ? 0 : rc;
	all = json_array();
	n = scandir(ks_vm_rundir_base(), &names, is_vm_dir, alphasort);
	for (int i = 0; i < n; i++) {
		json_array_append_new(all, list_one(cmd, names[i]->d_name));
		free(names[i]);
	}
	free(names);
	if (vm_flags.json)
		print_json(all);
	else
		print_list(all);
	json_decref(all);
	return 0;
}

/* ---- status ---- */

static void print_cpus(json_t *r)
{
	json_t *topo = json_object_get(json_object_get(r, "spec"), "topology"), *cpu;
	size_t i;

	printf("cpus:        %lld (%lld sockets x %lld cores x %lld threads)\n", num(topo, "cpus"),
	       num(topo, "sockets"), num(topo, "cores"), num(topo, "threads"));
	json_array_foreach(json_object_get(r, "cpus"), i, cpu) {
		json_t *props = json_object_get(cpu, "props");

		printf("  cpu %lld:     socket %lld, core %lld, thread %lld", num(cpu, "cpu-index"),
		       num(props, "socket-id"), num(props, "core-id"), num(props, "thread-id"));
		if (json_object_get(props, "node-id"))
			printf(", node %lld", num(props, "node-id"));
		printf(" (host thread %lld)\n", num(cpu, "thread-id"));
	}
	if (json_object_get(r, "cpus_error"))
		printf("  (QEMU did not list them: %s)\n", str(r, "cpus_error"));
}

static void print_events(json_t *r)
{
	json_t *events = json_object_get(r, "events"), *e;
	size_t i, n = json_array_size(events);

	printf("events:     ");
	if (!n)
		printf(" none yet");
	json_array_foreach(events, i, e) {
		double ts = json_real_value(json_object_get(e, "ts"));
		time_t t = (time_t)ts;
		struct tm tm;
		char when[16];

		if (n > 8 && i < n - 8)
			continue;
		localtime_r(&t, &tm);
		strftime(when, sizeof(when), "%H:%M:%S", &tm);
		printf(" %s@%s.%03d", str(e, "event"), when, (int)((ts - (double)t) * 1000));
	}
	printf("\n");
}

static void print_status(json_t *r)
{
	json_t *spec = json_object_get(r, "spec"), *node;
	const char *why = json_string_value(json_object_get(r, "accel_reason"));
	char up[32];
	size_t i;

	format_uptime(json_real_value(json_object_get(r, "uptime_s")), up, sizeof(up));
	printf("name:        %s\n", str(r, "name"));
	printf("state:       %s (QEMU: %s)\n", str(r, "state"), str(r, "qemu_status"));
	printf("accel:       %s%s%s%s\n", str(r, "accel"), why ? " (" : "", why ? why : "",
	       why ? ")" : "");
	printf("qemu pid:    %lld\n", num(r, "qemu_pid"));
	printf("supervisor:  %lld\n", num(r, "supervisor_pid"));
	printf("uptime:      %s\n", up);
	printf("machine:     %s\n", str(spec, "machine"));
	print_cpus(r);
	printf("memory:      %lld MiB\n", num(spec, "memory_mib"));
	json_array_foreach(json_object_get(spec, "numa"), i, node)
		printf("  node %lld:    %lld MiB, cpus %s\n", num(node, "node"),
		       num(node, "memory_mib"), str(node, "cpus"));
	printf("kernel:      %s\n", str(spec, "kernel"));
	if (json_object_get(spec, "append"))
		printf("append:      %s\n", str(spec, "append"));
	printf("rundir:      %s\n", str(r, "rundir"));
	if (json_is_true(json_object_get(json_object_get(r, "outcome"), "panicked")))
		printf("panicked:    yes (the guest signalled a panic)\n");
	print_events(r);
}

int vm_cmd_status(const struct vm_cmd *cmd, int argc, char **argv)
{
	struct vm_args a;
	json_t *r;
	int rc = parse_named(cmd, argc, argv, &a, 1, 1);

	if (rc != 0)
		return rc < 0 ? 0 : rc;
	r = vm_request(cmd, a.pos[0], json_pack("{s:s}", "cmd", "status"), CALL_NS, &rc, NULL);
	if (!r)
		return rc;
	json_object_del(r, "id");
	json_object_del(r, "ok");
	if (vm_flags.json)
		print_json(r);
	else
		print_status(r);
	json_decref(r);
	return 0;
}

/* ---- pause, resume, reset, stop, destroy ---- */

/* Waits until the supervisor closes the connection: it does so once it has cleaned up. */
static void await_gone(struct ks_ctl_client *c)
{
	uint64_t end = ks_loop_now_ns() + GONE_NS;
	json_t *m = NULL;

	while (ks_loop_now_ns() < end && ks_ctl_read(c, &m, GONE_NS, NULL) == 0) {
		json_decref(m);
		m = NULL;
	}
}

int vm_cmd_simple(const struct vm_cmd *cmd, int argc, char **argv)
{
	bool ends = !strcmp(cmd->name, "stop") || !strcmp(cmd->name, "destroy");
	struct ks_ctl_client *c = NULL;
	struct vm_args a;
	json_t *r;
	int rc = parse_named(cmd, argc, argv, &a, 1, 1);

	if (rc != 0)
		return rc < 0 ? 0 : rc;
	r = vm_request(cmd, a.pos[0], json_pack("{s:s}", "cmd", cmd->name), CALL_NS, &rc,
		       ends ? &c : NULL);
	if (!r)
		return rc;
	if (ends)
		await_gone(c);
	if (json_object_get(r, "outcome") && !ends)
		printf("%s: resumed, then ended (%s)\n", a.pos[0], str(r, "outcome"));
	else if (json_object_get(r, "state"))
		printf("%s: %s\n", a.pos[0], str(r, "state"));
	else if (ends)
		printf("%s: %s (%s)\n", a.pos[0], !strcmp(cmd->name, "stop") ? "stopped"
		       : "destroyed", str(r, "outcome"));
	else
		printf("%s: reset\n", a.pos[0]);
	ks_ctl_client_free(c);
	json_decref(r);
	return 0;
}

/* ---- snapshot ---- */

static void print_snapshots(json_t *r)
{
	json_t *list = json_object_get(r, "snapshots"), *s;
	size_t i;

	if (vm_flags.json) {
		print_json(list);
		return;
	}
	if (!json_array_size(list)) {
		printf("no snapshots\n");
		return;
	}
	printf("%-24s %12s %12s  %s\n", "TAG", "DEVICES", "RAM", "DATE");
	json_array_foreach(list, i, s)
		printf("%-24s %8lld KiB %8lld KiB  %s\n", str(s, "tag"),
		       num(s, "vm_state_size") / 1024, num(s, "ram_size") / 1024, str(s, "date"));
}

int vm_cmd_snapshot(const struct vm_cmd *cmd, int argc, char **argv)
{
	static const char *const done[][2] = {
		{ "save", "saved" }, { "load", "loaded" }, { "delete", "deleted" },
	};
	struct vm_args a;
	const char *action;
	json_t *r;
	int rc = parse_named(cmd, argc, argv, &a, 2, 3);

	if (rc != 0)
		return rc < 0 ? 0 : rc;
	action = a.pos[1];
	if (strcmp(action, "list") && strcmp(action, "save") && strcmp(action, "load") &&
	    strcmp(action, "delete")) {
		fprintf(stderr, "kscope vm snapshot: unknown action '%s' (use save, load, list "
			"or delete)\n", action);
		return 2;
	}
	if ((a.npos == 3) != !!strcmp(action, "list")) {
		fprintf(stderr, "kscope vm snapshot: %s %s\n", action, strcmp(action, "list")
			? "needs a TAG" : "takes no TAG");
		return 2;
	}
	r = vm_request(cmd, a.pos[0], json_pack("{s:s,s:s,s:s?}", "cmd", "snapshot", "action",
						action, "tag", a.npos == 3 ? a.pos[2] : NULL),
		       SNAPSHOT_NS, &rc, NULL);
	if (!r)
		return rc;
	for (size_t i = 0; i < sizeof(done) / sizeof(done[0]); i++)
		if (!strcmp(action, done[i][0]))
			printf("%s: %s snapshot '%s'\n", a.pos[0], done[i][1], a.pos[2]);
	if (!strcmp(action, "list"))
		print_snapshots(r);
	json_decref(r);
	return 0;
}

/* ---- console ---- */

static volatile sig_atomic_t interrupted;

static void on_interrupt(int sig)
{
	(void)sig;
	interrupted = 1;
}

static void print_line(json_t *m)
{
	const char *text = json_string_value(json_object_get(m, "line"));

	if (text) {
		fputs(text, stdout);
		fputc('\n', stdout);
	}
}

/* Prints streamed lines until the VM ends, the supervisor goes, or Ctrl-C. */
static int follow(const char *name, struct ks_ctl_client *c)
{
	struct ks_error err = { 0 };
	json_t *m = NULL;
	int rc;

	while ((rc = ks_ctl_read(c, &m, -1, &err)) == 0) {
		if (json_object_get(m, "end")) {
			fflush(stdout);
			fprintf(stderr, "kscope vm console: VM '%s' ended: %s\n", name,
				str(m, "end"));
			json_decref(m);
			return 0;
		}
		print_line(m);
		fflush(stdout);
		json_decref(m);
	}
	if (rc == -EINTR && interrupted)
		return 0;
	fprintf(stderr, "kscope vm console: %s\n", err.msg);
	return 1;
}

int vm_cmd_console(const struct vm_cmd *cmd, int argc, char **argv)
{
	struct sigaction sa = { .sa_handler = on_interrupt };
	struct ks_ctl_client *c = NULL;
	struct vm_args a;
	long tail = 100;
	char *end;
	json_t *r, *line;
	size_t i;
	int rc = parse_named(cmd, argc, argv, &a, 1, 1);

	if (rc != 0)
		return rc < 0 ? 0 : rc;
	if (vm_flags.tail && ((tail = strtol(vm_flags.tail, &end, 10)) < 0 || *end ||
			      end == vm_flags.tail)) {
		fprintf(stderr, "kscope vm console: --tail: expected a number of lines\n");
		return 2;
	}
	/* No SA_RESTART: Ctrl-C interrupts the wait, and the command ends cleanly. */
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	r = vm_request(cmd, a.pos[0], json_pack("{s:s,s:i,s:b}", "cmd", "console", "tail",
						(int)tail, "follow", !vm_flags.no_follow),
		       CALL_NS, &rc, &c);
	if (!r)
		return rc;
	json_array_foreach(json_object_get(r, "lines"), i, line)
		print_line(line);
	fflush(stdout);
	rc = vm_flags.no_follow ? 0 : follow(a.pos[0], c);
	json_decref(r);
	ks_ctl_client_free(c);
	return rc;
}

/* ---- qmp ---- */

int vm_cmd_qmp(const struct vm_cmd *cmd, int argc, char **argv)
{
	struct vm_args a;
	json_error_t je;
	json_t *qmp, *r;
	int rc = parse_named(cmd, argc, argv, &a, 2, 2);

	if (rc != 0)
		return rc < 0 ? 0 : rc;
	qmp = json_loads(a.pos[1], 0, &je);
	if (!json_is_object(qmp) || !json_is_string(json_object_get(qmp, "execute"))) {
		fprintf(stderr, "kscope vm qmp: not a QMP command: %s (write it like "
			"'{\"execute\":\"query-status\"}')\n",
			qmp ? "no \"execute\" name" : je.text);
		json_decref(qmp);
		return 2;
	}
	r = vm_request(cmd, a.pos[0], json_pack("{s:s,s:o}", "cmd", "qmp", "command", qmp),
		       CALL_NS, &rc, NULL);
	if (!r)
		return rc;
	print_json(json_object_get(r, "reply"));
	rc = json_object_get(json_object_get(r, "reply"), "return") ? 0 : 1;
	json_decref(r);
	return rc;
}
