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
#include "kernel_maps.h"
#include "mm/mm.h"
#include "policy/policy.h"
#include "probe.h"
#include "uffd/uffd.h"

#define USPF_MAX_HANDLERS 256
#define USPF_MAX_FOLIO_PAGES 512	/* one page table: 2 MiB */

struct uspf {
	struct uspf_config cfg;
	struct uspf_mm mm;
	struct uffd uffd;
	const struct uspf_policy *policy;
	struct uspf_handler *handlers;
	unsigned int nr_handlers;
	atomic_bool stop;
	struct uffd_spin spin;		/* the handlers' spinning, shared */
	int stop_fd;			/* eventfd: ends every intake wait */
	struct kernel_maps kmaps;	/* the writers ask the kernel (mapping.c) */
	atomic_bool contents_mapped;	/* a backing other than zeros was ever mapped */
	const void *zero_area;		/* folio_pages pages that read as zero */
	struct uspf_probe probe;	/* the round trip, sampled (probe.c) */
	/* The bench's `raw` reference: faults here skip the model (runtime_set_raw). */
	unsigned long raw_start, raw_end;
};

/*
 * For the preload module, when the program takes one of the runtime's
 * descriptor numbers (dup2 onto it): runtime_pause() stops and joins the
 * handlers and closes their descriptors (faults wait, none is lost);
 * runtime_move_uffd() moves the userfaultfd to another number while
 * paused; runtime_resume() starts the handlers again.
 */
void runtime_pause(struct uspf *u);
/*
 * mapping.c: [start, end) stops being uspf's - unregistered from its
 * userfaultfd and gone from the model, the memory left as it is - for a
 * program that registers it with a userfaultfd of its own.
 */
int mapping_release(struct uspf *u, unsigned long start, unsigned long end);
int runtime_resume(struct uspf *u);
int runtime_move_uffd(struct uspf *u);
/* The same for the /proc/self/maps descriptor the writers read. */
int runtime_move_kmaps(struct uspf *u);

/*
 * Where uspf_create() says what a user-mode-only userfaultfd costs
 * (stderr unless set).  The preload library says it in its own words,
 * once per process, and silences this one.
 */
extern bool runtime_quiet;

#endif
