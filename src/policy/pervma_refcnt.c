/* SPDX-License-Identifier: MIT */
/*
 * policy/pervma_refcnt.c - per-VMA locks as reworked in 2025 (Suren
 * Baghdasaryan, seed 002): the VMA lock is a reference count, and the VMA
 * cache is SLAB_TYPESAFE_BY_RCU.
 *
 * vm_refcnt is 0 while the VMA is detached, 1 while attached, 1 + n with n
 * readers, and + VMA_LOCK_OFFSET while a writer excludes readers.  A
 * reader takes a reference with an acquiring increment that refuses 0
 * (detached) and anything above VMA_REF_LIMIT (a writer is in).  A writer
 * adds VMA_LOCK_OFFSET and waits for the readers to drain.
 *
 * Type-safe by RCU: a freed VMA goes back to the cache at once and may be
 * reused - by this mm or by another one sharing the cache - while a reader
 * that found it under RCU still looks at it; only its memory is
 * guaranteed to stay a VMA until a grace period.  So the reader, once it
 * holds a reference, checks everything that reuse could have changed:
 * vm_mm == mm (reused by another mm), vm_lock_seq (write-locked), and the
 * range (reused in this mm for another address).  A VMA's vm_mm and range
 * are stored before it is attached (release), and read after the
 * acquiring increment.
 *
 * Follows include/linux/mmap_lock.h and mm/mmap_lock.c: vma_start_read(),
 * vma_refcount_put(), __vma_enter_locked(), __vma_exit_locked(),
 * __vma_start_write(), vma_mark_attached(), vma_mark_detached(),
 * lock_vma_under_rcu().
 */
#include <limits.h>
#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "fault.h"
#include "handler.h"
#include "mm/inject.h"
#include "mm/mm.h"
#include "policy/policy.h"
#include "mm/ptl.h"
#include "mm/vma.h"
#include "policy/vma_lock.h"

/*
 * Where writers wait for readers to drain.  The kernel waits on the mm
 * (mm->vma_writer_wait) and a reader pins the VMA's mm (mmgrab) before
 * waking it, since a reused VMA may belong to an mm about to be freed.
 * One process-wide word needs no pinning: a wake meant for another mm's
 * writer is only a spurious wake-up.
 */
static _Atomic unsigned int vma_writer_wait;

/* __refcount_inc_not_zero_limited_acquire() */
static bool refcount_inc_not_zero_limited_acquire(atomic_uint *r, unsigned int *oldp,
						  unsigned int limit)
{
	unsigned int old = atomic_load_explicit(r, memory_order_relaxed);

	do {
		if (!old || old > limit) {
			*oldp = old;
			return false;
		}
	} while (!atomic_compare_exchange_weak_explicit(r, &old, old + 1, memory_order_acquire,
							memory_order_relaxed));
	*oldp = old;
	return true;
}

static bool is_vma_writer_only(unsigned int refcnt)
{
	/* A writer in, and no readers: attached (OFFSET + 1) or detaching (OFFSET). */
	return (refcnt & VMA_LOCK_OFFSET) && refcnt <= VMA_LOCK_OFFSET + 1;
}

static void vma_writer_wake(void)
{
	atomic_fetch_add_explicit(&vma_writer_wait, 1, memory_order_release);
	syscall(SYS_futex, &vma_writer_wait, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL, 0);
}

/* vma_refcount_put(): drop a reader's reference; wake a writer waiting for the last. */
static void vma_refcount_put(struct uspf_vma *vma)
{
	unsigned int old = atomic_fetch_sub_explicit(&vma->vm_refcnt, 1, memory_order_release);

	if (old - 1 && is_vma_writer_only(old - 1))
		vma_writer_wake();
}

/* vma_start_read(mm, vma), under RCU: the VMA may be a reused object. */
static enum vma_read vma_start_read(struct uspf_mm *mm, struct uspf_vma *vma)
{
	unsigned int old;

	if (vma_is_write_locked(vma, mm_lock_seq(mm)))
		return VMA_READ_ABORT;
	stall_at(mm, STALL_CHECKED);
	if (!refcount_inc_not_zero_limited_acquire(&vma->vm_refcnt, &old, VMA_REF_LIMIT))
		return old ? VMA_READ_ABORT : VMA_READ_MISS;	/* 0: detached under us */
	stall_at(mm, STALL_LOCKED);
	/* Reused by another mm: never dereference what we did not check. */
	if (CMM_LOAD_SHARED(vma->vm_mm) != mm && !inject(mm, INJ_REFCNT_NO_MM_CHECK)) {
		vma_refcount_put(vma);
		return VMA_READ_WRONG_MM;
	}
	/* Write-locked between the first check and the increment. */
	if (vma_is_write_locked(vma, mm_lock_seq(mm))) {
		vma_refcount_put(vma);
		return VMA_READ_ABORT;
	}
	return VMA_READ_OK;
}

static void vma_end_read(struct uspf_vma *vma)
{
	vma_refcount_put(vma);
}

/*
 * __vma_enter_locked(): add VMA_LOCK_OFFSET (fails if detached: nothing
 * to exclude), then wait until only the writer (and, unless detaching,
 * the attach reference) is left.
 */
static bool vma_enter_locked(struct uspf_vma *vma, bool detaching)
{
	unsigned int want = VMA_LOCK_OFFSET + (detaching ? 0 : 1);
	unsigned int old = atomic_load_explicit(&vma->vm_refcnt, memory_order_relaxed);
	bool waited = false;

	do {
		if (!old)
			return false;
	} while (!atomic_compare_exchange_weak_explicit(&vma->vm_refcnt, &old,
							old + VMA_LOCK_OFFSET,
							memory_order_acquire,
							memory_order_relaxed));
	for (;;) {
		unsigned int w = atomic_load_explicit(&vma_writer_wait, memory_order_acquire);

		if (atomic_load_explicit(&vma->vm_refcnt, memory_order_acquire) == want)
			break;
		waited = true;
		syscall(SYS_futex, &vma_writer_wait, FUTEX_WAIT_PRIVATE, w, NULL, NULL, 0);
	}
	if (waited)
		atomic_fetch_add_explicit(&vma->vm_mm->vma_write_waits, 1, memory_order_relaxed);
	return true;
}

/* __vma_exit_locked(): the writer leaves; true if that detached the VMA. */
static bool vma_exit_locked(struct uspf_vma *vma)
{
	return atomic_fetch_sub_explicit(&vma->vm_refcnt, VMA_LOCK_OFFSET,
					 memory_order_release) == VMA_LOCK_OFFSET;
}

/* __vma_start_write(): mmap write lock held. */
static void refcnt_vma_start_write(struct uspf_vma *vma)
{
	unsigned int seq = mm_lock_seq(vma->vm_mm);
	bool locked;

	if (vma_is_write_locked(vma, seq))
		return;
	locked = vma_enter_locked(vma, false);
	/* Readers are out (or it is detached): no one sees vm_lock_seq change under them. */
	atomic_store_explicit(&vma->vm_lock_seq, seq, memory_order_relaxed);
	if (locked)
		vma_exit_locked(vma);
}

/* vma_mark_attached(): write-locked; vm_mm and the range are set before (release). */
static void refcnt_vma_mark_attached(struct uspf_vma *vma)
{
	atomic_store_explicit(&vma->vm_refcnt, 1, memory_order_release);
}

/* vma_mark_detached(): write-locked; drop the attach reference, wait out readers. */
static void refcnt_vma_mark_detached(struct uspf_vma *vma)
{
	if (atomic_fetch_sub_explicit(&vma->vm_refcnt, 1, memory_order_acq_rel) == 1)
		return;
	/* Readers hold it: wait until they leave; the last exit makes it 0. */
	if (vma_enter_locked(vma, true))
		vma_exit_locked(vma);
}

static void refcnt_vma_init(struct uspf_vma *vma)
{
	/* Reused objects were freed detached: vm_refcnt is 0 already. */
	atomic_store_explicit(&vma->vm_refcnt, 0, memory_order_relaxed);
}

enum vma_read vma_refcnt_start_read(struct uspf_mm *mm, struct uspf_vma *vma)
{
	return vma_start_read(mm, vma);
}

void vma_refcnt_end_read(struct uspf_vma *vma)
{
	vma_end_read(vma);
}

const struct vma_lock_ops vma_lock_refcnt = {
	.name = "refcnt",
	.init = refcnt_vma_init,
	.start_write = refcnt_vma_start_write,
	.mark_attached = refcnt_vma_mark_attached,
	.mark_detached = refcnt_vma_mark_detached,
	.typesafe_by_rcu = true,
};

/* lock_vma_under_rcu() (2025) */
static struct uspf_vma *lock_vma_under_rcu(struct vm_fault *vmf)
{
	struct uspf_mm *mm = vmf->mm;
	unsigned long addr = vmf->address;
	struct uspf_vma *vma;

	rcu_read_lock();
retry:
	vma = vma_lookup(mm, addr);
	if (!vma)
		goto inval;
	stall_at(mm, STALL_LOOKUP);
	switch (vma_start_read(mm, vma)) {
	case VMA_READ_MISS:
		/* Detached after the walk: the area was replaced; walk again. */
		count_event(vmf->h, USPF_C_VMA_LOCK_MISS);
		goto retry;
	case VMA_READ_WRONG_MM:
		count_event(vmf->h, USPF_C_VMA_LOCK_WRONG_MM);
		goto inval;
	case VMA_READ_ABORT:
		goto inval;
	case VMA_READ_OK:
		break;
	}
	/*
	 * A stable reference: from here on the VMA cannot change under us.
	 * Since 6.10 the range (and vm_mm, above) is all that is checked
	 * here: file VMAs are served under the VMA lock too (read faults
	 * since 6.7), and a missing anon_vma is the fault's business.
	 */
	if (!inject(mm, INJ_REFCNT_NO_RANGE_CHECK) &&
	    (addr < vma->vm_start || addr >= vma->vm_end))
		goto inval_end_read;
	rcu_read_unlock();
	return vma;
inval_end_read:
	vma_end_read(vma);
inval:
	rcu_read_unlock();
	count_event(vmf->h, USPF_C_VMA_LOCK_ABORT);
	return NULL;
}

static void pervma_refcnt_handle_fault(struct vm_fault *vmf)
{
	unsigned int ptl = ptl_index(vmf->address);
	struct uspf_vma *vma = lock_vma_under_rcu(vmf);
	bool put_early;
	enum vmf_result r;

	if (!vma) {
		do_fault_mmap_lock(vmf);
		return;
	}
	/*
	 * vmf_anon_prepare(): a write fault (an anonymous page, or a private
	 * file page's copy) needs an anon_vma, and __anon_vma_prepare() needs
	 * the mmap lock: VM_FAULT_RETRY, counted as vma_lock_retry.  A read
	 * fault needs none (the kernel maps the zero page or the file's page).
	 */
	if ((vmf->flags & FAULT_FLAG_WRITE) && !CMM_LOAD_SHARED(vma->anon_vma)) {
		vma_end_read(vma);
		count_event(vmf->h, USPF_C_VMA_LOCK_RETRY);
		do_fault_mmap_lock(vmf);
		return;
	}
	vmf_snapshot(vmf, vma);
	vmf->vma_locked = true;
	if (vmf_prepare(vmf)) {
		vma_end_read(vma);
		do_fault_mmap_lock(vmf);	/* the backing failed: let the classic path decide */
		return;
	}
	put_early = inject(vmf->mm, INJ_REFCNT_PUT_BEFORE_COMMIT);
	if (put_early)
		vma_end_read(vma);
	ptl_lock(&vmf->mm->ptl, ptl);
	vmf_check_commit(vmf);
	r = vmf_commit(vmf);
	ptl_unlock(&vmf->mm->ptl, ptl);
	if (!put_early)
		vma_end_read(vma);
	if (r == VMF_AGAIN) {
		count_event(vmf->h, USPF_C_VMA_LOCK_RETRY);
		do_fault_mmap_lock(vmf);
		return;
	}
	count_event(vmf->h, USPF_C_VMA_LOCK_SUCCESS);
	vmf_end(vmf, r);
}

const struct uspf_policy policy_pervma_refcnt = {
	.name = "pervma-refcnt",
	.id = USPF_POLICY_PERVMA_REFCNT,
	.models = "per-VMA locks, 2025: vm_refcnt + SLAB_TYPESAFE_BY_RCU VMA cache, 6.10+ fault path",
	.handle_fault = pervma_refcnt_handle_fault,
	.vma_lock = &vma_lock_refcnt,
};
