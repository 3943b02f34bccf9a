/* SPDX-License-Identifier: MIT */
/*
 * policy/vma_lock.h - the two per-VMA lock designs, for their policies and for
 * the state tests that drive them step by step.
 *
 *   pervma-rwsem (6.4):  vm_lock_seq + a per-VMA rw_semaphore
 *   pervma-refcnt (2025): vm_lock_seq + vm_refcnt, type-safe VMA cache
 *
 * Read side: may be called under rcu_read_lock() with no other lock, on a
 * VMA found in the index.  Write side (through struct vma_lock_ops):
 * mmap write lock held.
 */
#ifndef USPF_VMA_LOCK_H
#define USPF_VMA_LOCK_H

#include <stdbool.h>

struct uspf_mm;
struct uspf_vma;

extern const struct vma_lock_ops vma_lock_rwsem;
extern const struct vma_lock_ops vma_lock_refcnt;

/* pervma-rwsem: vma_start_read() / vma_end_read() */
bool vma_rwsem_start_read(struct uspf_mm *mm, struct uspf_vma *vma);
void vma_rwsem_end_read(struct uspf_mm *mm, struct uspf_vma *vma);

#define VMA_LOCK_OFFSET	0x40000000u
#define VMA_REF_LIMIT	(VMA_LOCK_OFFSET - 1)

enum vma_read {
	VMA_READ_OK,		/* a reference is held: the VMA is stable */
	VMA_READ_ABORT,		/* write-locked, or a writer is in: mmap_lock path */
	VMA_READ_MISS,		/* detached (vm_refcnt 0): walk again */
	VMA_READ_WRONG_MM,	/* reused by another mm: mmap_lock path */
};

/* pervma-refcnt: vma_start_read(mm, vma) / vma_end_read() */
enum vma_read vma_refcnt_start_read(struct uspf_mm *mm, struct uspf_vma *vma);
void vma_refcnt_end_read(struct uspf_vma *vma);

#endif
