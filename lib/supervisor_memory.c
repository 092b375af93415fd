/* supervisor_memory.c: the supervisor's guest-memory commands: read, write, vtop, pagemap, dump. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <kscope/inspect.h>

#include "inspect_internal.h"

#define PAGE 4096u
#define PAGEMAP_MAX 4096        /* ranges in one reply; "next" says where to go on */
#define DUMP_CHUNK (4u << 20)

/* Bytes at addr, physical or virtual as a says. */
static int read_at(struct ks_supervisor *s, const struct sup_access *a, uint64_t addr,
		   void *buf, size_t len, struct ks_error *err)
{
	if (a->phys)
		return ks_mem_read(s->inspect->mem, addr, buf, len, err);
	return ks_vtop_read(s->inspect->vtop, addr, buf, len, err);
}

/*
 * A string: page by page up to its NUL (included) or len bytes, so that a short string
 * before an unmapped page still reads. *got is what was read; only the first page may fail.
 */
static int read_string(struct ks_supervisor *s, const struct sup_access *a, uint8_t *buf,
		       size_t len, size_t *got, struct ks_error *err)
{
	size_t n = 0;

	while (n < len) {
		size_t chunk = PAGE - ((a->addr + n) & (PAGE - 1));
		int rc;

		chunk = chunk < len - n ? chunk : len - n;
		if ((rc = read_at(s, a, a->addr + n, buf + n, chunk, err)) < 0) {
			if (n)
				break;
			return rc;
		}
		uint8_t *nul = memchr(buf + n, 0, chunk);
		n = nul ? (size_t)(nul - buf) + 1 : n + chunk;
		if (nul)
			break;
	}
	*got = n;
	return 0;
}

/* The guest-physical address of a's first byte (its own address for physical accesses). */
static void add_pa(struct ks_supervisor *s, const struct sup_access *a, json_t *reply)
{
	uint64_t pa = a->addr;

	if (a->phys || ks_vtop_translate(s->inspect->vtop, a->addr, &pa, NULL) == 0)
		json_object_set_new(reply, "pa", sup_hex(pa));
}

/* {"addr", "len", "phys", "cpu", "pause", "to_nul"}: {"addr", "pa", "symbol", "data": hex}. */
int sup_h_read(struct ks_ctl_conn *c, json_t *req, json_t *reply, struct ks_error *err,
	       void *data)
{
	struct ks_supervisor *s = data;
	json_t *jlen = json_object_get(req, "len");
	bool to_nul = json_is_true(json_object_get(req, "to_nul"));
	struct sup_access a;
	uint8_t *buf = NULL;
	size_t len, got = 0;
	char *hex;
	int rc;

	(void)c;
	if ((rc = sup_access_parse(s, req, "read", "addr", &a, err)) < 0)
		return rc;
	if (!json_is_integer(jlen) || json_integer_value(jlen) < 1 ||
	    json_integer_value(jlen) > KS_INSPECT_MAX_READ)
		return ks_error_set(err, -EINVAL, "read: \"len\" must be 1 to %u bytes (kscope "
				    "dump writes more to a file)", KS_INSPECT_MAX_READ);
	len = (size_t)json_integer_value(jlen);
	if (!(buf = malloc(len)))
		return ks_error_set(err, -ENOMEM, "out of memory");
	if ((rc = sup_access_begin(s, &a, false, err)) == 0) {
		got = len;
		rc = to_nul ? read_string(s, &a, buf, len, &got, err)
			    : read_at(s, &a, a.addr, buf, len, err);
		if (rc == 0)
			add_pa(s, &a, reply);
	}
	sup_access_end(s, &a);
	if (rc == 0 && !(hex = ks_inspect_hex_encode(buf, got)))
		rc = ks_error_set(err, -ENOMEM, "out of memory");
	free(buf);
	if (rc < 0)
		return rc;
	json_object_set_new(reply, "addr", sup_hex(a.addr));
	if (!a.phys)
		sup_add_symbol(s, reply, a.addr);
	json_object_set_new(reply, "data", json_string(hex));
	free(hex);
	return 0;
}

/* ---- write ---- */

/* The width of a value stored at addr: the size of a symbol that starts there, if a value
 * can have it, else 8. */
static unsigned default_width(struct ks_supervisor *s, uint64_t addr)
{
	uint64_t off;
	const struct ks_sym *sym = s->inspect->syms ? ks_sym_at(s->inspect->syms, addr, &off)
						    : NULL;

	if (sym && !off && (sym->size == 1 || sym->size == 2 || sym->size == 4))
		return (unsigned)sym->size;
	return 8;
}

/* The bytes of a write request: "data" (hex), or "value" in "width" bytes, little-endian. */
static int write_bytes(struct ks_supervisor *s, json_t *req, uint64_t addr, uint8_t **b,
		       size_t *len, struct ks_error *err)
{
	const char *hex = json_string_value(json_object_get(req, "data"));
	const char *value = json_string_value(json_object_get(req, "value"));
	json_t *jw = json_object_get(req, "width");
	unsigned width = jw ? (unsigned)json_integer_value(jw) : default_width(s, addr);
	uint64_t v;
	int rc;

	if (hex) {
		if ((rc = ks_inspect_hex_decode(hex, b, len)) < 0 || !*len) {
			if (rc == 0)
				free(*b);
			return ks_error_set(err, -EINVAL, "write: \"data\" must be hex digits, "
					    "two per byte");
		}
		return 0;
	}
	if (!value)
		return ks_error_set(err, -EINVAL, "write: needs \"data\" (hex) or \"value\"");
	if (width != 1 && width != 2 && width != 4 && width != 8)
		return ks_error_set(err, -EINVAL, "bad width %lld (use 1, 2, 4 or 8 bytes)",
				    (long long)json_integer_value(jw));
	if ((rc = ks_inspect_parse_value(value, width, &v, err)) < 0)
		return rc;
	if (!(*b = malloc(8)))
		return ks_error_set(err, -ENOMEM, "out of memory");
	for (unsigned i = 0; i < width; i++)
		(*b)[i] = (uint8_t)(v >> (8 * i));
	*len = width;
	return 0;
}

/* Stores at gpa; a value of 2, 4 or 8 aligned bytes with one store, so that a running guest
 * never sees half of it. */
static int store(struct sup_inspect *in, uint64_t gpa, const uint8_t *b, size_t len,
		 struct ks_error *err)
{
	void *p = (len == 2 || len == 4 || len == 8) && gpa % len == 0
		  ? ks_mem_ptr(in->mem, gpa, len) : NULL;
	uint64_t v = 0;

	if (!p)
		return ks_mem_write(in->mem, gpa, b, len, err);
	memcpy(&v, b, len);
	if (len == 2)
		__atomic_store_n((uint16_t *)p, (uint16_t)v, __ATOMIC_SEQ_CST);
	else if (len == 4)
		__atomic_store_n((uint32_t *)p, (uint32_t)v, __ATOMIC_SEQ_CST);
	else
		__atomic_store_n((uint64_t *)p, v, __ATOMIC_SEQ_CST);
	return 0;
}

static int write_at(struct ks_supervisor *s, const struct sup_access *a, const uint8_t *b,
		    size_t len, struct ks_error *err)
{
	struct sup_inspect *in = s->inspect;
	uint64_t pa;

	if (a->phys)
		return store(in, a->addr, b, len, err);
	/* Within one page: one translation, then the store as for a physical address. */
	if ((a->addr & (PAGE - 1)) + len <= PAGE &&
	    ks_vtop_translate(in->vtop, a->addr, &pa, NULL) == 0)
		return store(in, pa, b, len, err);
	/* Across pages, or to say why the address does not translate. */
	return ks_vtop_write(in->vtop, a->addr, b, len, err);
}

/* {"addr", "phys", "cpu", "pause", and "data" (hex) or "value" ("0x..", decimal) with
 * "width" (default: the size of the symbol at addr if 1, 2 or 4, else 8)}:
 * {"addr", "pa", "len", "symbol"}. */
int sup_h_write(struct ks_ctl_conn *c, json_t *req, json_t *reply, struct ks_error *err,
		void *data)
{
	struct ks_supervisor *s = data;
	struct sup_access a;
	uint8_t *b = NULL;
	size_t len = 0;
	int rc;

	(void)c;
	if ((rc = sup_access_parse(s, req, "write", "addr", &a, err)) < 0 ||
	    (rc = write_bytes(s, req, a.addr, &b, &len, err)) < 0)
		return rc;
	if ((rc = sup_access_begin(s, &a, false, err)) == 0 &&
	    (rc = write_at(s, &a, b, len, err)) == 0)
		add_pa(s, &a, reply);
	sup_access_end(s, &a);
	free(b);
	if (rc < 0)
		return rc;
	json_object_set_new(reply, "addr", sup_hex(a.addr));
	json_object_set_new(reply, "len", json_integer((json_int_t)len));
	if (!a.phys)
		sup_add_symbol(s, reply, a.addr);
	return 0;
}

/* ---- page tables ---- */

static json_t *walk_json(const struct ks_vtop_result *r)
{
	json_t *levels = json_array(), *o;
	char flags[64];

	for (size_t i = 0; i < r->nentries; i++) {
		const struct ks_vtop_entry *e = &r->entries[i];

		json_array_append_new(levels, json_pack("{s:s,s:i,s:o,s:o,s:s}", "level",
							ks_vtop_level_name(e->level), "index",
							(int)e->index, "addr", sup_hex(e->addr),
							"value", sup_hex(e->value), "flags",
							ks_vtop_flags_format(e->flags, flags,
									     sizeof(flags))));
	}
	o = json_pack("{s:o}", "levels", levels);
	if (r->fault == KS_VTOP_OK) {
		json_object_set_new(o, "pa", sup_hex(r->gpa));
		json_object_set_new(o, "page_size", json_integer((json_int_t)r->page_size));
		json_object_set_new(o, "flags", json_string(ks_vtop_flags_format(r->flags, flags,
										 sizeof(flags))));
	} else {
		json_object_set_new(o, "fault", json_string(ks_vtop_fault_name(r->fault)));
		json_object_set_new(o, "fault_level",
				    json_string(ks_vtop_level_name(r->fault_level)));
	}
	return o;
}

/* {"addr" (virtual), "cpu", "pause"}: {"va", "cpu", "cr3", "la57", "levels": [{"level",
 * "index", "addr", "value", "flags"}], then "pa", "page_size", "flags", or "fault" and
 * "fault_level" when it does not translate}. */
int sup_h_vtop(struct ks_ctl_conn *c, json_t *req, json_t *reply, struct ks_error *err,
	       void *data)
{
	struct ks_supervisor *s = data;
	struct ks_vtop_result r;
	struct sup_access a;
	json_t *walk;
	int rc, wrc = 0;

	(void)c;
	if ((rc = sup_access_parse(s, req, "vtop", "addr", &a, err)) < 0)
		return rc;
	if (a.phys)
		return ks_error_set(err, -EINVAL, "vtop: translates virtual addresses, not "
				    "--phys");
	if ((rc = sup_access_begin(s, &a, false, err)) == 0)
		wrc = ks_vtop_walk(s->inspect->mem, a.cr3, a.la57, a.addr, &r);
	sup_access_end(s, &a);
	if (rc < 0)
		return rc;
	/* -EFAULT is an answer (r says where the walk stopped); others are failures. */
	if (wrc < 0 && wrc != -EFAULT)
		return ks_error_set(err, wrc, "vtop: cannot walk the page tables for 0x%llx: %s",
				    (unsigned long long)a.addr, strerror(-wrc));
	walk = walk_json(&r);
	json_object_update(reply, walk);
	json_decref(walk);
	json_object_set_new(reply, "va", sup_hex(a.addr));
	json_object_set_new(reply, "cpu", json_integer(a.cpu));
	json_object_set_new(reply, "cr3", sup_hex(a.cr3));
	json_object_set_new(reply, "la57", json_boolean(a.la57));
	sup_add_symbol(s, reply, a.addr);
	return 0;
}

/* The mapped ranges from start on, at most max of them; *next is where the rest begins. */
static int ranges(struct ks_supervisor *s, const struct sup_access *a, uint64_t start,
		  size_t max, json_t *out, json_t *reply, struct ks_error *err)
{
	struct ks_vtop_iter *it = ks_vtop_iter_new(s->inspect->mem, a->cr3, a->la57, err);
	struct ks_vtop_range r;
	char flags[64];
	size_t n = 0;
	int rc;

	if (!it)
		return err ? err->code : -ENOMEM;
	while ((rc = ks_vtop_iter_next(it, &r, err)) == 1) {
		if (r.gva < start)
			continue;
		if (n++ == max) {
			json_object_set_new(reply, "next", sup_hex(r.gva));
			rc = 0;
			break;
		}
		json_array_append_new(out, json_pack("{s:o,s:o,s:I,s:I,s:s}", "va", sup_hex(r.gva),
						     "pa", sup_hex(r.gpa), "size",
						     (json_int_t)r.size, "page_size",
						     (json_int_t)r.page_size, "flags",
						     ks_vtop_flags_format(r.flags, flags,
									  sizeof(flags))));
	}
	json_object_set_new(reply, "skipped", json_integer((json_int_t)ks_vtop_iter_skipped(it)));
	ks_vtop_iter_free(it);
	return rc;
}

/* {"cpu", "pause", "start" (virtual, default 0), "max" (ranges, at most 4096)}:
 * {"cpu", "cr3", "ranges": [{"va", "pa", "size", "page_size", "flags"}], "skipped", and
 * "next" when more ranges follow}. */
int sup_h_pagemap(struct ks_ctl_conn *c, json_t *req, json_t *reply, struct ks_error *err,
		  void *data)
{
	struct ks_supervisor *s = data;
	json_t *jmax = json_object_get(req, "max"), *list = json_array();
	json_t *jstart = json_object_get(req, "start");
	const char *key = jstart && !json_is_null(jstart) ? "start" : NULL;
	struct sup_access a;
	json_int_t max = jmax ? json_integer_value(jmax) : PAGEMAP_MAX;
	int rc;

	(void)c;
	json_object_set_new(reply, "ranges", list);
	if ((rc = sup_access_parse(s, req, "pagemap", key, &a, err)) < 0)
		return rc;
	if (a.phys)
		return ks_error_set(err, -EINVAL, "pagemap: lists virtual ranges, not --phys");
	if (max < 1 || max > PAGEMAP_MAX)
		return ks_error_set(err, -EINVAL, "pagemap: \"max\" must be 1 to %d ranges",
				    PAGEMAP_MAX);
	if ((rc = sup_access_begin(s, &a, false, err)) == 0)
		rc = ranges(s, &a, key ? a.addr : 0, (size_t)max, list, reply, err);
	sup_access_end(s, &a);
	json_object_set_new(reply, "cpu", json_integer(a.cpu));
	json_object_set_new(reply, "cr3", sup_hex(a.cr3));
	return rc;
}

/* ---- dump ---- */

static int write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;

	while (len) {
		ssize_t n = write(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Copies [gpa, gpa + len) to fd, straight from the mapping where a chunk lies in one region. */
static int dump_to(struct sup_inspect *in, uint64_t gpa, uint64_t len, int fd,
		   const char *path, struct ks_error *err)
{
	uint8_t *bounce = NULL;
	int rc = 0;

	for (uint64_t done = 0; rc == 0 && done < len;) {
		size_t n = len - done < DUMP_CHUNK ? (size_t)(len - done) : DUMP_CHUNK;
		const void *p = ks_mem_ptr(in->mem, gpa + done, n);

		if (!p && !bounce && !(bounce = malloc(DUMP_CHUNK)))
			rc = ks_error_set(err, -ENOMEM, "out of memory");
		else if (!p && (rc = ks_mem_read(in->mem, gpa + done, bounce, n, err)) == 0)
			p = bounce;
		if (rc == 0 && (rc = write_all(fd, p, n)) < 0)
			ks_error_set(err, rc, "dump: %s: %s", path, strerror(-rc));
		done += n;
	}
	free(bounce);
	return rc;
}

/* {"addr" (guest-physical), "len", "path" (absolute; created or truncated), "phys": true,
 * "pause"}: writes the bytes to path as they are; {"path", "written"}. */
int sup_h_dump(struct ks_ctl_conn *c, json_t *req, json_t *reply, struct ks_error *err,
	       void *data)
{
	struct ks_supervisor *s = data;
	const char *path = json_string_value(json_object_get(req, "path"));
	json_t *jlen = json_object_get(req, "len");
	struct sup_access a;
	int rc, fd = -1;

	(void)c;
	if ((rc = sup_access_parse(s, req, "dump", "addr", &a, err)) < 0)
		return rc;
	if (!a.phys)
		return ks_error_set(err, -EINVAL, "dump: reads guest-physical memory only "
				    "(\"phys\": true)");
	if (!json_is_integer(jlen) || json_integer_value(jlen) < 1)
		return ks_error_set(err, -EINVAL, "dump: \"len\" must be a positive length");
	if (!path || path[0] != '/')
		return ks_error_set(err, -EINVAL, "dump: \"path\" must be an absolute path");
	if ((rc = sup_access_begin(s, &a, false, err)) < 0 ||
	    (rc = ks_mem_check(s->inspect->mem, a.addr, (size_t)json_integer_value(jlen),
			       err)) < 0)
		goto out;
	if ((fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666)) < 0) {
		rc = ks_error_set(err, -errno, "dump: %s: %s", path, strerror(errno));
		goto out;
	}
	rc = dump_to(s->inspect, a.addr, (uint64_t)json_integer_value(jlen), fd, path, err);
	if (close(fd) < 0 && rc == 0)
		rc = ks_error_set(err, -errno, "dump: %s: %s", path, strerror(errno));
	if (rc < 0)
		unlink(path);
out:
	sup_access_end(s, &a);
	json_object_set_new(reply, "path", json_string(path));
	json_object_set_new(reply, "written", rc < 0 ? json_integer(0) : json_incref(jlen));
	return rc;
}
