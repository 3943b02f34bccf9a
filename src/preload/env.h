/* SPDX-License-Identifier: MIT */
/*
 * preload/env.h - the USPF_* variables of libuspf-preload.so, parsed and
 * checked.  Shared by the preload library and `uspf run` (which checks
 * them before exec, so a bad value never starts the program).
 */
#ifndef USPF_PRELOAD_ENV_H
#define USPF_PRELOAD_ENV_H

#include <stdbool.h>
#include <stddef.h>

#include "uspf.h"

#define USPF_MIN_SIZE_DEFAULT ((size_t)64 << 10)

struct preload_env {
	struct uspf_config cfg;
	size_t min_size;	/* USPF_MIN_SIZE: smallest mapping uspf takes */
	bool heap;		/* USPF_HEAP */
	bool disable;		/* USPF_DISABLE */
	const char *stats;	/* USPF_STATS: a path, "-", or NULL */
};

/*
 * Check one variable's value (name without a value: unknown variable,
 * accepted).  0, or -EINVAL with "what is accepted" in msg.
 */
int preload_env_check(const char *name, const char *value, char *msg, size_t len);

/*
 * Read every USPF_* variable into *pe (defaults for unset or empty ones).
 * On a bad value: -EINVAL, msg = "USPF_X=value: <what is accepted>".
 */
int preload_env_read(struct preload_env *pe, char *msg, size_t len);

/* The same check, for whoever needs only the verdict (exported). */
int uspf_preload_parse_env(char *msg, size_t len);

/* Parse "123", "64K", "2M", "1G" (binary units); false if malformed. */
bool preload_parse_size(const char *s, size_t *out);

#endif
