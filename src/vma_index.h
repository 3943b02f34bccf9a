/* SPDX-License-Identifier: MIT */
/*
 * vma_index.h - an RCU-protected ordered index of VMAs by address,
 * standing in for the kernel's maple tree walked under RCU.
 *
 * liburcu 0.13 has no ordered structure, so this is a skip list built on
 * its primitives.  Each node holds one range [start, end) and an opaque
 * entry pointer (a struct uspf_vma *).  Ranges never overlap.
 *
 * Locking rules:
 * - vma_index_lookup() and vma_index_find() may run concurrently with
 *   writers; the caller holds rcu_read_lock() (urcu-bp) and must treat what
 *   it gets as a hint to revalidate (the node's range may be changing; the
 *   entry may be on its way out, but stays valid until a grace period).
 * - vma_index_insert(), vma_index_erase() and vma_index_set_range() must be
 *   serialised by the caller (the mmap write lock).  Erased nodes are freed
 *   after a grace period (call_rcu).
 * - Lookups are O(log n) expected, updates O(log n): no update copies the
 *   index.
 */
#ifndef USPF_VMA_INDEX_H
#define USPF_VMA_INDEX_H

#include <stddef.h>
#include <stdint.h>

#define VMA_INDEX_MAX_LEVEL 24

struct vma_index_node;

struct vma_index {
	struct vma_index_node *head;	/* sentinel with VMA_INDEX_MAX_LEVEL links */
	unsigned int level;		/* levels in use */
	size_t count;
	uint64_t rng;			/* level generator state (writers only) */
};

int vma_index_init(struct vma_index *idx, uint64_t seed);
/* Free every node at once: no reader may be left. Entries are not touched. */
void vma_index_destroy(struct vma_index *idx);

/* -EEXIST if [start, end) overlaps a present range, -EINVAL if empty, -ENOMEM. */
int vma_index_insert(struct vma_index *idx, unsigned long start, unsigned long end,
		     void *entry);
/* Remove the range starting at start; returns its entry, NULL if none. */
void *vma_index_erase(struct vma_index *idx, unsigned long start);
/*
 * Change the range that starts at old_start to [start, end) in place; the
 * new range must not overlap a neighbour (-EEXIST) or be empty (-EINVAL);
 * -ENOENT if no range starts at old_start.
 */
int vma_index_set_range(struct vma_index *idx, unsigned long old_start,
			unsigned long start, unsigned long end);

/* The entry whose range contains addr, or NULL. */
void *vma_index_lookup(const struct vma_index *idx, unsigned long addr);
/*
 * find_vma(): the entry of the lowest range ending above addr, or NULL;
 * its range is stored in *start and *end (when not NULL).
 */
void *vma_index_find(const struct vma_index *idx, unsigned long addr,
		     unsigned long *start, unsigned long *end);

/* Debug: mprotect() the node caches (see kmem_cache_protect()). */
int vma_index_protect(int prot);

static inline size_t vma_index_count(const struct vma_index *idx)
{
	return idx->count;
}

#endif
