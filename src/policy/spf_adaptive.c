/* SPDX-License-Identifier: MIT */
/*
 * policy/spf_adaptive.c - Andrea Arcangeli's contention-triggered
 * speculative page fault (linux-mm, Nov 2017, seed 003; never merged).
 *
 * The classic path stays the default.  A fault first tries to take
 * mmap_lock with down_read_trylock_exclusive(), which fails if the lock is
 * held in either mode (so also while an mprotect or mremap holds it for
 * write) and writes no cacheline when it fails.  On failure the fault
 * records mm->mmap_sem_contention_jiffies = jiffies - the only shared
 * write, made only under contention - and goes speculative.  For the next
 * adaptive_window jiffies every fault goes speculative without touching
 * mmap_lock at all; after that the trylock decides again.  An uncontended
 * mm therefore pays nothing for speculation: no vm_sequence for writers to
 * maintain, so mmap/brk-heavy code does not regress (the motivation: the
 * always-on SPF slowed Intel's brk/malloc tests).
 *
 * The speculative path has no vm_sequence.  It follows Dufour's
 * __handle_speculative_fault() for the bail-outs (no VMA, file-backed, no
 * anon_vma, address outside) and fills the page with no lock held, then
 * revalidates "by hand" with the PTL held, as khugepaged does after
 * dropping mmap_lock (hugepage_vma_revalidate()) and mm/userfaultfd.c does
 * in its copy loop: find the VMA again, it must be the same object, still
 * attached, covering the address, with the fields the fault used
 * unchanged.  Every failure falls back to the classic path.
 *
 * Why the check under the PTL is enough: a writer that removes a VMA marks
 * it detached (and erases it) before it zaps the range, and the zap holds
 * the range's PTLs (mapping.c).  A commit that revalidated under the PTL
 * either lands before that zap, which then removes the page, or sees the
 * VMA detached or replaced.  The VMA pointer cannot be recycled while we
 * look at it: it is freed a grace period after detach and we hold
 * rcu_read_lock() (the kernel design used SRCU; its per-CPU counters keep
 * the fast path free of shared writes, as RCU does here).
 *
 * Dufour's objections, as seen in this model:
 *  - A fault that found the lock free and took it gets no help if a writer
 *    (mprotect, mmap) then queues behind it and later faults queue behind
 *    the writer: contention is detected by faults that arrive after, not by
 *    the ones already holding the lock.  The window only helps the next
 *    faults.
 *  - Without the seqcount the snapshot of vm_flags and vm_page_prot (here:
 *    vm_start, vm_end, vm_pgoff, vm_flags, backing) is read field by field
 *    and may mix a writer's before and after.  uspf compares every field of
 *    the snapshot with the VMA again under the PTL, so a torn snapshot
 *    aborts unless the VMA went back to exactly the values read; what it
 *    cannot see is a change made and undone between the two reads (an
 *    mprotect RW -> RO -> RW), which uspf accepts because such a change
 *    does not alter what the page must contain.  The kernel's concern was
 *    wider: vm_page_prot decides the PTE bits, and uspf's PTEs are the real
 *    kernel's, set by UFFDIO_COPY from the real VMA.
 */
#include "backing.h"
#include "fault.h"
#include "handler.h"
#include "mm/inject.h"
#include "mm/mm.h"
#include "policy/policy.h"
#include "mm/ptl.h"
#include "mm/vma.h"

enum adaptive_abort {
	ADAPTIVE_OK = -1,
	ADAPTIVE_NO_VMA = USPF_C_ADAPTIVE_ABORT_NO_VMA,
	ADAPTIVE_NOT_ANON = USPF_C_ADAPTIVE_ABORT_NOT_ANON,
	ADAPTIVE_NO_ANON_VMA = USPF_C_ADAPTIVE_ABORT_NO_ANON_VMA,
	ADAPTIVE_OUTSIDE = USPF_C_ADAPTIVE_ABORT_OUTSIDE,
	ADAPTIVE_VMA_CHANGED = USPF_C_ADAPTIVE_ABORT_VMA_CHANGED,
	ADAPTIVE_FILL = USPF_NR_COUNTERS,	/* the backing failed: not a locking abort */
	ADAPTIVE_RETRY,				/* -EAGAIN at the commit: not a locking abort */
};

/* Find and snapshot the VMA; caller holds rcu_read_lock(). */
static enum adaptive_abort adaptive_find_vma(struct vm_fault *vmf)
{
	struct uspf_vma *vma = vma_lookup(vmf->mm, vmf->address);

	if (!vma)
		return ADAPTIVE_NO_VMA;
	if (!vma_is_anonymous(vma))
		return ADAPTIVE_NOT_ANON;
	/* __anon_vma_prepare() needs mmap_lock: leave it to the classic path. */
	if (!CMM_LOAD_SHARED(vma->anon_vma))
		return ADAPTIVE_NO_ANON_VMA;
	vmf_snapshot(vmf, vma);
	if (vmf->address < vmf->vm_start || vmf->address >= vmf->vm_end)
		return ADAPTIVE_OUTSIDE;
	return ADAPTIVE_OK;
}

/*
 * The by-hand revalidation, PTL held: the index still maps the address to
 * the VMA we snapshotted, it is not on its way out, and nothing the fault
 * used has changed.  The detached test covers the window in which a writer
 * has marked the VMA but not yet erased it from the index.
 */
static bool adaptive_vma_revalidate(struct vm_fault *vmf)
{
	struct uspf_vma *vma = vmf->vma;

	if (vma_lookup(vmf->mm, vmf->address) != vma || vma_is_detached(vma))
		return false;
	if (vmf->address < CMM_LOAD_SHARED(vma->vm_start) ||
	    vmf->address >= CMM_LOAD_SHARED(vma->vm_end))
		return false;
	return CMM_LOAD_SHARED(vma->vm_start) == vmf->vm_start &&
	       CMM_LOAD_SHARED(vma->vm_end) == vmf->vm_end &&
	       CMM_LOAD_SHARED(vma->vm_pgoff) == vmf->vm_pgoff &&
	       CMM_LOAD_SHARED(vma->vm_flags) == vmf->vm_flags &&
	       backing_same(&vma->backing, &vmf->backing);
}

/* Lookup, fill, revalidate under the PTL, commit; ADAPTIVE_OK means the fault ended. */
static enum adaptive_abort adaptive_try(struct vm_fault *vmf)
{
	struct uspf_mm *mm = vmf->mm;
	unsigned int ptl = ptl_index(vmf->address);
	enum adaptive_abort why;
	enum vmf_result r;

	why = adaptive_find_vma(vmf);
	if (why != ADAPTIVE_OK)
		return why;
	stall_at(mm, STALL_SNAPSHOT);
	if (vmf_prepare(vmf))
		return ADAPTIVE_FILL;
	stall_at(mm, STALL_FILLED);
	ptl_lock(&mm->ptl, ptl);
	if (!inject(mm, INJ_ADAPTIVE_NO_REVALIDATE) && !adaptive_vma_revalidate(vmf)) {
		ptl_unlock(&mm->ptl, ptl);
		return ADAPTIVE_VMA_CHANGED;
	}
	vmf_check_commit(vmf);
	r = vmf_commit(vmf);
	ptl_unlock(&mm->ptl, ptl);
	if (r == VMF_AGAIN) {
		/* mmap_changing: not a locking abort; the classic path retries. */
		count_event(vmf->h, USPF_C_RETRY);
		return ADAPTIVE_RETRY;
	}
	count_event(vmf->h, USPF_C_ADAPTIVE_SUCCESS);
	vmf_end(vmf, r);
	return ADAPTIVE_OK;
}

static void adaptive_speculate(struct vm_fault *vmf)
{
	enum adaptive_abort why;

	count_event(vmf->h, USPF_C_ADAPTIVE_ATTEMPT);
	/* The VMA stays valid until a grace period after it is detached. */
	rcu_read_lock();
	why = adaptive_try(vmf);
	rcu_read_unlock();
	if (why == ADAPTIVE_OK)
		return;
	if (why != ADAPTIVE_FILL && why != ADAPTIVE_RETRY)
		count_event(vmf->h, (enum uspf_counter)why);
	count_event(vmf->h, USPF_C_MMAP_LOCK_FALLBACK);
	do_fault_mmap_lock(vmf);
}

static void adaptive_handle_fault(struct vm_fault *vmf)
{
	struct uspf_mm *mm = vmf->mm;
	unsigned long j = mm_jiffies(mm);
	unsigned long last = atomic_load_explicit(&mm->mmap_sem_contention_jiffies,
						  memory_order_relaxed);

	/* Contended recently: do not touch mmap_lock's cacheline at all. */
	if (time_before_eq(j, last + mm->adaptive_window)) {
		count_event(vmf->h, USPF_C_SPF_WINDOW);
		adaptive_speculate(vmf);
		return;
	}
	if (mmap_read_trylock_exclusive(mm)) {
		do_fault_mmap_lock_locked(vmf);
		return;
	}
	/* Held in some mode: note it (only now do we write) and speculate. */
	atomic_store_explicit(&mm->mmap_sem_contention_jiffies, j, memory_order_relaxed);
	count_event(vmf->h, USPF_C_SPF_CONTENDED);
	adaptive_speculate(vmf);
}

const struct uspf_policy policy_spf_adaptive = {
	.name = "spf-adaptive",
	.id = USPF_POLICY_SPF_ADAPTIVE,
	.models = "Arcangeli's contention-triggered speculation, by-hand revalidation (2017)",
	.handle_fault = adaptive_handle_fault,
	.vma_lock = NULL,
};
