/* SPDX-License-Identifier: MIT */
/*
 * mm/inject.h - bug injection: one real bug per protocol step that matters,
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
	INJ_RWSEM_END_READ_OUTSIDE_RCU,	/* pervma-rwsem: vma_end_read()'s up_read() after rcu_read_unlock() */
	INJ_IMMAP_BEFORE_VMA_LOCK,	/* writers: split/merge take i_mmap_rwsem before the VMA write lock */
	INJ_MPROTECT_FLAGS_AFTER_PTL,	/* writers: mprotect sets vm_flags after its page-table section */
	INJ_RWSEM_ANON_VMA_BEFORE_LOCK,	/* pervma-rwsem: check anon_vma before vma_start_read() */
	NR_INJECTIONS
};

#endif
