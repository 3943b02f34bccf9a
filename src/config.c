/* SPDX-License-Identifier: MIT */
/*
 * config.c - defaults and validation of struct uspf_config.
 *
 * A bad value gets one line naming the field and what it accepts.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "mm/jiffies.h"
#include "runtime.h"

void uspf_config_init(struct uspf_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->policy = USPF_POLICY_SPF;
	cfg->handlers = 0;
	cfg->intake = USPF_INTAKE_POLL;
	cfg->uring_depth = 4;
	cfg->read_batch = 16;
	cfg->folio_pages = 1;
	cfg->hz = USPF_HZ_DEFAULT;
	cfg->anon_vma_at_mmap = false;
	cfg->batch_wake = true;
	cfg->wake_after_unlock = false;
	cfg->spf_backoff_aborts = 8;
	cfg->spf_backoff_jiffies = 1;
	cfg->adaptive_window = 2;
	cfg->immap_reorder = true;
	cfg->spin_us = USPF_SPIN_US_DEFAULT;
}

static int bad(char *msg, size_t len, const char *what)
{
	if (msg && len)
		snprintf(msg, len, "%s", what);
	return -EINVAL;
}

int uspf_config_validate(const struct uspf_config *cfg, char *msg, size_t len)
{
	if (!cfg)
		return bad(msg, len, "config: NULL");
	if ((unsigned int)cfg->policy >= USPF_NR_POLICIES)
		return bad(msg, len, "policy: unknown; accepted: spf, mmap-lock, spf-adaptive, "
			   "pervma-rwsem, pervma-refcnt, spf-v12");
	if (cfg->handlers > USPF_MAX_HANDLERS)
		return bad(msg, len, "handlers: accepted 0 (one per two online CPUs) to 256");
	if ((unsigned int)cfg->intake >= USPF_NR_INTAKES)
		return bad(msg, len, "intake: unknown; accepted: poll, uring, busy");
	if (cfg->uring_depth < 1 || cfg->uring_depth > 64)
		return bad(msg, len, "uring_depth: accepted 1 to 64");
	if (cfg->read_batch < 1 || cfg->read_batch > 64)
		return bad(msg, len, "read_batch: accepted 1 to 64");
	if (cfg->folio_pages < 1 || cfg->folio_pages > USPF_MAX_FOLIO_PAGES)
		return bad(msg, len, "folio_pages: accepted 1 (one page per fault) to 512 pages");
	if (cfg->hz < USPF_HZ_MIN || cfg->hz > USPF_HZ_MAX)
		return bad(msg, len, "hz: accepted 10 to 10000");
	if (cfg->spf_backoff_aborts < 1 || cfg->spf_backoff_aborts > 1000000)
		return bad(msg, len, "spf_backoff_aborts: accepted 1 to 1000000");
	if (cfg->spf_backoff_jiffies > 1000)
		return bad(msg, len, "spf_backoff_jiffies: accepted 0 (off) to 1000");
	if (cfg->probe_ms > 60000)
		return bad(msg, len, "probe_ms: accepted 0 (no probe) to 60000 milliseconds");
	if (cfg->spin_us > 10000)
		return bad(msg, len, "spin_us: accepted 0 (sleep at once) to 10000 microseconds");
	if (cfg->adaptive_window > 1000)
		return bad(msg, len, "adaptive_window: accepted 0 to 1000 jiffies");
	if (msg && len)
		msg[0] = '\0';
	return 0;
}

static const char *const intake_names[USPF_NR_INTAKES] = {
	[USPF_INTAKE_URING] = "uring",
	[USPF_INTAKE_POLL] = "poll",
	[USPF_INTAKE_BUSY] = "busy",
};

const char *uspf_intake_name(enum uspf_intake i)
{
	if ((unsigned int)i >= USPF_NR_INTAKES)
		return NULL;
	return intake_names[i];
}

int uspf_intake_from_name(const char *name, enum uspf_intake *out)
{
	unsigned int i;

	if (!name || !out)
		return -EINVAL;
	for (i = 0; i < USPF_NR_INTAKES; i++) {
		if (!strcmp(name, intake_names[i])) {
			*out = (enum uspf_intake)i;
			return 0;
		}
	}
	return -EINVAL;
}
