/* SPDX-License-Identifier: MIT */
/*
 * runtime.h - struct uspf: one address-space model, its userfaultfd, its
 * handler threads and the policy that resolves their faults.
 */
#ifndef USPF_RUNTIME_H
#define USPF_RUNTIME_H

#include <stdatomic.h>

#include "uspf.h"
#include "handler.h"
#include "mm.h"
#include "policy.h"
#include "uffd/uffd.h"

#define USPF_MAX_HANDLERS 256
#define USPF_MAX_FAULT_AROUND 512	/* one page table: 2 MiB */

struct uspf {
	struct uspf_config cfg;
	struct uspf_mm mm;
	struct uffd uffd;
	const struct uspf_policy *policy;
	struct uspf_handler *handlers;
	unsigned int nr_handlers;
	atomic_bool stop;
	int stop_fd;			/* eventfd: ends every intake wait */
	const void *zero_area;		/* fault_around pages that read as zero */
};

/*
 * Where uspf_create() says what a user-mode-only userfaultfd costs
 * (stderr unless set).  The preload library says it in its own words,
 * once per process, and silences this one.
 */
extern bool runtime_quiet;

#endif
