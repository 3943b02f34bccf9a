/* SPDX-License-Identifier: MIT */
/*
 * inject.c - the bug injections' names, and the debug-check reports.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <sched.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "inject.h"
#include "runtime.h"
#include "file.h"
#include "vma.h"

const struct uspf_inject_info inject_info[NR_INJECTIONS] = {
	[INJ_SPF_NO_REVALIDATE] = { "spf-no-revalidate", "spf",
		"commit without re-checking vm_sequence and detached once the PTL is held" },
	[INJ_SPF_COMMIT_BEFORE_PTL] = { "spf-commit-before-ptl", "spf",
		"revalidate and commit without taking the PTL" },
	[INJ_ADAPTIVE_NO_REVALIDATE] = { "adaptive-no-revalidate", "spf-adaptive",
		"commit a speculative fault without looking the VMA up again" },
	[INJ_MMAP_LOCK_EARLY_UNLOCK] = { "mmap-lock-early-unlock", "mmap-lock",
		"drop mmap_lock after the fill, before the commit" },
	[INJ_RWSEM_NO_RECHECK] = { "rwsem-no-recheck", "pervma-rwsem",
		"vma_start_read() skips the vm_lock_seq re-check after the trylock",
		/* Writers that replace memory, on few slots: the reader's window meets them. */
		(const char *const[]){ "--slots", "2", "--writers", "3",
				       "--ops", "remap,map-over,mremap", NULL } },
	[INJ_RWSEM_NO_DETACHED_CHECK] = { "rwsem-no-detached-check", "pervma-rwsem",
		"lock_vma_under_rcu() accepts a VMA that was detached" },
	[INJ_RWSEM_DOWNGRADE_KEEPS_LOCKS] = { "downgrade-keeps-vma-locks", "pervma-rwsem",
		"mmap_write_downgrade() forgets vma_end_write_all()" },
	[INJ_REFCNT_NO_MM_CHECK] = { "refcnt-no-mm-check", "pervma-refcnt",
		"vma_start_read() skips vm_mm == mm: a VMA reused by another mm is taken",
		/* One slot per mm, remapped while other mms' extras take its hole. */
		(const char *const[]){ "--mms", "2", "--slots", "1", "--writers", "4",
				       "--ops", "remap,extra", NULL },
		/*
		 * The runtimes share one address space: a reused VMA passes the
		 * range check only if another mm mapped it into this mm's hole
		 * within the reader's window.  Too rare to count on in seconds.
		 */
		"test_policy_pervma_refcnt.c: reuse_by_another_mm" },
	[INJ_REFCNT_NO_RANGE_CHECK] = { "refcnt-no-range-check", "pervma-refcnt",
		"lock_vma_under_rcu() skips the range re-check after the reference" },
	[INJ_REFCNT_PUT_BEFORE_COMMIT] = { "refcnt-put-before-commit", "pervma-refcnt",
		"vma_end_read() before the commit instead of after" },
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

void runtime_set_debug(struct uspf *u, uint64_t inject_mask, bool debug_checks)
{
	atomic_store_explicit(&u->mm.inject, inject_mask, memory_order_relaxed);
	atomic_store_explicit(&u->mm.debug_checks, debug_checks, memory_order_relaxed);
}

void torture_stall(void)
{
	static __thread uint64_t rng;
	uint64_t t0, ns;

	if (!rng)
		rng = (uint64_t)(uintptr_t)&rng ^ uspf_now_ns();
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	if (rng % 8)
		return;
	/* 20 to 200 us: long enough for a writer's syscalls to run meanwhile. */
	ns = 20000 + (rng >> 8) % 180000;
	if ((rng >> 40) & 1) {
		sched_yield();
		return;
	}
	for (t0 = uspf_now_ns(); uspf_now_ns() - t0 < ns; )
		__builtin_ia32_pause();
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

void mm_violation(struct uspf_mm *mm, const char *fmt, ...)
{
	va_list ap;

	if (atomic_fetch_add(&mm->violations, 1) == 0) {
		va_start(ap, fmt);
		vsnprintf(mm->violation, sizeof(mm->violation), fmt, ap);
		va_end(ap);
		atomic_thread_fence(memory_order_release);
		atomic_store(&mm->violation_ready, true);
	}
}

/*
 * The model's state invariants, checked with the mmap lock held for read
 * (no writer inside): no VMA is write-locked (the last unlock or downgrade
 * released them all), every VMA in the index is attached, even (no write
 * section left open), owned by this mm, with the index's range, ordered,
 * and for the refcount lock holds the attach reference and no writer's.
 */
static void check_invariants(struct uspf_mm *mm)
{
	unsigned long addr = 0, start, end, prev_end = 0;
	struct uspf_vma *vma;
	unsigned int seq, refs;
	size_t n = 0;

	/*
	 * Never wait for the lock: with a bug injected a writer can stay stuck
	 * behind a VMA lock for ever, holding mmap_lock, and the watchdog that
	 * calls this must go on to report it.  Checked on a later tick.
	 */
	if (!mmap_read_trylock(mm))
		return;
	seq = raw_read_seqcount(&mm->mm_lock_seq);
	if (seq & 1)
		mm_violation(mm, "mm_lock_seq %u is odd with no writer: VMA write locks "
			     "survived the last unlock or downgrade", seq);
	while ((vma = vma_index_find(&mm->index, addr, &start, &end))) {
		n++;
		if (vma_is_detached(vma))
			mm_violation(mm, "VMA [%#lx, %#lx) in the index but detached", start, end);
		if (vma->vm_mm != mm)
			mm_violation(mm, "VMA [%#lx, %#lx) in the index belongs to another mm",
				     start, end);
		if (vma->vm_start != start || vma->vm_end != end)
			mm_violation(mm, "VMA [%#lx, %#lx) indexed as [%#lx, %#lx)",
				     vma->vm_start, vma->vm_end, start, end);
		if (start < prev_end || start >= end)
			mm_violation(mm, "VMA [%#lx, %#lx) overlaps or is empty", start, end);
		if (raw_read_seqcount(&vma->vm_sequence) & 1)
			mm_violation(mm, "VMA [%#lx, %#lx) left inside a write section", start, end);
		if (vma_is_write_locked(vma, seq))
			mm_violation(mm, "VMA [%#lx, %#lx) write-locked with no writer", start, end);
		if (vma->vm_file && !vma_in_i_mmap(vma))
			mm_violation(mm, "file VMA [%#lx, %#lx) missing from its file's i_mmap",
				     start, end);
		if (mm->vma_lock && mm->vma_lock->typesafe_by_rcu) {
			refs = atomic_load(&vma->vm_refcnt);
			if (refs < 1 || refs >= 0x40000000u)
				mm_violation(mm, "VMA [%#lx, %#lx) attached with vm_refcnt %#x",
					     start, end, refs);
		}
		prev_end = end;
		addr = end;
	}
	if (n != vma_index_count(&mm->index))
		mm_violation(mm, "%zu VMAs reachable, the index counts %zu", n,
			     vma_index_count(&mm->index));
	mmap_read_unlock(mm);
}

uint64_t runtime_violations(struct uspf *u, char *msg, size_t len)
{
	uint64_t n;

	/* One violation is the verdict: no need to walk the model again. */
	if (mm_debug_checks(&u->mm) && !atomic_load(&u->mm.violations))
		check_invariants(&u->mm);
	n = atomic_load(&u->mm.violations);

	if (msg && len) {
		msg[0] = '\0';
		if (n && atomic_load(&u->mm.violation_ready))
			snprintf(msg, len, "%s", u->mm.violation);
	}
	return n;
}
