/* mhd_dl.h: libmicrohttpd, opened on its first use (web/mhd_dl.c defines its MHD_ functions). */
#ifndef KSCOPE_WEB_MHD_DL_H
#define KSCOPE_WEB_MHD_DL_H

/*
 * Loads libmicrohttpd if not yet done. NULL when it is there with every function kscope
 * calls, else why not: "cannot load libmicrohttpd.so.N: <dlerror()>". While it is missing
 * the MHD_ functions fail as on bad input (MHD_start_daemon() returns NULL), so an error
 * path that sees a failure asks here for the reason.
 */
const char *ks_mhd_load_error(void);

#endif
