/* SPDX-License-Identifier: MIT */
/*
 * inject.h - bug injection: one real bug per protocol step that matters,
 * switched on per runtime, so the torture can prove it would catch each.
 *
 * Each injection is checked where the step it breaks happens:
 *   if (inject(mm, INJ_SPF_NO_REVALIDATE)) ...
 * A runtime with no injection pays one load of mm->inject, which is 0.
 *
 * Debug checks (mm->debug_checks, on in the torture) assert the invariants
 * of PROTOCOLS.md section 7 where they can be seen: a violation is counted
 * and the first one described, for the torture to report.
 */
#ifndef USPF_INJECT_H
#define USPF_INJECT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum uspf_inject {
	INJ_SPF_NO_REVALIDATE,		/* spf: commit without re-checking the VMA under the PTL */
	INJ_SPF_COMMIT_BEFORE_PTL,	/* spf: revalidate and commit without the PTL held */
	INJ_ADAPTIVE_NO_REVALIDATE,	/* spf-adaptive: commit without looking the VMA up again */
	INJ_MMAP_LOCK_EARLY_UNLOCK,	/* mmap-lock: drop mmap_lock before the commit */
	INJ_RWSEM_NO_RECHECK,		/* pervma-rwsem: vma_start_read skips the vm_lock_seq re-check */
	INJ_RWSEM_NO_DETACHED_CHECK,	/* pervma-rwsem: lock_vma_under_rcu accepts a detached VMA */
	INJ_RWSEM_DOWNGRADE_KEEPS_LOCKS,/* writers: downgrade without vma_end_write_all() */
	INJ_REFCNT_NO_MM_CHECK,		/* pervma-refcnt: skip the vm_mm == mm check after the ref */
	INJ_REFCNT_NO_RANGE_CHECK,	/* pervma-refcnt: skip the range re-check after the ref */
	INJ_REFCNT_PUT_BEFORE_COMMIT,	/* pervma-refcnt: drop the VMA reference before the commit */
	NR_INJECTIONS
};

struct uspf_inject_info {
	const char *name;		/* as given to --inject */
	const char *policy;		/* the policy whose protocol it breaks */
	const char *what;
	/*
	 * Torture options that make its race likely (NULL: the defaults):
	 * a narrower workload concentrates the writers on the step it breaks.
	 */
	const char *const *torture_args;
	/*
	 * Set where the torture cannot make the race likely enough to count
	 * on: the deterministic test that catches the bug instead.
	 */
	const char *caught_by;
};

extern const struct uspf_inject_info inject_info[NR_INJECTIONS];

/* -EINVAL for an unknown name. */
int inject_from_name(const char *name, enum uspf_inject *out);

struct uspf;
/* Switch injections on (a mask of 1 << enum uspf_inject) and debug checks. */
void runtime_set_debug(struct uspf *u, uint64_t inject_mask, bool debug_checks);
/*
 * Debug: make the whole shared model read-only - the runtime and mm
 * (all but the PTLs), every VMA, anon_vma and index node - or writable
 * again.  A fault path that writes a shared cacheline other than the PTL
 * then dies with SIGSEGV: Lespinasse's "a single atomic per VMA cost 62%
 * at 48 threads", made checkable.  No writer may run meanwhile.
 */
int runtime_protect_model(struct uspf *u, bool read_only);

/*
 * Check the model's state invariants now (debug checks on), then return
 * the violations seen so far; the first one's description in msg.
 */
uint64_t runtime_violations(struct uspf *u, char *msg, size_t len);

#endif
