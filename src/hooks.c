/* SPDX-License-Identifier: MIT */
/*
 * hooks.c - the bug injections' names, and the debug-check reports.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <sched.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "hooks.h"
#include "runtime.h"
#include "mm/vma_index.h"
#include "mm/vma.h"

const struct uspf_inject_info inject_info[NR_INJECTIONS] = {
	/* Held between the snapshot and the commit, while writers change the VMA. */
	[INJ_SPF_NO_REVALIDATE] = { "spf-no-revalidate", "spf",
		"commit without re-checking vm_sequence and detached once the PTL is held",
		(const char *const[]){ "--stall", "snapshot,filled", NULL } },
	[INJ_SPF_COMMIT_BEFORE_PTL] = { "spf-commit-before-ptl", "spf",
		"revalidate and commit without taking the PTL",
		(const char *const[]){ "--stall", "snapshot,filled", NULL } },
	[INJ_ADAPTIVE_NO_REVALIDATE] = { "adaptive-no-revalidate", "spf-adaptive",
		"commit a speculative fault without looking the VMA up again",
		(const char *const[]){ "--stall", "snapshot,filled", NULL } },
	[INJ_MMAP_LOCK_EARLY_UNLOCK] = { "mmap-lock-early-unlock", "mmap-lock",
		"drop mmap_lock after the fill, before the commit" },
	[INJ_RWSEM_NO_RECHECK] = { "rwsem-no-recheck", "pervma-rwsem",
		"vma_start_read() skips the vm_lock_seq re-check after the trylock",
		/* Writers that replace memory, on few slots: the reader's window meets them. */
		(const char *const[]){ "--slots", "2", "--writers", "3", "--stall", "checked",
				       "--ops", "remap,map-over,mremap", NULL } },
	[INJ_RWSEM_NO_DETACHED_CHECK] = { "rwsem-no-detached-check", "pervma-rwsem",
		"lock_vma_under_rcu() accepts a VMA that was detached" },
	[INJ_RWSEM_DOWNGRADE_KEEPS_LOCKS] = { "downgrade-keeps-vma-locks", "pervma-rwsem",
		"mmap_write_downgrade() forgets vma_end_write_all()" },
	[INJ_REFCNT_NO_MM_CHECK] = { "refcnt-no-mm-check", "pervma-refcnt",
		"vma_start_read() skips vm_mm == mm: a VMA reused by another mm is taken",
		/*
		 * One slot per mm; readers held after the lookup while a writer
		 * unmaps the slot and another mm maps the same range, getting
		 * the freed VMA object back from the type-safe cache.
		 */
		(const char *const[]){ "--mms", "2", "--slots", "1", "--writers", "2",
				       "--stall", "lookup,checked", "--ops", "reuse", NULL } },
	[INJ_REFCNT_NO_RANGE_CHECK] = { "refcnt-no-range-check", "pervma-refcnt",
		"lock_vma_under_rcu() skips the range re-check after the reference" },
	[INJ_REFCNT_PUT_BEFORE_COMMIT] = { "refcnt-put-before-commit", "pervma-refcnt",
		"vma_end_read() before the commit instead of after" },
	[INJ_RWSEM_END_READ_OUTSIDE_RCU] = { "rwsem-end-read-outside-rcu", "pervma-rwsem",
		"vma_end_read() leaves RCU before up_read(): the VMA can be freed inside it",
		/* Readers held inside up_read() while writers free VMAs under them. */
		(const char *const[]){ "--slots", "2", "--writers", "3", "--stall", "end-read",
				       "--ops", "remap,map-over", NULL } },
	[INJ_IMMAP_BEFORE_VMA_LOCK] = { "immap-before-vma-lock", "pervma-rwsem",
		"split and merge take i_mmap_rwsem before the VMA write lock",
		/* File-backed slots, split and merged by partial mprotects. */
		(const char *const[]){ "--files", "--ops", "map-over,mprotect-part", NULL } },
	[INJ_MPROTECT_FLAGS_AFTER_PTL] = { "mprotect-flags-after-ptl", "spf-adaptive",
		"mprotect changes vm_flags after its page-table section, not before",
		/* Faults held before the PTL while mprotect's writers pass them. */
		(const char *const[]){ "--stall", "filled,prot-changed", "--ops", "mprotect,mprotect-part",
				       NULL } },
	[INJ_RWSEM_ANON_VMA_BEFORE_LOCK] = { "rwsem-anon-vma-before-lock", "pervma-rwsem",
		"lock_vma_under_rcu() checks anon_vma before vma_start_read(), not after",
		/* Faults held between the check and the lock while DONTUNMAP moves unlink. */
		(const char *const[]){ "--stall", "lookup", "--ops", "mremap,dontneed", NULL } },
};

int inject_from_name(const char *name, enum uspf_inject *out)
{
	unsigned int i;

	for (i = 0; name && i < NR_INJECTIONS; i++) {
		if (!strcmp(name, inject_info[i].name)) {
			*out = (enum uspf_inject)i;
			return 0;
		}
	}
	return -EINVAL;
}

void runtime_set_stall_hook(struct uspf *u, stall_fn fn, void *arg)
{
	u->mm.stall_arg = arg;
	atomic_store_explicit(&u->mm.stall_fn, fn, memory_order_release);
}

void runtime_arm_stalls(struct uspf *u, uint64_t mask)
{
	atomic_store_explicit(&u->mm.stall_armed, mask, memory_order_relaxed);
}

int stall_point_from_name(const char *name, enum stall_point *out)
{
	unsigned int i;

	for (i = 0; name && i < NR_STALL_POINTS; i++) {
		if (!strcmp(name, stall_point_name((enum stall_point)i))) {
			*out = (enum stall_point)i;
			return 0;
		}
	}
	return -EINVAL;
}

void runtime_set_debug(struct uspf *u, uint64_t inject_mask, bool debug_checks)
{
	atomic_store_explicit(&u->mm.inject, inject_mask, memory_order_relaxed);
	atomic_store_explicit(&u->mm.debug_checks, debug_checks, memory_order_relaxed);
}

int runtime_protect_model(struct uspf *u, bool read_only)
{
	int prot = read_only ? PROT_READ : PROT_READ | PROT_WRITE;
	size_t len = (size_t)((char *)&u->mm.ptl - (char *)u);
	int ret;

	ret = vma_caches_protect(prot);
	if (!ret)
		ret = vma_index_protect(prot);
	if (!ret && syscall(SYS_mprotect, u, len, prot))
		ret = -errno;
	return ret;
}

uint64_t runtime_violations(struct uspf *u, char *msg, size_t len)
{
	uint64_t n;

	/* One violation is the verdict: no need to walk the model again. */
	if (mm_debug_checks(&u->mm) && !atomic_load(&u->mm.violations))
		mm_check_invariants(&u->mm);
	n = atomic_load(&u->mm.violations);

	if (msg && len) {
		msg[0] = '\0';
		if (n && atomic_load(&u->mm.violation_ready))
			snprintf(msg, len, "%s", u->mm.violation);
	}
	return n;
}
