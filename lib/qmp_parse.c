/* qmp_parse.c: QMP messages from received lines, and the rule that tells failed HMP output. */
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include <kscope/qmp.h>

#include "qmp_internal.h"

const char *ks_qmp_excerpt(const char *line, size_t len, char *buf, size_t size)
{
	size_t n = len < size - 4 ? len : size - 4;

	for (size_t i = 0; i < n; i++)
		buf[i] = line[i] >= 0x20 && line[i] < 0x7f ? line[i] : '?';
	strcpy(buf + n, len > n ? "..." : "");
	return buf;
}

static const char *json_kind(const json_t *j)
{
	static const char *const names[] = {
		[JSON_OBJECT] = "an object", [JSON_ARRAY] = "an array", [JSON_STRING] = "a string",
		[JSON_INTEGER] = "a number", [JSON_REAL] = "a number", [JSON_TRUE] = "true",
		[JSON_FALSE] = "false", [JSON_NULL] = "null",
	};

	return names[json_typeof(j)];
}

static int64_t timestamp_us(json_t *obj)
{
	json_t *ts = json_object_get(obj, "timestamp");
	json_t *s = json_object_get(ts, "seconds"), *us = json_object_get(ts, "microseconds");

	if (!json_is_integer(s) || !json_is_integer(us) || json_integer_value(s) < 0 ||
	    json_integer_value(s) > INT64_MAX / 2000000 || json_integer_value(us) < 0 ||
	    json_integer_value(us) >= 1000000)
		return -1;
	return json_integer_value(s) * 1000000 + json_integer_value(us);
}

/* Sorts a parsed object into one of the four kinds; returns NULL or what is wrong. */
static const char *classify(struct ks_qmp_msg *m)
{
	json_t *o = m->obj, *v;

	m->id = json_object_get(o, "id");
	if ((v = json_object_get(o, "QMP"))) {
		m->kind = KS_QMP_GREETING;
		m->body = v;
		return json_is_object(v) ? NULL : "greeting whose \"QMP\" is not an object";
	}
	if ((v = json_object_get(o, "event"))) {
		m->kind = KS_QMP_EVENT;
		m->event = json_string_value(v);
		m->body = json_object_get(o, "data");
		m->ts_us = timestamp_us(o);
		return m->event ? NULL : "event whose name is not a string";
	}
	if ((v = json_object_get(o, "return"))) {
		m->kind = KS_QMP_RETURN;
		m->body = v;
		return NULL;
	}
	if ((v = json_object_get(o, "error"))) {
		m->kind = KS_QMP_ERROR;
		m->body = v;
		m->err_class = json_string_value(json_object_get(v, "class"));
		m->err_desc = json_string_value(json_object_get(v, "desc"));
		return m->err_class && m->err_desc ? NULL : "error without string class and desc";
	}
	return "object with none of the members QMP, return, error, event";
}

int ks_qmp_parse_line(const char *line, size_t len, struct ks_qmp_msg *msg,
		      struct ks_error *err)
{
	json_error_t jerr;
	const char *what;
	char show[KS_QMP_SHOW];

	memset(msg, 0, sizeof(*msg));
	msg->ts_us = -1;
	msg->obj = json_loadb(line, len, JSON_DECODE_ANY, &jerr);
	if (!msg->obj)
		return ks_error_set(err, -EPROTO, "qmp: malformed JSON (%s, column %d): %s",
				    jerr.text, jerr.column, ks_qmp_excerpt(line, len, show, sizeof(show)));
	if (!json_is_object(msg->obj)) {
		ks_error_set(err, -EPROTO, "qmp: message is %s, not an object: %s",
			     json_kind(msg->obj), ks_qmp_excerpt(line, len, show, sizeof(show)));
		goto out;
	}
	what = classify(msg);
	if (!what)
		return 0;
	ks_error_set(err, -EPROTO, "qmp: %s: %s", what, ks_qmp_excerpt(line, len, show, sizeof(show)));
out:
	ks_qmp_msg_clear(msg);
	return -EPROTO;
}

void ks_qmp_msg_clear(struct ks_qmp_msg *msg)
{
	json_decref(msg->obj);
	memset(msg, 0, sizeof(*msg));
}

/* ---- HMP output ---- */

static bool starts_with_any(const char *s, const char *const *list, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!strncmp(s, list[i], strlen(list[i])))
			return true;
	return false;
}

#define N(a) (sizeof(a) / sizeof((a)[0]))

bool ks_qmp_hmp_failed(const char *out)
{
	static const char *const first[] = {
		"Error", "unknown command:", "invalid ", "Invalid ", "unexpected end of expression",
		"Could not ", "could not ", "Failed to ", "failed to ", "Device '",
		"No block device", "no block device", "Parameter '",
	};
	static const char *const any[] = { "Error:", "Try \"help " };
	static const char *const anywhere[] = { "Cannot access memory", "Could not open" };
	const char *line = out + strspn(out, " \t\r\n");

	if (starts_with_any(line, first, N(first)))
		return true;
	for (size_t i = 0; i < N(anywhere); i++)
		if (strstr(out, anywhere[i]))
			return true;
	for (; line; line = strchr(line, '\n')) {
		line += strspn(line, " \t\r\n");
		if (starts_with_any(line, any, N(any)))
			return true;
	}
	return false;
}
