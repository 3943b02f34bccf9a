/* SPDX-License-Identifier: MIT */
/*
 * vma_index.c - the VMA index: a skip list with one writer and lock-free
 * RCU readers (urcu-bp), standing in for the kernel's maple tree.
 *
 * Locking rules:
 *
 *   field                   the writer stores with     readers load with
 *   ->next[] (head's too)   rcu_assign_pointer()       rcu_dereference()
 *   ->start, ->end          CMM_STORE_SHARED()         CMM_LOAD_SHARED()
 *   ->entry, ->height       plain, before publishing   plain
 *   idx->level, idx->count  CMM_STORE_SHARED()         CMM_LOAD_SHARED()
 *   idx->rng                plain                      (never)
 *
 * - The writer (insert, erase, set_range) is serialised by the caller
 *   (the mmap write lock); it takes no lock of its own.
 * - Readers (lookup, find) hold rcu_read_lock() and take no lock at all.
 * - Insert fills a node's links before anyone can see it, then publishes
 *   it bottom-up: a reader that finds it at level i can always descend.
 * - Erase unlinks top-down and leaves the node's own links intact, so a
 *   reader standing on it still walks forward onto live (or themselves
 *   not yet freed) nodes.  The node is freed by call_rcu().
 * - set_range() moves a node's bounds in place without reordering the
 *   list.  It stores the shrinking bound before the growing one, so a
 *   reader never sees the node claim an address outside both the old and
 *   the new range, nor overlap a neighbour.  A range cannot move past a
 *   neighbour (-EEXIST): that would reorder the list.
 * - vma_index_destroy() frees every node at once: no reader of this index
 *   may be left.  It does not wait for, and need not be ordered after,
 *   call_rcu() callbacks of nodes erased earlier (see below).
 *
 * Memory comes from kmem caches, never malloc (which may be served by
 * userfaultfd-registered memory under `uspf run`).  Nodes have variable
 * height; six size classes, 64-byte aligned, make the average node about
 * 68 bytes (100,000 ranges: under 7 MB).  The
 * caches are process-wide and never destroyed, so call_rcu() callbacks
 * still pending when an index is destroyed free into live caches:
 * vma_index_destroy() needs no rcu_barrier() and never blocks.
 */
/* Inline rcu_dereference() & co.: liburcu allows this for non-LGPL code. */
#ifndef URCU_INLINE_SMALL_FUNCTIONS
#define URCU_INLINE_SMALL_FUNCTIONS
#endif
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <string.h>

#include <urcu-bp.h>

#include "kmem.h"
#include "vma_index.h"

struct vma_index_node {
	struct rcu_head rcu;		/* call_rcu() on erase */
	unsigned int height;		/* links in next[] */
	void *entry;
	unsigned long start;		/* start..next[1] share a cache line */
	unsigned long end;
	struct vma_index_node *next[];
};

/* Size classes by height: p = 1/4 puts 99.6% of nodes in the first four. */
static const unsigned int node_class_height[] = { 1, 2, 3, 4, 8, VMA_INDEX_MAX_LEVEL };
#define NODE_CLASSES	(sizeof(node_class_height) / sizeof(node_class_height[0]))

static struct kmem_cache *node_caches[NODE_CLASSES];
static pthread_once_t node_caches_once = PTHREAD_ONCE_INIT;
static int node_caches_err;

/*
 * Freed nodes get this in every link and bound: a reader that outlived its
 * grace period faults on a non-canonical address instead of wandering.
 */
#define NODE_POISON	0x6b6b6b6b6b6b6b6bul

static void node_caches_create(void)
{
	unsigned int i;

	for (i = 0; i < NODE_CLASSES; i++) {
		size_t size = sizeof(struct vma_index_node) +
			      node_class_height[i] * sizeof(struct vma_index_node *);

		/* 64-byte alignment keeps start..next[1] in one line. */
		node_caches[i] = kmem_cache_create("vma_index_node", size, 64);
		if (!node_caches[i]) {
			node_caches_err = -ENOMEM;
			return;
		}
	}
}

int vma_index_protect(int prot)
{
	unsigned int i;
	int ret = 0;

	for (i = 0; i < NODE_CLASSES && !ret; i++)
		ret = kmem_cache_protect(node_caches[i], prot);
	return ret;
}

static struct kmem_cache *node_cache(unsigned int height)
{
	unsigned int i = 0;

	while (node_class_height[i] < height)
		i++;
	return node_caches[i];
}

static struct vma_index_node *node_alloc(unsigned int height)
{
	struct vma_index_node *node = kmem_cache_alloc(node_cache(height));

	if (node)
		node->height = height;
	return node;
}

static void node_free(struct vma_index_node *node)
{
	unsigned int l, height = node->height;

	for (l = 0; l < height; l++)
		node->next[l] = (struct vma_index_node *)NODE_POISON;
	node->start = NODE_POISON;
	node->end = NODE_POISON;
	kmem_cache_free(node_cache(height), node);
}

static void node_free_rcu(struct rcu_head *head)
{
	node_free(caa_container_of(head, struct vma_index_node, rcu));
}

/* splitmix64: spreads any seed (0 included) into a usable xorshift state. */
static uint64_t rng_seed(uint64_t seed)
{
	uint64_t z = seed + 0x9e3779b97f4a7c15ull;

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return (z ^ (z >> 31)) | 1;	/* xorshift state must not be 0 */
}

static uint64_t rng_next(uint64_t *s)
{
	uint64_t x = *s;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	*s = x;
	return x;
}

/* Height with P(h > k) = 4^-k: one random word gives 32 coin pairs. */
static unsigned int random_height(struct vma_index *idx)
{
	uint64_t r = rng_next(&idx->rng);
	unsigned int h = 1;

	while (h < VMA_INDEX_MAX_LEVEL && !(r & 3)) {
		h++;
		r >>= 2;
	}
	return h;
}

int vma_index_init(struct vma_index *idx, uint64_t seed)
{
	memset(idx, 0, sizeof(*idx));
	pthread_once(&node_caches_once, node_caches_create);
	if (node_caches_err)
		return node_caches_err;
	idx->head = node_alloc(VMA_INDEX_MAX_LEVEL);
	if (!idx->head)
		return -ENOMEM;
	idx->level = 1;
	idx->rng = rng_seed(seed);
	return 0;
}

void vma_index_destroy(struct vma_index *idx)
{
	struct vma_index_node *node, *next;

	if (!idx->head)
		return;
	for (node = idx->head->next[0]; node; node = next) {
		next = node->next[0];
		node_free(node);
	}
	node_free(idx->head);
	idx->head = NULL;
	idx->level = 0;
	idx->count = 0;
}

/*
 * Writer side: fill update[] with the last node before start at every
 * level (the head above the levels in use) and return the first node at
 * or after start.  Only the writer changes links, so plain loads do.
 */
static struct vma_index_node *find_update(struct vma_index *idx, unsigned long start,
					  struct vma_index_node **update)
{
	struct vma_index_node *x = idx->head, *n;
	int l;

	for (l = VMA_INDEX_MAX_LEVEL - 1; l >= (int)idx->level; l--)
		update[l] = x;
	for (; l >= 0; l--) {
		while ((n = x->next[l]) && n->start < start)
			x = n;
		update[l] = x;
	}
	return x->next[0];
}

/* Does [start, end) fit between prev (maybe the head) and next (maybe NULL)? */
static bool fits(const struct vma_index *idx, const struct vma_index_node *prev,
		 const struct vma_index_node *next, unsigned long start, unsigned long end)
{
	if (prev != idx->head && prev->end > start)
		return false;
	return !next || next->start >= end;
}

int vma_index_insert(struct vma_index *idx, unsigned long start, unsigned long end,
		     void *entry)
{
	struct vma_index_node *update[VMA_INDEX_MAX_LEVEL];
	struct vma_index_node *node, *next;
	unsigned int h, l;

	if (start >= end)
		return -EINVAL;
	next = find_update(idx, start, update);
	if (!fits(idx, update[0], next, start, end))
		return -EEXIST;

	h = random_height(idx);
	node = node_alloc(h);
	if (!node)
		return -ENOMEM;
	node->start = start;
	node->end = end;
	node->entry = entry;
	for (l = 0; l < h; l++)
		node->next[l] = update[l]->next[l];

	/* Bottom-up: whoever sees the node at level l can descend from it. */
	for (l = 0; l < h; l++)
		rcu_assign_pointer(update[l]->next[l], node);
	if (h > idx->level)
		CMM_STORE_SHARED(idx->level, h);
	CMM_STORE_SHARED(idx->count, idx->count + 1);
	return 0;
}

void *vma_index_erase(struct vma_index *idx, unsigned long start)
{
	struct vma_index_node *update[VMA_INDEX_MAX_LEVEL];
	struct vma_index_node *node;
	unsigned int l;
	void *entry;

	node = find_update(idx, start, update);
	if (!node || node->start != start)
		return NULL;
	entry = node->entry;	/* the callback may run as soon as call_rcu() */

	/* Top-down; node->next[] stays as is for readers standing on it. */
	for (l = node->height; l-- > 0;)
		rcu_assign_pointer(update[l]->next[l], node->next[l]);
	while (idx->level > 1 && !idx->head->next[idx->level - 1])
		CMM_STORE_SHARED(idx->level, idx->level - 1);
	CMM_STORE_SHARED(idx->count, idx->count - 1);

	call_rcu(&node->rcu, node_free_rcu);
	return entry;
}

int vma_index_set_range(struct vma_index *idx, unsigned long old_start,
			unsigned long start, unsigned long end)
{
	struct vma_index_node *update[VMA_INDEX_MAX_LEVEL];
	struct vma_index_node *node;

	if (start >= end)
		return -EINVAL;
	node = find_update(idx, old_start, update);
	if (!node || node->start != old_start)
		return -ENOENT;
	if (!fits(idx, update[0], node->next[0], start, end))
		return -EEXIST;

	/*
	 * Shrink first, then grow: in between, readers see the intersection
	 * of the two ranges (or, if they are disjoint, an empty one).  The
	 * barrier orders the two stores for readers on weakly ordered CPUs.
	 */
	if (start > node->start || end >= node->end) {
		CMM_STORE_SHARED(node->start, start);
		cmm_smp_wmb();
		CMM_STORE_SHARED(node->end, end);
	} else {
		CMM_STORE_SHARED(node->end, end);
		cmm_smp_wmb();
		CMM_STORE_SHARED(node->start, start);
	}
	return 0;
}

/* Reader side: the last node whose start is <= addr, or the head. */
static struct vma_index_node *walk_start(const struct vma_index *idx, unsigned long addr)
{
	struct vma_index_node *x = idx->head, *n;
	int l;

	for (l = (int)CMM_LOAD_SHARED(idx->level) - 1; l >= 0; l--) {
		while ((n = rcu_dereference(x->next[l])) &&
		       CMM_LOAD_SHARED(n->start) <= addr)
			x = n;
	}
	return x;
}

void *vma_index_lookup(const struct vma_index *idx, unsigned long addr)
{
	struct vma_index_node *x = walk_start(idx, addr);

	if (x == idx->head || addr >= CMM_LOAD_SHARED(x->end))
		return NULL;
	return x->entry;
}

/*
 * Reader side: the first node whose end is > addr, or NULL.  The answer is
 * the node that stopped the level-0 walk: loading x->next[0] again could
 * see a node inserted since, one that was never checked against addr.
 */
static struct vma_index_node *walk_end(const struct vma_index *idx, unsigned long addr)
{
	struct vma_index_node *x = idx->head, *n = NULL;
	int l;

	for (l = (int)CMM_LOAD_SHARED(idx->level) - 1; l >= 0; l--) {
		while ((n = rcu_dereference(x->next[l])) &&
		       CMM_LOAD_SHARED(n->end) <= addr)
			x = n;
	}
	return n;
}

void *vma_index_find(const struct vma_index *idx, unsigned long addr,
		     unsigned long *start, unsigned long *end)
{
	struct vma_index_node *x = walk_end(idx, addr);

	if (!x)
		return NULL;
	if (start)
		*start = CMM_LOAD_SHARED(x->start);
	if (end)
		*end = CMM_LOAD_SHARED(x->end);
	return x->entry;
}
