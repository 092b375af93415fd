/*
 * mhd_dl.c: libmicrohttpd, opened on its first use. Only the dashboard serves HTTP, and loading
 * the library (gnutls and its constructors come with it) would cost every kscope process
 * well over a millisecond.
 *
 * The functions kscope calls are defined here with the prototypes of <microhttpd.h>, so callers
 * are unchanged; each forwards to the library's own, resolved once by dlsym().
 */
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include <microhttpd.h>

#include <kscope/dlib.h>

#include "mhd_dl.h"

/* Meson reads the SONAME from the libmicrohttpd.so installed with the headers compiled here. */
#ifndef KS_MHD_SONAME
#error "KS_MHD_SONAME must name the libmicrohttpd library to open (meson defines it)"
#endif

/* The library's functions, typed from the headers; all set by load(), or none usable. */
static struct {
	__typeof__(&MHD_add_response_header) add_response_header;
	__typeof__(&MHD_create_response_from_buffer) create_response_from_buffer;
	__typeof__(&MHD_create_response_from_callback) create_response_from_callback;
	__typeof__(&MHD_destroy_response) destroy_response;
	__typeof__(&MHD_get_connection_info) get_connection_info;
	__typeof__(&MHD_get_daemon_info) get_daemon_info;
	__typeof__(&MHD_get_timeout) get_timeout;
	__typeof__(&MHD_lookup_connection_value) lookup_connection_value;
	__typeof__(&MHD_queue_response) queue_response;
	__typeof__(&MHD_resume_connection) resume_connection;
	__typeof__(&MHD_run) run;
	__typeof__(&MHD_start_daemon_va) start_daemon_va;
	__typeof__(&MHD_stop_daemon) stop_daemon;
	__typeof__(&MHD_suspend_connection) suspend_connection;
} fn;

/* Each function's name in the library and where its address goes. */
static const struct ks_dlib_sym syms[] = {
	{ "MHD_add_response_header", &fn.add_response_header },
	{ "MHD_create_response_from_buffer", &fn.create_response_from_buffer },
	{ "MHD_create_response_from_callback", &fn.create_response_from_callback },
	{ "MHD_destroy_response", &fn.destroy_response },
	{ "MHD_get_connection_info", &fn.get_connection_info },
	{ "MHD_get_daemon_info", &fn.get_daemon_info },
	{ "MHD_get_timeout", &fn.get_timeout },
	{ "MHD_lookup_connection_value", &fn.lookup_connection_value },
	{ "MHD_queue_response", &fn.queue_response },
	{ "MHD_resume_connection", &fn.resume_connection },
	{ "MHD_run", &fn.run },
	{ "MHD_start_daemon_va", &fn.start_daemon_va },
	{ "MHD_stop_daemon", &fn.stop_daemon },
	{ "MHD_suspend_connection", &fn.suspend_connection },
};

/* pthread_once: kscope runs one thread, but a library's lazy load should not depend on it. */
static pthread_once_t once = PTHREAD_ONCE_INIT;
static bool loaded;
static char load_error[320];

/* Opens the library and resolves every function; on failure, says why in load_error. */
static void load(void)
{
	loaded = ks_dlib_load(KS_MHD_SONAME, syms, sizeof(syms) / sizeof(syms[0]),
			      load_error, sizeof(load_error));
}

/* True when the library is there with all its functions (loading it on the first call). */
static bool ready(void)
{
	pthread_once(&once, load);
	return loaded;
}

const char *ks_mhd_load_error(void)
{
	return ready() ? NULL : load_error;
}

/*
 * The stand-ins below, used while the library is missing, fail the way the library does on
 * bad input. Only MHD_start_daemon() can be reached then (no daemon, connection or response
 * exists without the library); its NULL sends the caller to ks_mhd_load_error().
 */

/* Forwards the options as a va_list to the library's MHD_start_daemon_va(). NULL without it. */
struct MHD_Daemon *MHD_start_daemon(unsigned int flags, uint16_t port,
				    MHD_AcceptPolicyCallback apc, void *apc_cls,
				    MHD_AccessHandlerCallback dh, void *dh_cls, ...)
{
	struct MHD_Daemon *d;
	va_list ap;

	if (!ready())
		return NULL;
	va_start(ap, dh_cls);
	d = fn.start_daemon_va(flags, port, apc, apc_cls, dh, dh_cls, ap);
	va_end(ap);
	return d;
}

/* Forwards to the library's MHD_stop_daemon(); nothing to stop without it. */
void MHD_stop_daemon(struct MHD_Daemon *daemon)
{
	if (ready())
		fn.stop_daemon(daemon);
}

/* Forwards to the library's MHD_run(); MHD_NO without it. */
enum MHD_Result MHD_run(struct MHD_Daemon *daemon)
{
	return ready() ? fn.run(daemon) : MHD_NO;
}

/* Forwards to the library's MHD_get_timeout(); MHD_NO (no timeout) without it. */
enum MHD_Result MHD_get_timeout(struct MHD_Daemon *daemon, MHD_UNSIGNED_LONG_LONG *timeout)
{
	return ready() ? fn.get_timeout(daemon, timeout) : MHD_NO;
}

/*
 * Forwards to the library's MHD_get_daemon_info(); NULL without it. The variadic arguments
 * are dropped: the library has no va_list form and reads none for any info type (kscope
 * passes none).
 */
const union MHD_DaemonInfo *MHD_get_daemon_info(struct MHD_Daemon *daemon,
						enum MHD_DaemonInfoType info_type, ...)
{
	return ready() ? fn.get_daemon_info(daemon, info_type) : NULL;
}

/* Forwards to the library's MHD_get_connection_info(); NULL without it. As for
 * MHD_get_daemon_info(), the variadic arguments are dropped: the library reads none. */
const union MHD_ConnectionInfo *MHD_get_connection_info(struct MHD_Connection *connection,
							enum MHD_ConnectionInfoType info_type,
							...)
{
	return ready() ? fn.get_connection_info(connection, info_type) : NULL;
}

/* Forwards to the library's MHD_lookup_connection_value(); NULL (no such value) without it. */
const char *MHD_lookup_connection_value(struct MHD_Connection *connection,
					enum MHD_ValueKind kind, const char *key)
{
	return ready() ? fn.lookup_connection_value(connection, kind, key) : NULL;
}

/* Forwards to the library's MHD_suspend_connection(); nothing to suspend without it. */
void MHD_suspend_connection(struct MHD_Connection *connection)
{
	if (ready())
		fn.suspend_connection(connection);
}

/* Forwards to the library's MHD_resume_connection(); nothing to resume without it. */
void MHD_resume_connection(struct MHD_Connection *connection)
{
	if (ready())
		fn.resume_connection(connection);
}

/* Forwards to the library's MHD_create_response_from_buffer(); NULL without it. */
struct MHD_Response *MHD_create_response_from_buffer(size_t size, void *buffer,
						     enum MHD_ResponseMemoryMode mode)
{
	return ready() ? fn.create_response_from_buffer(size, buffer, mode) : NULL;
}

/* Forwards to the library's MHD_create_response_from_callback(); NULL without it. */
struct MHD_Response *MHD_create_response_from_callback(uint64_t size, size_t block_size,
						       MHD_ContentReaderCallback crc,
						       void *crc_cls,
						       MHD_ContentReaderFreeCallback crfc)
{
	return ready() ? fn.create_response_from_callback(size, block_size, crc, crc_cls, crfc)
		       : NULL;
}

/* Forwards to the library's MHD_add_response_header(); MHD_NO without it. */
enum MHD_Result MHD_add_response_header(struct MHD_Response *response, const char *header,
					const char *content)
{
	return ready() ? fn.add_response_header(response, header, content) : MHD_NO;
}

/* Forwards to the library's MHD_queue_response(); MHD_NO without it. */
enum MHD_Result MHD_queue_response(struct MHD_Connection *connection, unsigned int status_code,
				   struct MHD_Response *response)
{
	return ready() ? fn.queue_response(connection, status_code, response) : MHD_NO;
}

/* Forwards to the library's MHD_destroy_response(); nothing to destroy without it. */
void MHD_destroy_response(struct MHD_Response *response)
{
	if (ready())
		fn.destroy_response(response);
}
