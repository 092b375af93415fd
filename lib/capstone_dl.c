/*
 * capstone_dl.c: capstone, opened on its first use. Most kscope commands never disassemble, and
 * loading the library (some 90,000 relocations) would cost every process over a millisecond.
 *
 * The functions kscope calls are defined here with the prototypes of <capstone/capstone.h>, so
 * callers are unchanged; each forwards to the library's own, resolved once by dlsym().
 */
#include <pthread.h>
#include <stdbool.h>

#include <capstone/capstone.h>

#include <kscope/dlib.h>

/*
 * Meson reads the SONAME from the libcapstone.so installed with the headers compiled here:
 * capstone's ABI (cs_insn, cs_detail, the enums) changes with its major version, so only that
 * library matches them.
 */
#ifndef KS_CAPSTONE_SONAME
#error "KS_CAPSTONE_SONAME must name the capstone library to open (meson defines it)"
#endif

/* The library's functions, typed from the headers; all set by load(), or none usable. */
static struct {
	__typeof__(&cs_open) open;
	__typeof__(&cs_close) close;
	__typeof__(&cs_option) option;
	__typeof__(&cs_disasm_iter) disasm_iter;
	__typeof__(&cs_malloc) malloc;
	__typeof__(&cs_free) free;
	__typeof__(&cs_regs_access) regs_access;
	__typeof__(&cs_strerror) strerror;
} fn;

/* Each function's name in the library and where its address goes. */
static const struct ks_dlib_sym syms[] = {
	{ "cs_open", &fn.open },
	{ "cs_close", &fn.close },
	{ "cs_option", &fn.option },
	{ "cs_disasm_iter", &fn.disasm_iter },
	{ "cs_malloc", &fn.malloc },
	{ "cs_free", &fn.free },
	{ "cs_regs_access", &fn.regs_access },
	{ "cs_strerror", &fn.strerror },
};

/* pthread_once: kscope runs one thread, but a library's lazy load should not depend on it. */
static pthread_once_t once = PTHREAD_ONCE_INIT;
static bool loaded;
static char load_error[320];

/* Opens the library and resolves every function; on failure, says why in load_error. */
static void load(void)
{
	loaded = ks_dlib_load(KS_CAPSTONE_SONAME, syms, sizeof(syms) / sizeof(syms[0]),
			      load_error, sizeof(load_error));
}

/* True when the library is there with all its functions (loading it on the first call). */
static bool ready(void)
{
	pthread_once(&once, load);
	return loaded;
}

/*
 * Without the library no architecture is supported, hence CS_ERR_ARCH; cs_strerror() then
 * names the library and why it did not load.
 */
cs_err CAPSTONE_API cs_open(cs_arch arch, cs_mode mode, csh *handle)
{
	if (ready())
		return fn.open(arch, mode, handle);
	*handle = 0;
	return CS_ERR_ARCH;
}

/* Without the library no handle was ever opened: any is invalid (CS_ERR_CSH). */
cs_err CAPSTONE_API cs_close(csh *handle)
{
	return ready() ? fn.close(handle) : CS_ERR_CSH;
}

/* Without the library no handle was ever opened: any is invalid (CS_ERR_CSH). */
cs_err CAPSTONE_API cs_option(csh handle, cs_opt_type type, size_t value)
{
	return ready() ? fn.option(handle, type, value) : CS_ERR_CSH;
}

/* Without the library nothing decodes. */
bool CAPSTONE_API cs_disasm_iter(csh handle, const uint8_t **code, size_t *size,
				 uint64_t *address, cs_insn *insn)
{
	return ready() && fn.disasm_iter(handle, code, size, address, insn);
}

/* Without the library there is no handle to allocate for: NULL. */
cs_insn *CAPSTONE_API cs_malloc(csh handle)
{
	return ready() ? fn.malloc(handle) : NULL;
}

/* Without the library cs_malloc() gave nothing, so there is nothing to free. */
void CAPSTONE_API cs_free(cs_insn *insn, size_t count)
{
	if (ready())
		fn.free(insn, count);
}

/* Without the library no handle was ever opened: any is invalid (CS_ERR_CSH). */
cs_err CAPSTONE_API cs_regs_access(csh handle, const cs_insn *insn,
				   cs_regs regs_read, uint8_t *regs_read_count,
				   cs_regs regs_write, uint8_t *regs_write_count)
{
	return ready() ? fn.regs_access(handle, insn, regs_read, regs_read_count, regs_write,
					regs_write_count)
		       : CS_ERR_CSH;
}

/*
 * Without the library every error code came from the stand-ins above, so whatever the code,
 * the one cause is the failed load: "cannot load libcapstone.so.N: <dlerror()>".
 */
const char *CAPSTONE_API cs_strerror(cs_err code)
{
	return ready() ? fn.strerror(code) : load_error;
}
