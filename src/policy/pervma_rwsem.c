/* SPDX-License-Identifier: MIT */
/*
 * policy/pervma_rwsem.c - per-VMA locks as merged in Linux 6.4
 * (Suren Baghdasaryan, 2023): vm_lock_seq plus a per-VMA rw_semaphore.
 *
 * A VMA is write-locked while its vm_lock_seq equals the mm's
 * mm_lock_seq.  Writers (mmap write lock held) call vma_start_write(),
 * which waits for the VMA's readers and stamps vm_lock_seq; they never
 * unlock VMAs one by one: mmap_write_unlock() and mmap_write_downgrade()
 * move mm_lock_seq on and so release every VMA write lock at once
 * (vma_end_write_all()).
 *
 * The fault path, lock_vma_under_rcu(): walk the index under RCU, bail out
 * for VMAs the path does not serve (file, no anon_vma), read-lock the VMA
 * with vma_start_read() (check vm_lock_seq, trylock, check again), check
 * the address against the now-stable range, and retry the walk if the VMA
 * was detached meanwhile (vma_lock_miss).  Any failure is vma_lock_abort
 * and the fault goes to mmap_lock.  Holding the VMA read lock, the fault
 * fills and commits: no revalidation is needed, writers are excluded.
 *
 * Lock order (Documentation/mm/process_addrs.rst): mmap_lock -> VMA lock
 * -> PTL.  The fault path takes the VMA lock without mmap_lock, and only
 * by trylock, so it never waits for a writer holding mmap_lock.
 */
#include "fault.h"
#include "handler.h"
#include "mm/inject.h"
#include "mm/mm.h"
#include "policy/policy.h"
#include "mm/ptl.h"
#include "mm/vma.h"
#include "policy/vma_lock.h"

/* include/linux/mm.h (6.4) vma_start_read() */
static bool vma_start_read(struct uspf_mm *mm, struct uspf_vma *vma)
{
	/* Write-locked already: do not even touch the lock's cacheline. */
	if (vma_is_write_locked(vma, mm_lock_seq(mm)))
		return false;
	stall_at(mm, STALL_CHECKED);
	if (!down_read_trylock(&vma->vm_lock))
		return false;
	stall_at(mm, STALL_LOCKED);
	/*
	 * The writer may have stamped vm_lock_seq and released its rwsem
	 * between the first check and the trylock: check again, now that a
	 * new vma_start_write() would have to wait for us.
	 */
	if (!inject(mm, INJ_RWSEM_NO_RECHECK) && vma_is_write_locked(vma, mm_lock_seq(mm))) {
		up_read(&vma->vm_lock);
		return false;
	}
	return true;
}

/*
 * include/linux/mm.h (6.4) vma_end_read(): the up_read() inside RCU, "to
 * keep the vma alive till the end of up_read": once the lock word is
 * released a writer can take the lock, detach the VMA and call_rcu() it,
 * while up_read() still clears a waiter bit and wakes.
 */
static void vma_end_read(struct uspf_mm *mm, struct uspf_vma *vma)
{
	bool in_rcu = !inject(mm, INJ_RWSEM_END_READ_OUTSIDE_RCU);
	bool debug = mm_debug_checks(mm);
	uint32_t old;

	if (in_rcu)
		rcu_read_lock();
	if (debug)
		atomic_fetch_add_explicit(&vma->vm_end_readers, 1, memory_order_relaxed);
	old = up_read_release(&vma->vm_lock);
	stall_at(mm, STALL_END_READ);
	up_read_wake(&vma->vm_lock, old);
	if (debug)
		atomic_fetch_sub_explicit(&vma->vm_end_readers, 1, memory_order_release);
	if (in_rcu)
		rcu_read_unlock();
}

/* vma_start_write(): mmap write lock held; mm_lock_seq is odd and ours. */
static void rwsem_vma_start_write(struct uspf_vma *vma)
{
	struct uspf_mm *mm = vma->vm_mm;
	unsigned int seq = mm_lock_seq(mm);

	if (vma_is_write_locked(vma, seq))
		return;
	if (!down_write_trylock(&vma->vm_lock)) {
		atomic_fetch_add_explicit(&mm->vma_write_waits, 1, memory_order_relaxed);
		down_write(&vma->vm_lock);	/* wait for the readers to leave */
	}
	atomic_store_explicit(&vma->vm_lock_seq, seq, memory_order_relaxed);
	up_write(&vma->vm_lock);
}

bool vma_rwsem_start_read(struct uspf_mm *mm, struct uspf_vma *vma)
{
	return vma_start_read(mm, vma);
}

void vma_rwsem_end_read(struct uspf_mm *mm, struct uspf_vma *vma)
{
	vma_end_read(mm, vma);
}

const struct vma_lock_ops vma_lock_rwsem = {
	.name = "rwsem",
	.start_write = rwsem_vma_start_write,
};

/* mm/memory.c (6.4) lock_vma_under_rcu() */
static struct uspf_vma *lock_vma_under_rcu(struct vm_fault *vmf)
{
	struct uspf_mm *mm = vmf->mm;
	unsigned long addr = vmf->address;
	struct uspf_vma *vma;
	bool early;

	rcu_read_lock();
retry:
	vma = vma_lookup(mm, addr);
	if (!vma)
		goto inval;
	/* Only anonymous VMAs are supported, */
	if (!vma_is_anonymous(vma))
		goto inval;
	early = inject(mm, INJ_RWSEM_ANON_VMA_BEFORE_LOCK);
	if (early && !CMM_LOAD_SHARED(vma->anon_vma))
		goto inval;
	stall_at(mm, STALL_LOOKUP);
	if (!vma_start_read(mm, vma))
		goto inval;
	/*
	 * and only with an anon_vma - checked once the VMA is read-locked
	 * (6.5, "mm: lock_vma_under_rcu() must check vma->anon_vma under
	 * vma lock"): before it, a concurrent MREMAP_DONTUNMAP could unlink
	 * the anon_vma between the check and the lock.
	 */
	if (!early && !CMM_LOAD_SHARED(vma->anon_vma)) {
		vma_end_read(mm, vma);
		goto inval;
	}
	/* vm_start/vm_end may have changed before we locked the VMA. */
	if (addr < vma->vm_start || addr >= vma->vm_end) {
		vma_end_read(vmf->mm, vma);
		goto inval;
	}
	/* Detached after we found it: the area was replaced; walk again. */
	if (vma_is_detached(vma) && !inject(mm, INJ_RWSEM_NO_DETACHED_CHECK)) {
		vma_end_read(vmf->mm, vma);
		count_event(vmf->h, USPF_C_VMA_LOCK_MISS);
		goto retry;
	}
	rcu_read_unlock();
	return vma;
inval:
	rcu_read_unlock();
	count_event(vmf->h, USPF_C_VMA_LOCK_ABORT);
	return NULL;
}

static void pervma_rwsem_handle_fault(struct vm_fault *vmf)
{
	unsigned int ptl = ptl_index(vmf->address);
	struct uspf_vma *vma = lock_vma_under_rcu(vmf);
	enum vmf_result r;

	if (!vma) {
		do_fault_mmap_lock(vmf);
		return;
	}
	vmf_snapshot(vmf, vma);
	vmf->vma_locked = true;
	/*
	 * The per-VMA path serves only VMAs with an anon_vma (preparing one
	 * needs mmap_lock); holding the VMA lock, it cannot go away.
	 */
	if (mm_debug_checks(vmf->mm) && !CMM_LOAD_SHARED(vma->anon_vma))
		mm_violation(vmf->mm, "pervma-rwsem: a fault at %#lx on a VMA with no anon_vma "
			     "under its VMA read lock", vmf->address);
	if (vmf_prepare(vmf)) {
		vma_end_read(vmf->mm, vma);
		do_fault_mmap_lock(vmf);	/* the backing failed: let the classic path decide */
		return;
	}
	ptl_lock(&vmf->mm->ptl, ptl);
	vmf_check_commit(vmf);
	r = vmf_commit(vmf);
	ptl_unlock(&vmf->mm->ptl, ptl);
	vma_end_read(vmf->mm, vma);
	if (r == VMF_AGAIN) {
		/* VM_FAULT_RETRY: the VMA lock is already dropped; go to mmap_lock. */
		count_event(vmf->h, USPF_C_VMA_LOCK_RETRY);
		do_fault_mmap_lock(vmf);
		return;
	}
	count_event(vmf->h, USPF_C_VMA_LOCK_SUCCESS);
	vmf_end(vmf, r);
}

const struct uspf_policy policy_pervma_rwsem = {
	.name = "pervma-rwsem",
	.id = USPF_POLICY_PERVMA_RWSEM,
	.models = "per-VMA locks as merged in 6.4: vm_lock_seq + per-VMA rwsem",
	.handle_fault = pervma_rwsem_handle_fault,
	.vma_lock = &vma_lock_rwsem,
};
