/* supervisor_private.h: the ks_supervisor structure, shared by the supervisor's files. */
#ifndef KSCOPE_SUPERVISOR_PRIVATE_H
#define KSCOPE_SUPERVISOR_PRIVATE_H

#include <limits.h>

#include <jansson.h>

#include <kscope/chan.h>
#include <kscope/ctl.h>
#include <kscope/supervisor.h>

#define SUP_EVENTS 32

struct sup_inspect;
struct sup_monitor;

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
	struct sup_inspect *inspect;  /* RAM mapping, symbols, gdb client (supervisor_inspect.c) */
	struct sup_monitor *monitor;  /* the event monitor of an events client, or NULL
				       * (supervisor_events.c) */
};

/* The control commands (supervisor_cmds.c). */
extern const struct ks_ctl_command ks_supervisor_commands[];

/*
 * Introspection (supervisor_inspect.c): loads the symbols of symbols, or else of kernel
 * (a kernel without a symbol table is no error: lookups fail later, saying why). Returns
 * NULL with err filled only when symbols cannot be loaded, or without memory.
 */
struct sup_inspect *sup_inspect_new(const char *kernel, const char *symbols,
				    struct ks_error *err);

/* Tells the gdb client, if any, that the VM runs again (QEMU does not tell it). */
void sup_inspect_resumed(struct ks_supervisor *s);

/* Detaches the gdb client, unmaps the RAM, frees the symbols. NULL is fine. */
void sup_inspect_free(struct sup_inspect *in);

/* The introspection commands (supervisor_inspect.c, supervisor_memory.c). */
int sup_h_regs(struct ks_ctl_conn *c, json_t *req, json_t *reply, struct ks_error *err,
	       void *data);
int sup_h_symbol(struct ks_ctl_conn *c, json_t *req, json_t *reply, struct ks_error *err,
		 void *data);
int sup_h_ktstate(struct ks_ctl_conn *c, json_t *req, json_t *reply, struct ks_error *err,
		  void *data);
int sup_h_read(struct ks_ctl_conn *c, json_t *req, json_t *reply, struct ks_error *err,
	       void *data);
int sup_h_write(struct ks_ctl_conn *c, json_t *req, json_t *reply, struct ks_error *err,
		void *data);
int sup_h_vtop(struct ks_ctl_conn *c, json_t *req, json_t *reply, struct ks_error *err,
	       void *data);
int sup_h_pagemap(struct ks_ctl_conn *c, json_t *req, json_t *reply, struct ks_error *err,
		  void *data);
int sup_h_dump(struct ks_ctl_conn *c, json_t *req, json_t *reply, struct ks_error *err,
	       void *data);

/*
 * The event monitor (supervisor_events.c). One events client at a time has one; while it
 * does, the VM runs and pauses only through the monitor, and the gdb client is the monitor's.
 */

/* True while a monitor watches the VM. */
bool sup_monitor_attached(const struct ks_supervisor *s);

/* True when c is the events client's connection (it takes no other stream). */
bool sup_monitor_client(const struct ks_supervisor *s, const struct ks_ctl_conn *c);

/* "running", "paused" or "ended": the monitor's view while one is attached (the VM stops at
 * each of its breakpoints without being paused), else the VM's. */
const char *sup_run_state(struct ks_supervisor *s);

/* The pause and resume commands while a monitor is attached: the VM pauses until resumed,
 * even when the events client leaves. 0 or -errno with err filled. */
int sup_monitor_pause(struct ks_supervisor *s, struct ks_error *err);
int sup_monitor_resume(struct ks_supervisor *s, struct ks_error *err);

/*
 * Holds the VM paused for an access (registers, memory) while a monitor is attached: a VM
 * already paused stays as it is, a running one is paused until the last hold ends. *paused
 * says whether this call paused it. On 0, call sup_monitor_release() afterwards.
 */
int sup_monitor_hold(struct ks_supervisor *s, bool *paused, struct ks_error *err);
void sup_monitor_release(struct ks_supervisor *s);

/* Passes a QMP event (NULL: the VM ended) to the monitor and tells its client. */
void sup_monitor_vm_event(struct ks_supervisor *s, const char *event);

/*
 * The control server's deferral (ks_ctl_server_set_defer(), data the supervisor): while a
 * monitor is attached a request must not run under its work (a gdb exchange, a step) or
 * another request's, which would meet the gdb client busy and the VM between two states.
 */
bool sup_monitor_defer(void *data);

/* From the top of the loop only (no handler or callback under it): detaches the monitor of
 * an events client that left. */
void sup_monitor_reap(struct ks_supervisor *s);

/* Frees the monitor without touching the VM, which is ending. NULL monitor is fine. */
void sup_monitor_free(struct ks_supervisor *s);

int sup_h_events(struct ks_ctl_conn *c, json_t *req, json_t *reply, struct ks_error *err,
		 void *data);
int sup_h_step(struct ks_ctl_conn *c, json_t *req, json_t *reply, struct ks_error *err,
	       void *data);

/* A JSON string of len bytes of guest text, bytes that are not printable UTF-8 made '?'. */
json_t *sup_text(const char *text, size_t len);

/* Notes a line in the supervisor's log, if it has one. */
__attribute__((format(printf, 2, 3)))
void sup_log(struct ks_supervisor *s, const char *fmt, ...);

#endif
