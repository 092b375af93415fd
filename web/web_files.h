/* web_files.h: the dashboard page's files, compiled in from web/static by web/embed.py. */
#ifndef KSCOPE_WEB_FILES_H
#define KSCOPE_WEB_FILES_H

#include "http.h"

/* "/index.html", "/app.js", "/style.css" with their content types; ends with path NULL. */
extern const struct ks_http_file ks_web_files[];

#endif
