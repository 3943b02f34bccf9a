/* SPDX-License-Identifier: MIT */
/*
 * policy.h - fault-path locking policies: one operations table, one file
 * per policy (the liburcu habit: flavours behind one API).
 *
 * A policy's handle_fault() must end every fault with vmf_end() (or one of
 * its variants): a copy, or a wake.  Nothing else may happen to a fault.
 */
#ifndef USPF_POLICY_H
#define USPF_POLICY_H

#include "uspf.h"

struct vm_fault;

struct uspf_policy {
	const char *name;
	enum uspf_policy_id id;
	const char *models;		/* one line: what kernel design it models */
	void (*handle_fault)(struct vm_fault *vmf);
	const struct vma_lock_ops *vma_lock;	/* its per-VMA lock, or NULL */
	/*
	 * Its writers keep Dufour's per-VMA vm_sequence (vm_write_begin/end).
	 * Only the SPF series does: the classic path has no such count, the
	 * per-VMA designs have their own write lock, and Arcangeli's design
	 * exists precisely to spare writers that cost.
	 */
	bool vm_sequence;
	/* spf: never back off to the mmap lock after a storm of aborts (v12 as published). */
	bool no_backoff;
};

extern const struct uspf_policy policy_spf;
extern const struct uspf_policy policy_mmap_lock;
extern const struct uspf_policy policy_spf_adaptive;
extern const struct uspf_policy policy_pervma_rwsem;
extern const struct uspf_policy policy_pervma_refcnt;
extern const struct uspf_policy policy_spf_v12;

const struct uspf_policy *policy_get(enum uspf_policy_id id);

/*
 * The classic path, every policy's fallback: do_user_addr_fault() ->
 * handle_mm_fault() with mmap_lock held for read.
 */
void do_fault_mmap_lock(struct vm_fault *vmf);
/* The same, entered with mmap_read_lock() held (spf-adaptive's trylock); releases it. */
void do_fault_mmap_lock_locked(struct vm_fault *vmf);

#endif
