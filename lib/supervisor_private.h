/* supervisor_private.h: the ks_supervisor structure, shared by the supervisor's files. */
#ifndef KSCOPE_SUPERVISOR_PRIVATE_H
#define KSCOPE_SUPERVISOR_PRIVATE_H

#include <limits.h>

#include <jansson.h>

#include <kscope/chan.h>
#include <kscope/ctl.h>
#include <kscope/supervisor.h>

#define SUP_EVENTS 32

/* A QMP event as status reports it. */
struct sup_event {
	char name[32];
	int64_t wall_ns;
};

/* A control client following the console. */
struct sup_follower {
	struct ks_supervisor *s;
	struct ks_ctl_conn *c;
	json_t *id;
	struct sup_follower *next;
};

struct ks_supervisor {
	struct ks_loop *loop;
	struct ks_supervisor_opts opts;
	struct ks_vm *vm;
	struct ks_ctl_server *server;
	char rundir[PATH_MAX];
	char pid_path[PATH_MAX + 32];
	char ctl_path[PATH_MAX + 32];
	int lock_fd;
	struct ks_chan *console;
	int console_cb;
	int64_t timer;
	bool ended, timed_out, finished;
	struct ks_vm_outcome outcome;
	struct sup_event events[SUP_EVENTS];
	unsigned nevents;             /* events seen in all; the last SUP_EVENTS are kept */
	struct sup_follower *followers;
};

/* The control commands (supervisor_cmds.c). */
extern const struct ks_ctl_command ks_supervisor_commands[];

/* A JSON string of len bytes of guest text, bytes that are not printable UTF-8 made '?'. */
json_t *sup_text(const char *text, size_t len);

/* Notes a line in the supervisor's log, if it has one. */
__attribute__((format(printf, 2, 3)))
void sup_log(struct ks_supervisor *s, const char *fmt, ...);

#endif
