/* SPDX-License-Identifier: MIT */
/*
 * fault.c - what every policy does once it has a VMA: the user-space
 * handle_pte_fault() / do_anonymous_page().
 *
 * The expensive part (filling the pages) runs from a snapshot with no lock
 * held; only the install (UFFDIO_COPY / UFFDIO_ZEROPAGE, the set_pte_at()
 * of this model) runs under the PTL.  Every fault ends in vmf_end*(): the
 * faulting thread is either woken by the kernel on a successful copy or
 * queued for UFFDIO_WAKE.
 */
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "backing.h"
#include "fault.h"
#include "handler.h"
#include "mm/mm.h"
#include "mm/ptl.h"
#include "runtime.h"
#include "stats.h"
#include "mm/vma.h"

void vmf_snapshot(struct vm_fault *vmf, struct uspf_vma *vma)
{
	vmf->vma = vma;
	vmf->vm_start = CMM_LOAD_SHARED(vma->vm_start);
	vmf->vm_end = CMM_LOAD_SHARED(vma->vm_end);
	vmf->vm_pgoff = CMM_LOAD_SHARED(vma->vm_pgoff);
	vmf->vm_flags = CMM_LOAD_SHARED(vma->vm_flags);
	vmf->backing = vma->backing;
	vmf->zaps = atomic_load_explicit(&vma->vm_zaps, memory_order_acquire);

}

/*
 * Fault-around: the faulting page and the missing pages after it, up to
 * folio_pages pages, inside the VMA and inside one page table (one PTL).
 * The kernel's copy stops at the first page already present.
 */
static void vmf_window(struct vm_fault *vmf)
{
	unsigned long end = vmf->address + (unsigned long)vmf->h->u->cfg.folio_pages * PAGE_SIZE;
	unsigned long pmd_end = (vmf->address & PMD_MASK) + PMD_SIZE;

	if (end > vmf->vm_end)
		end = vmf->vm_end;
	if (end > pmd_end)
		end = pmd_end;
	if (end <= vmf->address)
		end = vmf->address + PAGE_SIZE;
	vmf->win_start = vmf->address;
	vmf->win_len = end - vmf->address;
}

int vmf_prepare(struct vm_fault *vmf)
{
	struct uspf_handler *h = vmf->h;
	uint64_t pgoff;

	vmf_window(vmf);
	if (vmf->backing.kind == USPF_BACKING_ZERO) {
		/* Read faults map the zero page, write faults a zeroed copy, as the kernel. */
		vmf->src = (vmf->flags & FAULT_FLAG_WRITE) ? h->u->zero_area : NULL;
		return 0;
	}
	pgoff = vmf->vm_pgoff + ((vmf->win_start - vmf->vm_start) >> PAGE_SHIFT);
	vmf->src = h->buf;
	return backing_fill(&vmf->backing, pgoff, h->buf, vmf->win_len);
}

enum vmf_result vmf_commit(struct vm_fault *vmf)
{
	struct uspf_handler *h = vmf->h;
	struct uffd *uffd = &h->u->uffd;
	long ret;

	if (vmf->src)
		ret = uffd_copy(uffd, vmf->win_start, vmf->src, vmf->win_len, h->dontwake);
	else
		ret = uffd_zeropage(uffd, vmf->win_start, vmf->win_len, h->dontwake);
	/*
	 * A window the kernel refuses whole crossed a real VMA boundary the
	 * model does not see (two mappings that differ only in VM_ACCOUNT, an
	 * anon_vma on one side: the model merged what the kernel keeps apart).
	 * Waking would livelock - the thread refaults into the same window -
	 * so install the faulting page alone: it is inside the VMA the kernel
	 * faulted in.  One page per fault is the kernel's own behaviour.
	 */
	if (ret == -ENOENT && vmf->win_len > PAGE_SIZE) {
		vmf->win_len = PAGE_SIZE;
		count_event(h, USPF_C_ENOENT);
		if (vmf->src)
			ret = uffd_copy(uffd, vmf->win_start, vmf->src, PAGE_SIZE, h->dontwake);
		else
			ret = uffd_zeropage(uffd, vmf->win_start, PAGE_SIZE, h->dontwake);
	}
	if (ret > 0) {
		/* Bytes installed: the window, or up to the first present page. */
		vmf->win_len = (size_t)ret;
		return VMF_DONE;
	}
	switch (ret) {
	case -EEXIST:
		return VMF_EXIST;
	case -ENOENT:
		return VMF_GONE;
	case -EAGAIN:
		return VMF_AGAIN;
	case -ESRCH:
		return VMF_ESRCH;
	default:
		return VMF_ERROR;
	}
}

void vmf_check_commit(struct vm_fault *vmf)
{
	struct uspf_mm *mm = vmf->mm;
	struct uspf_vma *vma = vmf->vma;
	const char *who = vmf->h->u->policy->name;
	unsigned long real;
	unsigned int zaps;

	if (!mm_debug_checks(mm))
		return;
	zaps = atomic_load_explicit(&vma->vm_zaps, memory_order_acquire);
	if (zaps != vmf->zaps)
		mm_violation(mm, "%s: commit at %#lx after %u zaps of its VMA since the snapshot",
			     who, vmf->address, zaps - vmf->zaps);
	/*
	 * The page tables have another protection than the flags the fault
	 * committed with, and no mprotect is between setting new flags and
	 * changing the page tables (where the page tables lag the flags, and
	 * its walk will fix what we install): in the kernel the fault would
	 * install a PTE with the old protection for good (a writable PTE in a
	 * read-only VMA, the objection Dufour's series had to answer).
	 */
	real = atomic_load_explicit(&vma->vm_real_flags, memory_order_acquire);
	if (real && real != vmf->vm_flags &&
	    !atomic_load_explicit(&vma->vm_prot_pending, memory_order_acquire))
		mm_violation(mm, "%s: commit at %#lx with flags %#lx, the page tables' are %#lx: "
			     "a protection change it did not see", who, vmf->address,
			     vmf->vm_flags, real);
	if (!vmf->vma_locked)
		return;
	/*
	 * A VMA lock holder and a writer never overlap: vma_start_write()
	 * stamps vm_lock_seq only once the readers are out, and a reader that
	 * comes later sees the stamp (the re-check after the trylock).
	 */
	if (vma_is_write_locked(vma, mm_lock_seq(mm)))
		mm_violation(mm, "%s: commit at %#lx under the VMA read lock of a write-locked VMA",
			     who, vmf->address);
	else if (vma_is_detached(vma))
		mm_violation(mm, "%s: commit at %#lx on a detached VMA", who, vmf->address);
	else if (CMM_LOAD_SHARED(vma->vm_mm) != mm)
		mm_violation(mm, "%s: commit at %#lx on a VMA of another mm", who, vmf->address);
	else if (vmf->address < CMM_LOAD_SHARED(vma->vm_start) ||
		 vmf->address >= CMM_LOAD_SHARED(vma->vm_end))
		mm_violation(mm, "%s: commit at %#lx outside its VMA [%#lx, %#lx)", who,
			     vmf->address, vma->vm_start, vma->vm_end);
	else if (!backing_same(&vmf->backing, &vma->backing))
		mm_violation(mm, "%s: commit at %#lx of pages filled for another mapping "
			     "(generation %lu, the VMA's is %lu)", who, vmf->address,
			     (unsigned long)vmf->backing.pattern.generation,
			     (unsigned long)vma->backing.pattern.generation);
}

static void vmf_account_latency(struct vm_fault *vmf)
{
	struct uspf_handler *h = vmf->h;
	uint64_t ns = uspf_now_ns() - h->batch_start_ns;

	hist_add(h->hist, ns);
	count_add(h, USPF_C_HANDLE_NS, ns);
}

static void vmf_wake_page(struct vm_fault *vmf)
{
	handler_queue_wake(vmf->h, vmf->address, vmf->address + PAGE_SIZE);
}

void vmf_end(struct vm_fault *vmf, enum vmf_result r)
{
	struct uspf_handler *h = vmf->h;
	size_t pages;

	switch (r) {
	case VMF_DONE:
		pages = vmf->win_len >> PAGE_SHIFT;
		count_add(h, USPF_C_PAGES, pages);
		if (pages > 1)
			count_add(h, USPF_C_FOLIO_EXTRA_PAGES, pages - 1);
		/* Without DONTWAKE the kernel woke the range itself. */
		if (h->dontwake)
			handler_queue_wake(h, vmf->win_start, vmf->win_start + vmf->win_len);
		break;
	case VMF_EXIST:
		count_event(h, USPF_C_EEXIST);
		vmf_wake_page(vmf);
		break;
	case VMF_GONE:
		count_event(h, USPF_C_ENOENT);
		vmf_wake_page(vmf);
		break;
	case VMF_AGAIN:
		/* Retries exhausted: the woken thread refaults and we try again. */
		count_event(h, USPF_C_COPY_ERROR);
		vmf_wake_page(vmf);
		break;
	case VMF_ESRCH:
		count_event(h, USPF_C_ESRCH);
		vmf_wake_page(vmf);
		break;
	case VMF_ERROR:
		count_event(h, USPF_C_COPY_ERROR);
		vmf_wake_page(vmf);
		break;
	}
	vmf_account_latency(vmf);
}

/*
 * The kernel's SIGBUS for a failed fault (VM_FAULT_SIGBUS) is BUS_ADRERR
 * with si_addr.  rt_tgsigqueueinfo() takes a positive si_code only from
 * the thread it is sent to (EPERM from any other, even of the same
 * group), so the handler thread queues it as SI_QUEUE, with the page's
 * address in si_addr and in si_value (si_addr overlays SI_QUEUE's si_pid
 * and si_uid).  tgkill() if even that is refused (a seccomp filter):
 * a SIGBUS without the address beats none.
 */
static void send_sigbus(pid_t tid, unsigned long address)
{
	siginfo_t si;
	int saved = errno;

	memset(&si, 0, sizeof(si));
	si.si_signo = SIGBUS;
	si.si_code = SI_QUEUE;
	si.si_addr = (void *)address;
	si.si_value.sival_ptr = (void *)address;
	if (syscall(SYS_rt_tgsigqueueinfo, getpid(), tid, SIGBUS, &si))
		syscall(SYS_tgkill, getpid(), tid, SIGBUS);
	errno = saved;
}

void vmf_end_sigbus(struct vm_fault *vmf)
{
	/*
	 * Never hand out wrong memory: the thread gets SIGBUS, as for an I/O
	 * error on a file mapping.  The signal is pending before the wake, so
	 * it is delivered before the instruction is retried.
	 */
	count_event(vmf->h, USPF_C_FILL_ERROR);
	if (vmf->ptid > 0)
		send_sigbus(vmf->ptid, vmf->address);
	vmf_wake_page(vmf);
	vmf_account_latency(vmf);
}

void vmf_end_bad_area(struct vm_fault *vmf)
{
	count_event(vmf->h, USPF_C_BAD_AREA);
	vmf_wake_page(vmf);
	vmf_account_latency(vmf);
}
