/* cmd_step.c: `kscope step`: one instruction on one vCPU of a paused VM. */
#include <stdio.h>

#include "commands.h"
#include "inspect_cli.h"

#define SEC 1000000000ll
#define CALL_NS (15 * SEC)

static const struct ins_opt step_opts[] = {
	{ "cpu", 0, "N", "step vCPU N (default 0); the others stay where they are",
	  &ins_flags.cpu },
	{ "json", 0, NULL, "print the supervisor's reply (rip, symbol, registers) as JSON",
	  &ins_flags.json },
	{ NULL, 0, NULL, NULL, NULL },
};

static const struct ins_cmd step_cmd = {
	"step", "NAME [--cpu N]",
	"Executes one instruction on one vCPU of VM NAME, which must be paused (kscope vm pause,\n"
	"or a pause rule of kscope events), and prints where the vCPU is then: its rip and the\n"
	"symbol that holds it. While kscope events watches the VM the step goes through its\n"
	"monitor: a vCPU held at one of the monitor's breakpoints steps over it, and an event\n"
	"the step causes (a watchpoint) is reported. kscope vm resume NAME continues.",
	step_opts, 1, 1,
};

int cmd_step(int argc, char **argv)
{
	struct ins_args a;
	const char *sym;
	json_t *req, *r;
	long cpu;
	int rc = ins_parse(&step_cmd, argc, argv, &a);

	if (rc != 0 || (rc = ins_cpu(&step_cmd, &cpu)) != 0)
		return rc < 0 ? 0 : rc;
	req = json_pack("{s:s}", "cmd", "step");
	if (cpu >= 0)
		json_object_set_new(req, "cpu", json_integer(cpu));
	if (!(r = ins_call(&step_cmd, a.pos[0], req, CALL_NS, &rc)))
		return rc;
	if (ins_flags.json) {
		ins_print_json(r);
	} else {
		sym = json_string_value(json_object_get(r, "symbol"));
		printf("vCPU %lld: rip 0x%016llx%s%s%s\n",
		       json_integer_value(json_object_get(r, "cpu")),
		       (unsigned long long)ins_hex(r, "rip"), sym ? " <" : "", sym ? sym : "",
		       sym ? ">" : "");
	}
	json_decref(r);
	return 0;
}
