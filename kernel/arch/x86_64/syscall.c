/* syscall.c: syscall/sysret set-up, the system calls, and running a ring-3 task. */
#include <stdint.h>

#include <arch/cpu.h>
#include <arch/layout.h>
#include <arch/paging.h>
#include <arch/smp.h>
#include <arch/syscall.h>
#include <arch/trap.h>
#include <arch/x86.h>
#include <kern/errno.h>
#include <kern/palloc.h>
#include <kern/string.h>
#include <kt/ktest.h>

#define SFMASK_BITS 0x47700 /* TF, IF, DF, IOPL, NT, AC: cleared on SYSCALL */

extern char user_blob_start[], user_blob_end[];
extern char user_prog_hello[], user_prog_getcpu[], user_prog_add[], user_prog_efault[],
	user_prog_kread[], user_prog_priv[], user_prog_regs[], user_prog_badsys[],
	user_prog_spin[];
extern void syscall_entry(void);
__attribute__((noreturn)) void user_enter(uint64_t rip, uint64_t rsp, uint64_t arg);

static char *const prog_entry[USER_NPROGS] = {
	[USER_HELLO] = user_prog_hello,   [USER_GETCPU] = user_prog_getcpu,
	[USER_ADD] = user_prog_add,       [USER_EFAULT] = user_prog_efault,
	[USER_KREAD] = user_prog_kread,   [USER_PRIV] = user_prog_priv,
	[USER_REGS] = user_prog_regs,     [USER_BADSYS] = user_prog_badsys,
	[USER_SPIN] = user_prog_spin,
};

/* The task running on a CPU: where user_run() waits for it. */
struct user_task {
	kt_jmp_buf jmp;
	struct user_result *res;
};

static struct {
	char buf[USER_LOG_SIZE];
	size_t len;
} logs[MAX_CPUS];

static bool user_ready;
static uint64_t code_pa;
static uint64_t data_pa;
static uint64_t stack_pa[MAX_CPUS];
static unsigned int nstacks;

void syscall_cpu_init(void)
{
	wrmsr(MSR_EFER, rdmsr(MSR_EFER) | EFER_SCE);
	/* SYSCALL loads CS = SEL_KCODE, SS = +8; SYSRET CS = 0x10 + 16 | 3 = SEL_UCODE and
	 * SS = 0x10 + 8 | 3 = SEL_UDATA. */
	wrmsr(MSR_STAR, (uint64_t)0x10 << 48 | (uint64_t)SEL_KCODE << 32);
	wrmsr(MSR_LSTAR, (uint64_t)syscall_entry);
	wrmsr(MSR_SFMASK, SFMASK_BITS);
}

static uint64_t stack_page(unsigned int cpu)
{
	return USER_STACK_TOP - cpu * USER_STACK_STRIDE - PAGE_SIZE;
}

void user_space_fini(void)
{
	for (unsigned int i = 0; i < nstacks; i++) {
		if (stack_pa[i] && !paging_unmap(stack_page(i), NULL))
			palloc_free(stack_pa[i]);
		stack_pa[i] = 0;
	}
	nstacks = 0;
	if (data_pa && !paging_unmap(USER_DATA_VA, NULL))
		palloc_free(data_pa);
	data_pa = 0;
	if (code_pa && !paging_unmap(USER_CODE_VA, NULL))
		palloc_free(code_pa);
	code_pa = 0;
	user_ready = false;
}

int user_space_init(void)
{
	size_t size = (size_t)(user_blob_end - user_blob_start);
	uint64_t nx = cpu_nx_enabled() ? PTE_NX : 0;

	if (user_ready)
		return 0;
	if (size > PAGE_SIZE)
		return -EINVAL;
	code_pa = palloc_alloc_zeroed();
	if (!code_pa)
		goto fail;
	memcpy(phys_to_virt(code_pa), user_blob_start, size);
	/* Read-only and executable for ring 3. */
	if (paging_map(USER_CODE_VA, code_pa, PTE_U))
		goto fail;
	data_pa = palloc_alloc_zeroed();
	if (!data_pa)
		goto fail;
	if (paging_map(USER_DATA_VA, data_pa, PTE_U | PTE_W | nx)) {
		palloc_free(data_pa);
		data_pa = 0;
		goto fail;
	}
	for (nstacks = 0; nstacks < smp_cpu_count(); nstacks++) {
		stack_pa[nstacks] = palloc_alloc_zeroed();
		if (!stack_pa[nstacks] ||
		    paging_map(stack_page(nstacks), stack_pa[nstacks], PTE_U | PTE_W | nx)) {
			if (stack_pa[nstacks])
				palloc_free(stack_pa[nstacks]);
			stack_pa[nstacks] = 0;
			goto fail;
		}
	}
	user_ready = true;
	return 0;
fail:
	user_space_fini();
	return -ENOMEM;
}

int user_run(enum user_prog prog, uint64_t arg, struct user_result *res)
{
	struct percpu *c = this_cpu();
	struct user_task task = { .res = res };

	if (!user_ready || (unsigned int)prog >= USER_NPROGS || c->index >= nstacks)
		return -EINVAL;
	logs[c->index].len = 0;
	logs[c->index].buf[0] = '\0';
	*res = (struct user_result){ 0 };
	uint64_t flags = irq_save();
	c->user = &task;
	if (kt_setjmp(task.jmp) == 0)
		user_enter(USER_CODE_VA + (uint64_t)(prog_entry[prog] - user_blob_start),
			   stack_page(c->index) + PAGE_SIZE, arg);
	/* Back from SYS_EXIT or user_fault(), on this stack again. */
	c->user = NULL;
	irq_restore(flags);
	return 0;
}

uint64_t user_data_pa(void)
{
	return data_pa;
}

const char *user_log(void)
{
	return logs[this_cpu()->index].buf;
}

int copy_from_user(void *dst, uint64_t src, size_t n)
{
	struct trap_catch c;

	if (n == 0)
		return 0;
	if (src >= USER_TOP || n > USER_TOP - src)
		return -EFAULT;
	if (TRAP_TRY(&c)) {
		if (cpu_smap_enabled())
			__asm__ volatile("stac" ::: "memory");
		memcpy(dst, (const void *)src, n);
		if (cpu_smap_enabled())
			__asm__ volatile("clac" ::: "memory");
		trap_catch_disarm(&c);
		return 0;
	}
	if (cpu_smap_enabled())
		__asm__ volatile("clac" ::: "memory");
	return -EFAULT;
}

static long sys_write(uint64_t buf, uint64_t len)
{
	unsigned int cpu = this_cpu()->index;
	size_t room = USER_LOG_SIZE - 1 - logs[cpu].len;
	size_t n = len < room ? (size_t)len : room;

	int r = copy_from_user(logs[cpu].buf + logs[cpu].len, buf, n);

	/* A copy that faulted half-way wrote part of the buffer: cut it off again. */
	if (!r)
		logs[cpu].len += n;
	logs[cpu].buf[logs[cpu].len] = '\0';
	return r ? r : (long)n;
}

__attribute__((noreturn)) static void sys_exit(long code)
{
	struct user_task *task = this_cpu()->user;

	task->res->code = code;
	kt_longjmp(task->jmp, 1);
}

long syscall_dispatch(long nr, long a0, long a1, long a2)
{
	(void)a2;
	switch (nr) {
	case SYS_WRITE:
		return sys_write((uint64_t)a0, (uint64_t)a1);
	case SYS_GETCPU:
		return (long)this_cpu()->index;
	case SYS_ADD:
		return a0 + a1;
	case SYS_EXIT:
		sys_exit(a0);
	default:
		return -ENOSYS;
	}
}

void user_fault(const struct trap_frame *f)
{
	struct user_task *task = this_cpu()->user;

	if (!task)
		panic_trap(f);
	task->res->killed = 1;
	task->res->vector = (int)f->vector;
	task->res->error = f->error;
	task->res->cr2 = f->vector == VEC_PF ? read_cr2() : 0;
	task->res->rip = f->rip;
	kt_longjmp(task->jmp, 2);
}
