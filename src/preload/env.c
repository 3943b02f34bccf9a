/* SPDX-License-Identifier: MIT */
/*
 * preload/env.c - USPF_* variables: parsing and validation.
 *
 * No allocation, no stdio streams: this runs inside mmap() and malloc()
 * wrappers before the program's main().
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "preload/env.h"

#define POLICIES "spf, mmap-lock, spf-adaptive, pervma-rwsem, pervma-refcnt, spf-v12"

static bool parse_uint(const char *s, unsigned long min, unsigned long max, unsigned int *out)
{
	char *end;
	unsigned long v;

	if (!s || !*s || *s == '-' || *s == '+' || *s == ' ')
		return false;
	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || *end || v < min || v > max)
		return false;
	*out = (unsigned int)v;
	return true;
}

bool preload_parse_size(const char *s, size_t *out)
{
	char *end;
	unsigned long long v;
	unsigned int shift = 0;

	if (!s || *s < '0' || *s > '9')
		return false;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno)
		return false;
	switch (*end) {
	case '\0': break;
	case 'k': case 'K': shift = 10; end++; break;
	case 'm': case 'M': shift = 20; end++; break;
	case 'g': case 'G': shift = 30; end++; break;
	default: return false;
	}
	if (*end && !((*end == 'B' || *end == 'b') && !end[1] && shift))
		return false;
	if (v > (ULLONG_MAX >> shift))
		return false;
	*out = (size_t)(v << shift);
	return true;
}

static bool parse_bool(const char *s, bool *out)
{
	if (!strcmp(s, "0")) {
		*out = false;
		return true;
	}
	if (!strcmp(s, "1")) {
		*out = true;
		return true;
	}
	return false;
}

static int bad(char *msg, size_t len, const char *what)
{
	if (msg && len)
		snprintf(msg, len, "%s", what);
	return -EINVAL;
}

/* Apply one variable to *pe (pe may be a scratch copy). */
static int apply(struct preload_env *pe, const char *name, const char *v, char *msg, size_t len)
{
	unsigned int n;
	size_t sz;

	if (!strcmp(name, "USPF_POLICY")) {
		if (uspf_policy_from_name(v, &pe->cfg.policy))
			return bad(msg, len, "accepted: " POLICIES);
	} else if (!strcmp(name, "USPF_HANDLERS")) {
		if (!parse_uint(v, 0, 256, &n))
			return bad(msg, len, "accepted: 0 (one per two online CPUs) to 256");
		pe->cfg.handlers = n;
	} else if (!strcmp(name, "USPF_INTAKE")) {
		if (uspf_intake_from_name(v, &pe->cfg.intake))
			return bad(msg, len, "accepted: poll, uring, busy");
	} else if (!strcmp(name, "USPF_FOLIO_PAGES") || !strcmp(name, "USPF_FAULT_AROUND")) {
		if (!parse_uint(v, 1, 512, &n))
			return bad(msg, len, "accepted: 1 (one page per fault) to 512 pages");
		pe->cfg.folio_pages = n;
	} else if (!strcmp(name, "USPF_SPIN_US")) {
		if (!parse_uint(v, 0, 10000, &n))
			return bad(msg, len, "accepted: 0 (sleep at once) to 10000 microseconds");
		pe->cfg.spin_us = n;
	} else if (!strcmp(name, "USPF_HZ")) {
		if (!parse_uint(v, 10, 10000, &n))
			return bad(msg, len, "accepted: 10 to 10000");
		pe->cfg.hz = n;
	} else if (!strcmp(name, "USPF_MIN_SIZE")) {
		if (!preload_parse_size(v, &sz) || sz < 4096 || sz > ((size_t)1 << 46))
			return bad(msg, len, "accepted: bytes, with an optional K, M or G suffix, "
				   "from 4K to 64T");
		pe->min_size = sz;
	} else if (!strcmp(name, "USPF_HEAP")) {
		if (!parse_bool(v, &pe->heap))
			return bad(msg, len, "accepted: 0 (system allocator) or 1 (uspf heap)");
	} else if (!strcmp(name, "USPF_DISABLE")) {
		if (!parse_bool(v, &pe->disable))
			return bad(msg, len, "accepted: 0 or 1 (uspf off)");
	} else if (!strcmp(name, "USPF_STATS")) {
		pe->stats = v;	/* any non-empty path, or "-" */
	}
	return 0;
}

static const char *const vars[] = {
	/* USPF_FAULT_AROUND, the old name, before the new: the new one wins. */
	"USPF_POLICY", "USPF_HANDLERS", "USPF_INTAKE", "USPF_FAULT_AROUND", "USPF_FOLIO_PAGES",
	"USPF_SPIN_US", "USPF_HZ",
	"USPF_MIN_SIZE", "USPF_HEAP", "USPF_STATS", "USPF_DISABLE",
};

int preload_env_check(const char *name, const char *value, char *msg, size_t len)
{
	struct preload_env scratch;

	memset(&scratch, 0, sizeof(scratch));
	uspf_config_init(&scratch.cfg);
	return apply(&scratch, name, value, msg, len);
}

int preload_env_read(struct preload_env *pe, char *msg, size_t len)
{
	char what[160];
	size_t i;

	memset(pe, 0, sizeof(*pe));
	uspf_config_init(&pe->cfg);
	pe->min_size = USPF_MIN_SIZE_DEFAULT;
	pe->heap = true;
	for (i = 0; i < sizeof(vars) / sizeof(vars[0]); i++) {
		const char *v = getenv(vars[i]);

		if (!v || !*v)
			continue;
		if (apply(pe, vars[i], v, what, sizeof(what))) {
			if (msg && len)
				snprintf(msg, len, "%s=%s: %s", vars[i], v, what);
			return -EINVAL;
		}
	}
	if (uspf_config_validate(&pe->cfg, what, sizeof(what))) {
		if (msg && len)
			snprintf(msg, len, "USPF_*: %s", what);
		return -EINVAL;
	}
	if (msg && len)
		msg[0] = '\0';
	return 0;
}

int uspf_preload_parse_env(char *msg, size_t len)
{
	struct preload_env pe;

	return preload_env_read(&pe, msg, len);
}
