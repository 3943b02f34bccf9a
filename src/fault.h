/* SPDX-License-Identifier: MIT */
/*
 * fault.h - struct vm_fault and the part of fault handling every policy
 * shares: snapshot the VMA, fill the page(s) with no lock held, commit
 * with the PTL held, end the fault (count it, queue its wake).
 *
 * The policies differ only in how they find the VMA and keep it stable
 * between the snapshot and the commit.
 */
#ifndef USPF_FAULT_H
#define USPF_FAULT_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "uspf.h"

#define FAULT_FLAG_WRITE	0x01u

struct uspf_handler;
struct uspf_mm;
struct uspf_vma;

struct vm_fault {
	struct uspf_handler *h;
	struct uspf_mm *mm;
	unsigned long address;		/* page aligned */
	unsigned int flags;
	pid_t ptid;			/* faulting thread, for SIGBUS */

	/* The snapshot the fault works from (vmf->vma_flags etc. in SPF). */
	struct uspf_vma *vma;
	unsigned long vm_start;
	unsigned long vm_end;
	unsigned long vm_pgoff;
	unsigned long vm_flags;
	struct uspf_backing backing;
	unsigned int sequence;		/* vm_sequence at the snapshot */
	unsigned int zaps;		/* vm_zaps at the snapshot (debug checks) */

	bool vma_locked;		/* the policy holds the VMA stable (a lock) */

	/* What the commit installs: [win_start, win_start + win_len) from src. */
	unsigned long win_start;
	size_t win_len;
	const void *src;		/* NULL: install zero pages */
};

enum vmf_result {
	VMF_DONE,	/* installed (the faulting page at least) */
	VMF_EXIST,	/* already present: someone else won */
	VMF_GONE,	/* -ENOENT: the range left the VMA */
	VMF_AGAIN,	/* -EAGAIN with nothing installed: retry */
	VMF_ESRCH,	/* the address space is gone */
	VMF_ERROR,	/* any other resolve error */
};

/* Copy the fields the fault uses; caller keeps the VMA stable or revalidates. */
void vmf_snapshot(struct vm_fault *vmf, struct uspf_vma *vma);
/* Pick the window (fault-around) and fill it; no lock needed. 0 or -errno. */
int vmf_prepare(struct vm_fault *vmf);
/*
 * Debug checks (PROTOCOLS.md section 7), PTL held, just before the commit:
 * no zap of the VMA ran since the snapshot (a commit now would install
 * pages filled for memory that was replaced or dropped) - the check that
 * holds for every policy, since a zap needs the PTL we hold; and for the
 * policies that hold the VMA locked, that it is attached, belongs to this
 * mm, contains the address and still has the backing the pages were
 * filled from.  (A lock-free policy's VMA may legitimately start changing
 * once it has revalidated: the writer's zap then waits for our PTL.)
 * A violation is recorded, not fatal.
 */
void vmf_check_commit(struct vm_fault *vmf);
/* Install the window: the caller holds the PTL of vmf->address. */
enum vmf_result vmf_commit(struct vm_fault *vmf);
/* Account the result and queue the wake that ends the fault. */
void vmf_end(struct vm_fault *vmf, enum vmf_result r);
/* The backing failed: the thread gets SIGBUS, and is woken. */
void vmf_end_sigbus(struct vm_fault *vmf);
/* No VMA under mmap_lock: wake, the refault raises SIGSEGV. */
void vmf_end_bad_area(struct vm_fault *vmf);

/* Bounded retries of a resolve that returned -EAGAIN. */
#define VMF_MAX_RETRIES 16

#endif
