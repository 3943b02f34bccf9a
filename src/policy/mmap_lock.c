/* SPDX-License-Identifier: MIT */
/*
 * policy/mmap_lock.c - the classic fault path: the mm-wide mmap_lock held
 * for read from the VMA lookup to the commit.
 *
 * Follows arch/x86/mm/fault.c do_user_addr_fault() -> handle_mm_fault() ->
 * do_anonymous_page(): find the VMA under mmap_read_lock(), prepare the
 * anon_vma on a write fault (which needs the tree stable), allocate and
 * fill the page, take the PTL, set the PTE.  Writers are excluded for the
 * whole fault, which is what the other policies try to avoid.
 */
#include "fault.h"
#include "handler.h"
#include "mm/mm.h"
#include "policy/policy.h"
#include "mm/ptl.h"
#include "mm/vma.h"

static void mmap_lock_fault_contended(struct vm_fault *vmf)
{
	struct uspf_mm *mm = vmf->mm;

	/* Arcangeli: remember when the fault path found the lock taken (seed 003). */
	if (!mmap_read_trylock(mm)) {
		atomic_store_explicit(&mm->mmap_sem_contention_jiffies, mm_jiffies(mm),
				      memory_order_relaxed);
		mmap_read_lock(mm);
	}
}

/* The classic fault with mmap_read_lock() already held; releases it. */
void do_fault_mmap_lock_locked(struct vm_fault *vmf)
{
	struct uspf_mm *mm = vmf->mm;
	struct uspf_vma *vma;
	enum vmf_result r;
	unsigned int ptl, tries = 0;
	bool early_unlock;

	count_event(vmf->h, USPF_C_MMAP_LOCK_FAULT);
	vmf->vma_locked = true;	/* by mmap_lock, read */
	vma = vma_lookup(mm, vmf->address);
	if (!vma || vmf->address < vma->vm_start || vmf->address >= vma->vm_end) {
		mmap_read_unlock(mm);
		vmf_end_bad_area(vmf);
		return;
	}
	if ((vmf->flags & FAULT_FLAG_WRITE) && !vma->anon_vma) {
		if (anon_vma_prepare(vma)) {
			mmap_read_unlock(mm);
			vmf_end_sigbus(vmf);	/* VM_FAULT_OOM */
			return;
		}
		count_event(vmf->h, USPF_C_ANON_VMA_PREPARE);
	}
	vmf_snapshot(vmf, vma);
	if (vmf_prepare(vmf)) {
		mmap_read_unlock(mm);
		vmf_end_sigbus(vmf);
		return;
	}
	ptl = ptl_index(vmf->address);
	early_unlock = inject(mm, INJ_MMAP_LOCK_EARLY_UNLOCK);
	if (early_unlock)
		mmap_read_unlock(mm);	/* the bug: writers may change the VMA now */
	for (;;) {
		ptl_lock(&mm->ptl, ptl);
		vmf_check_commit(vmf);
		r = vmf_commit(vmf);
		ptl_unlock(&mm->ptl, ptl);
		if (r != VMF_AGAIN || ++tries > VMF_MAX_RETRIES)
			break;
		count_event(vmf->h, USPF_C_RETRY);
	}
	if (!early_unlock)
		mmap_read_unlock(mm);
	vmf_end(vmf, r);
}

void do_fault_mmap_lock(struct vm_fault *vmf)
{
	mmap_lock_fault_contended(vmf);
	do_fault_mmap_lock_locked(vmf);
}

static void mmap_lock_handle_fault(struct vm_fault *vmf)
{
	do_fault_mmap_lock(vmf);
}

const struct uspf_policy policy_mmap_lock = {
	.name = "mmap-lock",
	.id = USPF_POLICY_MMAP_LOCK,
	.models = "classic mm-wide mmap_lock (do_user_addr_fault)",
	.handle_fault = mmap_lock_handle_fault,
};
