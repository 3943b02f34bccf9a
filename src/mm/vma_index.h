/* SPDX-License-Identifier: MIT */
/*
 * mm/vma_index.h - an RCU-protected ordered index of VMAs by address,
 * standing in for the kernel's maple tree walked under RCU.
 *
 * liburcu 0.13 has no ordered structure, so this is a B-tree of wide,
 * cache-dense nodes built on its primitives, as the maple tree is: a
 * lookup in 100,000 ranges visits five nodes.  Each entry is a range
 * [start, end) and an opaque entry pointer (a struct uspf_vma *).  Ranges
 * never overlap.
 *
 * Locking rules:
 * - vma_index_lookup() and vma_index_find() may run concurrently with
 *   writers; the caller holds rcu_read_lock() (urcu-bp) and must treat what
 *   it gets as a hint to revalidate (the range may be changing; the entry
 *   may be on its way out, but stays valid until a grace period).
 * - vma_index_insert(), vma_index_erase() and vma_index_set_range() must be
 *   serialised by the caller (the mmap write lock).  Nodes they replace are
 *   freed after a grace period (call_rcu).
 * - What a reader may see while a writer runs:
 *   . an entry present with the same range for the whole call is found:
 *     by vma_index_lookup() at every address of its range, and by
 *     vma_index_find() unless it returns an entry below it;
 *   . an insert, an erase, a split (vma_index_split()) or a merge within
 *     one leaf (vma_index_merge()) is seen whole or not at all;
 *   . a range being changed by vma_index_set_range() is seen old, new, or
 *     with its new start and old end, and always inside the free space
 *     between its neighbours: it never overlaps another entry.
 * - Lookups and updates are O(log n): an insert or erase copies the leaf
 *   it changes, and the nodes above only where one splits or merges (at
 *   most one node and one sibling per level); set_range changes the range
 *   in place and never allocates.
 */
#ifndef USPF_VMA_INDEX_H
#define USPF_VMA_INDEX_H

#include <stddef.h>
#include <stdint.h>

#define VMA_INDEX_LEAF_SLOTS	15	/* ranges per leaf: keys in two cache lines */
#define VMA_INDEX_NODE_SLOTS	15	/* children per inner node: 14 pivots */
#define VMA_INDEX_MAX_HEIGHT	16	/* levels; 10^10 ranges need fewer */

struct vma_index_node;
struct vma_index_retired;

struct vma_index {
	struct vma_index_node *root;	/* NULL when empty */
	unsigned int height;		/* levels, leaves included; 0 when empty */
	size_t count;			/* entries */
	size_t holes;			/* slots erased in place for want of memory */
	struct vma_index_retired *retired;	/* replaced nodes not yet given to call_rcu */
};

/* seed: unused (the skip list drew node heights from it); kept for callers. */
int vma_index_init(struct vma_index *idx, uint64_t seed);
/* Free every node at once: no reader may be left. Entries are not touched. */
void vma_index_destroy(struct vma_index *idx);

/* -EEXIST if [start, end) overlaps a present range, -EINVAL if empty, -ENOMEM. */
int vma_index_insert(struct vma_index *idx, unsigned long start, unsigned long end,
		     void *entry);
/*
 * Remove the range starting at start; returns its entry, NULL if none.
 * Never fails: without memory for the copies, the slot is emptied in place.
 */
void *vma_index_erase(struct vma_index *idx, unsigned long start);
/*
 * Change the range that starts at old_start to [start, end) in place; the
 * new range must not overlap a neighbour (-EEXIST) or be empty (-EINVAL);
 * -ENOENT if no range starts at old_start.  Never allocates.
 */
int vma_index_set_range(struct vma_index *idx, unsigned long old_start,
			unsigned long start, unsigned long end);

/*
 * __split_vma() and vma_merge() as one step each for readers: the range
 * at start split at addr, the new half [addr, end) -> entry; the range at
 * next_start folded into the one at prev_start.  Never a hole at an
 * address mapped throughout.  split: -ENOENT, -EINVAL, -ENOMEM; merge:
 * -ENOENT, -ENOMEM, -EXDEV (not in one leaf: the caller erases and
 * extends).
 */
int vma_index_split(struct vma_index *idx, unsigned long start, unsigned long addr, void *entry);
int vma_index_merge(struct vma_index *idx, unsigned long prev_start, unsigned long next_start);
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

/* What vma_index_check() found. */
struct vma_index_shape {
	unsigned int height;
	size_t leaves, nodes;		/* leaf and inner nodes */
	unsigned int leaf_min;		/* fewest slots in a non-root leaf (0: none) */
	unsigned int node_min;		/* fewest children of a non-root inner node */
};

/*
 * Debug: check every invariant of the structure (no writer may run):
 * uniform depth, node fill, pivots, order, count.  0, or -EUCLEAN.
 * shape may be NULL.
 */
int vma_index_check(const struct vma_index *idx, struct vma_index_shape *shape);

static inline size_t vma_index_count(const struct vma_index *idx)
{
	return idx->count;
}

#endif
