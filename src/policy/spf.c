/* SPDX-License-Identifier: MIT */
/*
 * policy/spf.c - Laurent Dufour's speculative page fault (v12, 2019).
 *
 * Follows __handle_speculative_fault() and pte_map_lock() of the series:
 * find the VMA under RCU with no lock, snapshot its vm_sequence (odd: a
 * writer is inside, abort), bail out where the kernel bails out (no
 * anon_vma, a VMA kind the path does not serve, address outside the VMA),
 * snapshot the fields the fault uses, fill the page with no lock held,
 * then take the PTL and revalidate - sequence unchanged and VMA not
 * detached - before the commit.  The check after the PTL is held is what
 * makes the commit safe: a writer that changes the VMA bumps vm_sequence
 * first and then takes the same PTL to zap.
 *
 * Every abort falls back to the classic mmap_lock path (the arch handler's
 * retry), counted by reason.  Aborts caused by writers are also counted per
 * jiffy: a storm of them sends faults straight to mmap_lock until the
 * window passes, so writer churn causes no retry storm.
 *
 * The fast path writes no shared cacheline: the VMA is kept alive by RCU
 * (the v12 series used a refcount; RCU alone is enough here because
 * handler threads never sleep in the kernel with the VMA held), counters
 * are per handler thread, the backoff check is a read.
 */
#include "fault.h"
#include "handler.h"
#include "mm/mm.h"
#include "policy/policy.h"
#include "mm/ptl.h"
#include "mm/vma.h"

/* Is speculation off for now because writers made it fail too often? */
static bool spf_backoff_active(struct uspf_mm *mm)
{
	if (!mm->spf_backoff_jiffies ||
	    !atomic_load_explicit(&mm->spf_backoff_armed, memory_order_relaxed))
		return false;
	return time_before_eq(mm_jiffies(mm),
			      atomic_load_explicit(&mm->spf_backoff_until, memory_order_relaxed));
}

/* A writer made speculation fail: count it in the current jiffy (slow path). */
static void spf_note_writer_abort(struct uspf_mm *mm)
{
	unsigned long now = mm_jiffies(mm);
	unsigned int n;

	if (!mm->spf_backoff_jiffies)
		return;
	if (atomic_exchange_explicit(&mm->spf_abort_jiffies, now, memory_order_relaxed) != now) {
		atomic_store_explicit(&mm->spf_aborts, 1, memory_order_relaxed);
		n = 1;
	} else {
		n = atomic_fetch_add_explicit(&mm->spf_aborts, 1, memory_order_relaxed) + 1;
	}
	if (n == mm->spf_backoff_aborts) {
		atomic_store_explicit(&mm->spf_backoff_until, now + mm->spf_backoff_jiffies,
				      memory_order_relaxed);
		atomic_store_explicit(&mm->spf_backoff_armed, true, memory_order_relaxed);
	}
}

/*
 * vma_has_changed(): the VMA was removed from the index, or a writer
 * entered it since the snapshot.
 */
static bool vma_has_changed(struct vm_fault *vmf)
{
	struct uspf_vma *vma = vmf->vma;
	bool dead = vma_is_detached(vma);
	unsigned int seq = atomic_load_explicit(&vma->vm_sequence.sequence, memory_order_relaxed);

	atomic_thread_fence(memory_order_acquire);	/* smp_rmb() */
	return dead || seq != vmf->sequence;
}

/*
 * pte_map_lock(): check, trylock the PTL, check again with it held.  The
 * trylock loop is the kernel's (it ran with irqs off and could not spin
 * on a lock whose holder waits for an IPI); the first check saves taking
 * the lock for a fault that is already stale.  The kernel's holder never
 * sleeps; a handler thread here can be preempted holding one, so the
 * loop yields every PTL_SPINS rounds (ptl_relax()) rather than spin out
 * its quantum behind it.
 */
static bool pte_map_lock(struct vm_fault *vmf, unsigned int ptl)
{
	struct uspf_mm *mm = vmf->mm;
	unsigned int spins = 0;

	for (;;) {
		if (vma_has_changed(vmf))
			return false;
		stall_at(mm, STALL_FILLED);
		if (ptl_trylock(&mm->ptl, ptl))
			break;
		ptl_relax(&spins);
	}
	if (vma_has_changed(vmf) && !inject(mm, INJ_SPF_NO_REVALIDATE)) {
		ptl_unlock(&mm->ptl, ptl);
		return false;
	}
	return true;
}

enum spf_abort {
	SPF_OK = -1,
	SPF_NO_VMA = USPF_C_SPF_ABORT_NO_VMA,
	SPF_SEQ_ODD = USPF_C_SPF_ABORT_SEQ_ODD,
	SPF_NOT_ANON = USPF_C_SPF_ABORT_NOT_ANON,
	SPF_NO_ANON_VMA = USPF_C_SPF_ABORT_NO_ANON_VMA,
	SPF_OUTSIDE = USPF_C_SPF_ABORT_OUTSIDE,
	SPF_SNAPSHOT = USPF_C_SPF_ABORT_SNAPSHOT,
	SPF_VMA_CHANGED = USPF_C_SPF_ABORT_VMA_CHANGED,
	SPF_FILL = USPF_NR_COUNTERS,	/* the backing failed: not a locking abort */
	SPF_RETRY,			/* -EAGAIN at the commit: not a locking abort */
};

/* Find and snapshot the VMA; caller holds rcu_read_lock(). */
static enum spf_abort spf_find_vma(struct vm_fault *vmf)
{
	struct uspf_vma *vma = vma_lookup(vmf->mm, vmf->address);
	unsigned int seq;

	if (!vma)
		return SPF_NO_VMA;
	seq = raw_read_seqcount(&vma->vm_sequence);
	if (seq & 1)
		return SPF_SEQ_ODD;
	if (!vma_is_anonymous(vma))
		return SPF_NOT_ANON;
	/* __anon_vma_prepare() needs mmap_lock: leave it to the classic path. */
	if (!CMM_LOAD_SHARED(vma->anon_vma))
		return SPF_NO_ANON_VMA;
	stall_at(vmf->mm, STALL_SNAPSHOT);
	vmf_snapshot(vmf, vma);
	if (vmf->address < vmf->vm_start || vmf->address >= vmf->vm_end)
		return SPF_OUTSIDE;
	/* The snapshot must be one the writer never saw half-written. */
	if (read_seqcount_retry(&vma->vm_sequence, seq))
		return SPF_SNAPSHOT;
	vmf->sequence = seq;
	return SPF_OK;
}

/* __handle_speculative_fault() through the commit; SPF_OK means the fault ended. */
static enum spf_abort spf_try(struct vm_fault *vmf)
{
	unsigned int ptl = ptl_index(vmf->address);
	enum spf_abort why;
	enum vmf_result r;

	why = spf_find_vma(vmf);
	if (why != SPF_OK)
		return why;
	if (vmf_prepare(vmf))
		return SPF_FILL;
	if (inject(vmf->mm, INJ_SPF_COMMIT_BEFORE_PTL)) {
		/* The bug: revalidate, then commit with no PTL to order us against a zap. */
		if (vma_has_changed(vmf))
			return SPF_VMA_CHANGED;
		stall_at(vmf->mm, STALL_FILLED);
		vmf_check_commit(vmf);
		r = vmf_commit(vmf);
	} else {
		if (!pte_map_lock(vmf, ptl))
			return SPF_VMA_CHANGED;
		vmf_check_commit(vmf);
		r = vmf_commit(vmf);
		ptl_unlock(&vmf->mm->ptl, ptl);
	}
	if (r == VMF_AGAIN) {
		/* mmap_changing: not a locking abort; the classic path retries. */
		count_event(vmf->h, USPF_C_RETRY);
		return SPF_RETRY;
	}
	count_event(vmf->h, USPF_C_SPF_SUCCESS);
	vmf_end(vmf, r);
	return SPF_OK;
}

static bool spf_abort_by_writer(enum spf_abort why)
{
	return why == SPF_SEQ_ODD || why == SPF_SNAPSHOT || why == SPF_VMA_CHANGED;
}

static void spf_handle_fault(struct vm_fault *vmf)
{
	struct uspf_mm *mm = vmf->mm;
	enum spf_abort why;

	if (spf_backoff_active(mm)) {
		count_event(vmf->h, USPF_C_SPF_BACKOFF);
		do_fault_mmap_lock(vmf);
		return;
	}
	count_event(vmf->h, USPF_C_SPF_ATTEMPT);
	/* The VMA stays valid until a grace period after it is detached. */
	rcu_read_lock();
	why = spf_try(vmf);
	rcu_read_unlock();
	if (why == SPF_OK)
		return;
	if (why != SPF_FILL && why != SPF_RETRY) {
		count_event(vmf->h, (enum uspf_counter)why);
		if (spf_abort_by_writer(why))
			spf_note_writer_abort(mm);
	}
	count_event(vmf->h, USPF_C_MMAP_LOCK_FALLBACK);
	do_fault_mmap_lock(vmf);
}

const struct uspf_policy policy_spf = {
	.name = "spf",
	.id = USPF_POLICY_SPF,
	.models = "Dufour's speculative page fault (v12) + per-jiffy abort backoff to mmap_lock",
	.vm_sequence = true,
	.handle_fault = spf_handle_fault,
};

/*
 * The default spf is the shape this project was asked for: Dufour's path
 * plus the per-jiffy abort backoff to the mmap lock.  The series as
 * published (v12, 2019) has no backoff: a fault that aborts always
 * retries under the mmap lock, and the next one speculates again.  The
 * same path with the backoff off, under a name of its own, so that a
 * comparison with the series' numbers says which one ran.
 */
const struct uspf_policy policy_spf_v12 = {
	.name = "spf-v12",
	.id = USPF_POLICY_SPF_V12,
	.models = "Dufour's speculative page fault v12 as published: no abort backoff",
	.vm_sequence = true,
	.no_backoff = true,
	.handle_fault = spf_handle_fault,
};
