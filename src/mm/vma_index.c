/* SPDX-License-Identifier: MIT */
/*
 * mm/vma_index.c - the VMA index: a B-tree of wide, cache-dense nodes with
 * one writer and lock-free RCU readers (urcu-bp), modelled on the kernel's
 * maple tree (lib/maple_tree.c: mas_walk() under rcu_read_lock(); a
 * changed node is replaced by a new one, published in its parent's slot,
 * and the old one freed after a grace period).
 *
 * Why: a skip list of 100,000 ranges makes a random lookup chase ~20
 * pointers to scattered nodes, one cache miss each (1.3 us measured).  A
 * B-tree node keeps its keys in two adjacent cache lines and a search
 * reads about log15(n) nodes - five for 100,000 ranges, the upper ones
 * always in cache - fetching each node's lines at once (prefetch).
 *
 * Layout (the first 128 bytes, level, count and keys, are common):
 *
 *   leaf  (384 B): level 0, count | end[15]   | {start, entry}[15] | rcu
 *   inner (256 B): level n, count | pivot[14] | child[15]         | rcu
 *
 * Leaf slots are sorted and their ends never decrease.  pivot[j] is the
 * largest end in child j's subtree, so a search for addr takes, at every
 * level, the first child whose pivot is above addr (the last if none),
 * and lands on the leaf holding the first slot ending above addr: the
 * only range that can contain addr, and find_vma()'s answer.  Unused keys
 * hold ULONG_MAX, so lookup() counts the keys at or below addr with no
 * branch on them.
 *
 * Locking rules:
 *
 *   field                   the writer stores with     readers load with
 *   idx->root, ->child[]    rcu_assign_pointer(), or   rcu_dereference()
 *                           plain before publishing
 *   ->level, ->count        plain, before publishing   plain
 *   ->key[] (ends, pivots)  CMM_STORE_SHARED()         CMM_LOAD_SHARED()
 *   slot start, entry       CMM_STORE_SHARED()         CMM_LOAD_SHARED()
 *   idx->count              CMM_STORE_SHARED()         CMM_LOAD_SHARED()
 *   idx->height, ->holes,   plain                      (never)
 *   idx->retired
 *
 * - The writer (insert, erase, set_range) is serialised by the caller
 *   (the mmap write lock); it takes no lock of its own.
 * - Readers (lookup, find) hold rcu_read_lock() and take no lock at all.
 * - Insert and erase copy on write: the leaf they change is rebuilt as a
 *   new node and published with one rcu_assign_pointer() in its parent's
 *   slot.  Where a leaf splits, shares slots with a sibling or merges,
 *   the parent is rebuilt too, and so on up (at most one node and one
 *   sibling per level); the first node that keeps its place gets the new
 *   subtree in one slot, or the new root goes in idx->root.  Readers see
 *   the old subtree or the new one, whole.  Replaced nodes go to
 *   call_rcu() in batches of 32 (idx->retired), or through the rcu_head
 *   each node carries if there is no memory for a batch.
 * - A subtree whose largest end changed changes the one pivot that names
 *   it in place, after the new subtree is in: in the lowest ancestor where
 *   the path does not take the last child.
 * - set_range() changes a range in place and allocates nothing: it stores
 *   the slot's start, then its end, then - if the slot is its leaf's last -
 *   the pivot that names that end.  A reader loads an end before the start
 *   (cmm_smp_rmb()), so it sees the old range, the new one, or the new
 *   start with the old end; the writer checked that both ranges lie
 *   between the live neighbours, so what it sees never overlaps them.
 * - erase() that cannot get memory for its copy empties the slot in place
 *   instead (entry = NULL: a "hole", counted in idx->holes), so erase never
 *   fails.  A hole keeps an end between its live neighbours' ranges, so
 *   searches still work; writers that move a range past a hole move the
 *   hole's end too; the next copy of its leaf drops it, and every write
 *   that gets memory copies one more leaf with holes.
 *
 * What readers see.  Every key a reader loads holds a value it had during
 * the reader's call (nodes replaced meanwhile keep their last values), and
 * every such value is ordered against any entry that stays present and
 * unchanged: at or below its start if before it, at or above its end if
 * after it.  So a search for an address inside such an entry takes the
 * same child at every level whatever mix of old and new keys it meets,
 * and finds it.  Keys that are changing may make a search reach a leaf
 * with no live slot ending above addr: lookup() then answers NULL (what
 * it wanted was changing); find() searches again from the deepest pivot
 * that bounded that leaf - every slot after the leaf ends above it, so it
 * skips nothing that stays, and it is above addr, so the search ends.
 *
 * vma_index_destroy() frees every node at once: no reader of this index
 * may be left.  It hands the batch of replaced nodes to call_rcu(), and
 * does not wait for, and need not be ordered after, call_rcu() callbacks
 * of nodes replaced earlier (see below).
 *
 * Memory comes from kmem caches, never malloc (which may be served by
 * userfaultfd-registered memory under `uspf run`).  100,000 ranges inserted
 * in random order take about 7,800 leaves and 820 inner nodes (3.1 MB).
 * The caches are process-wide and never destroyed, so call_rcu()
 * callbacks still pending when an index is destroyed free into live
 * caches: vma_index_destroy() needs no rcu_barrier() and never blocks.
 */
/* Inline rcu_dereference() & co.: liburcu allows this for non-LGPL code. */
#ifndef URCU_INLINE_SMALL_FUNCTIONS
#define URCU_INLINE_SMALL_FUNCTIONS
#endif
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <string.h>

#include <urcu-bp.h>

#include "mm/call_rcu.h"
#include "mm/kmem.h"
#include "mm/vma_index.h"

#define LEAF_SLOTS	VMA_INDEX_LEAF_SLOTS
#define NODE_SLOTS	VMA_INDEX_NODE_SLOTS
#define HEIGHT_MAX	VMA_INDEX_MAX_HEIGHT
/* A non-root node with fewer merges with or borrows from a sibling. */
#define LEAF_MIN	(LEAF_SLOTS / 2)
#define NODE_MIN	(NODE_SLOTS / 2)

/*
 * A leaf uses l, an inner node i; an inner node is allocated INNER_SIZE
 * bytes and nothing past its i member is ever touched.
 */
struct vma_index_node {
	uint32_t level;			/* 0: a leaf, else levels above them; fixed */
	uint32_t count;			/* slots or children in use, >= 1 */
	union {
		unsigned long key[LEAF_SLOTS];	/* either kind's keys */
		struct {
			unsigned long end[LEAF_SLOTS];
			struct {
				unsigned long start;
				void *entry;		/* NULL: a hole */
			} slot[LEAF_SLOTS];
			struct rcu_head rcu;
		} l;
		struct {
			unsigned long pivot[NODE_SLOTS - 1];
			struct vma_index_node *child[NODE_SLOTS];
			struct rcu_head rcu;
		} i;
	};
};

#define LEAF_SIZE	(offsetof(struct vma_index_node, l.rcu) + sizeof(struct rcu_head))
#define INNER_SIZE	(offsetof(struct vma_index_node, i.rcu) + sizeof(struct rcu_head))
#define LEAF_KEYS	LEAF_SLOTS
#define INNER_KEYS	(NODE_SLOTS - 1)
/* Keys a node does not use hold this: no address of a range is above it. */
#define KEY_NONE	ULONG_MAX

_Static_assert(offsetof(struct vma_index_node, l.slot) == 128, "keys in two cache lines");
_Static_assert(LEAF_SIZE == 384 && INNER_SIZE == 256, "whole cache lines");

/*
 * Replaced nodes wait in a batch per index and go to call_rcu() together:
 * one call_rcu() per write would wake liburcu's callback thread every
 * time, and on a 2-CPU guest that thread's frees then contend with the
 * writer's allocations for the caches' locks - a context switch or two per
 * write (insert took 1 us at 1,000 ranges, now 0.3 us).
 */
#define RETIRE_BATCH	32

struct vma_index_retired {
	struct rcu_head rcu;
	unsigned int n;
	struct vma_index_node *node[RETIRE_BATCH];
};

static struct kmem_cache *leaf_cache, *inner_cache, *retired_cache;
static pthread_once_t caches_once = PTHREAD_ONCE_INIT;
static int caches_err;

/*
 * Freed nodes get this in every key and pointer: a reader that outlived
 * its grace period faults on a non-canonical address instead of wandering.
 */
#define NODE_POISON	0x6b6b6b6b6b6b6b6bul

static void caches_create(void)
{
	/* 64-byte alignment: a node's keys are exactly its first two lines. */
	leaf_cache = kmem_cache_create("vma_index_leaf", LEAF_SIZE, 64);
	inner_cache = kmem_cache_create("vma_index_inner", INNER_SIZE, 64);
	retired_cache = kmem_cache_create("vma_index_retired",
					  sizeof(struct vma_index_retired), 0);
	if (!leaf_cache || !inner_cache || !retired_cache)
		caches_err = -ENOMEM;
}

int vma_index_protect(int prot)
{
	int ret = kmem_cache_protect(leaf_cache, prot);

	if (!ret)
		ret = kmem_cache_protect(inner_cache, prot);
	return ret ? ret : kmem_cache_protect(retired_cache, prot);
}

static void node_free(struct vma_index_node *n)
{
	unsigned int i;

	if (!n->level) {
		for (i = 0; i < LEAF_SLOTS; i++) {
			n->l.end[i] = NODE_POISON;
			n->l.slot[i].start = NODE_POISON;
			n->l.slot[i].entry = (void *)NODE_POISON;
		}
		kmem_cache_free(leaf_cache, n);
		return;
	}
	for (i = 0; i < NODE_SLOTS - 1; i++)
		n->i.pivot[i] = NODE_POISON;
	for (i = 0; i < NODE_SLOTS; i++)
		n->i.child[i] = (struct vma_index_node *)NODE_POISON;
	kmem_cache_free(inner_cache, n);
}

static void leaf_free_rcu(struct rcu_head *head)
{
	node_free(caa_container_of(head, struct vma_index_node, l.rcu));
}

static void inner_free_rcu(struct rcu_head *head)
{
	node_free(caa_container_of(head, struct vma_index_node, i.rcu));
}

static void retired_free_rcu(struct rcu_head *head)
{
	struct vma_index_retired *r = caa_container_of(head, struct vma_index_retired, rcu);
	unsigned int i;

	for (i = 0; i < r->n; i++)
		node_free(r->node[i]);
	kmem_cache_free(retired_cache, r);
}

/* Hand the index's batch of replaced nodes to call_rcu(). */
static void retired_flush(struct vma_index *idx)
{
	if (idx->retired)
		mm_call_rcu(&idx->retired->rcu, retired_free_rcu);
	idx->retired = NULL;
}

/*
 * A node readers may still see: free it after a grace period, with the
 * index's batch.  Without memory for a batch, on its own.
 */
static void node_retire(struct vma_index *idx, struct vma_index_node *n)
{
	struct vma_index_retired *r = idx->retired;

	if (!r) {
		r = kmem_cache_alloc(retired_cache);
		if (!r) {
			if (!n->level)
				mm_call_rcu(&n->l.rcu, leaf_free_rcu);
			else
				mm_call_rcu(&n->i.rcu, inner_free_rcu);
			return;
		}
		idx->retired = r;
	}
	r->node[r->n++] = n;
	if (r->n == RETIRE_BATCH)
		retired_flush(idx);
}

int vma_index_init(struct vma_index *idx, uint64_t seed)
{
	(void)seed;
	memset(idx, 0, sizeof(*idx));
	pthread_once(&caches_once, caches_create);
	return caches_err;
}

static void subtree_free(struct vma_index_node *n)
{
	unsigned int i;

	if (n->level)
		for (i = 0; i < n->count; i++)
			subtree_free(n->i.child[i]);
	node_free(n);
}

void vma_index_destroy(struct vma_index *idx)
{
	retired_flush(idx);
	if (idx->root)
		subtree_free(idx->root);
	idx->root = NULL;
	idx->height = 0;
	idx->count = 0;
	idx->holes = 0;
}

/* ---- readers ----------------------------------------------------------- */

/*
 * How many of n's first nkeys keys are at or below addr (unused keys are
 * KEY_NONE, above every addr but ULONG_MAX): the child or slot to take.
 * No branch on the keys - the search is a count, not a walk - and each key
 * is loaded once.  Keys that change in place (see the locking rules) can
 * make the count land on a changing range, never off one that stays.
 */
static inline unsigned int node_rank(const struct vma_index_node *n, unsigned int nkeys,
				     unsigned long addr)
{
	unsigned int i, r = 0;

	for (i = 0; i < nkeys; i++)
		r += CMM_LOAD_SHARED(n->key[i]) <= addr;
	return r;
}

/*
 * Fetch a node's other lines along with its first, which is read next:
 * one memory latency per level, not two (keys, then the slot or child).
 * A leaf is six lines, an inner node four.
 */
static inline void node_prefetch(const struct vma_index_node *n, bool leaf)
{
	const char *p = (const char *)n;

	__builtin_prefetch(p + 64);
	__builtin_prefetch(p + 128);
	__builtin_prefetch(p + 192);
	if (leaf) {
		__builtin_prefetch(p + 256);
		__builtin_prefetch(p + 320);
	}
}

void *vma_index_lookup(const struct vma_index *idx, unsigned long addr)
{
	const struct vma_index_node *n = rcu_dereference(idx->root);
	unsigned int i;

	if (!n || addr == ULONG_MAX)	/* no range holds ULONG_MAX */
		return NULL;
	while (n->level) {
		bool leaf = n->level == 1;

		i = node_rank(n, INNER_KEYS, addr);
		n = rcu_dereference(n->i.child[i]);
		node_prefetch(n, leaf);
	}
	i = node_rank(n, LEAF_KEYS, addr);
	if (i >= n->count)
		return NULL;
	cmm_smp_rmb();	/* the end before the start: see vma_index_set_range() */
	if (CMM_LOAD_SHARED(n->l.slot[i].start) > addr)
		return NULL;
	return CMM_LOAD_SHARED(n->l.slot[i].entry);
}

/*
 * The first of n->key[0..lim) above addr, or lim; *key gets its value, as
 * loaded once (it may be changing).
 */
static inline unsigned int node_search(const struct vma_index_node *n, unsigned int lim,
				       unsigned long addr, unsigned long *key)
{
	unsigned int i;

	for (i = 0; i < lim; i++) {
		*key = CMM_LOAD_SHARED(n->key[i]);
		if (*key > addr)
			break;
	}
	return i;
}

/*
 * One descent for find(): the first live, non-empty slot of the leaf it
 * reaches that ends above addr.  If there is none, *bound gets the pivot
 * that bounded the leaf (every slot after the leaf ends above it) and the
 * return is NULL with *bounded set; without a bound the index has no
 * answer.  The deepest bound is the one to use: a pivot higher up bounds
 * a subtree that may hold the answer after this leaf.
 */
static void *find_once(const struct vma_index *idx, unsigned long addr,
		       unsigned long *start, unsigned long *end,
		       unsigned long *bound, bool *bounded)
{
	const struct vma_index_node *n = rcu_dereference(idx->root);
	unsigned long key, s;
	unsigned int i, lim;
	void *entry;

	*bounded = false;
	if (!n)
		return NULL;
	while (n->level) {
		bool leaf = n->level == 1;

		lim = n->count - 1;
		i = node_search(n, lim, addr, &key);
		if (i < lim) {
			*bound = key;
			*bounded = true;
		}
		n = rcu_dereference(n->i.child[i]);
		node_prefetch(n, leaf);
	}
	i = node_search(n, n->count, addr, &key);
	while (i < n->count) {
		if (key > addr) {
			cmm_smp_rmb();	/* the end before the start */
			s = CMM_LOAD_SHARED(n->l.slot[i].start);
			entry = CMM_LOAD_SHARED(n->l.slot[i].entry);
			/* Skip holes, and a range seen half-moved (empty). */
			if (entry && s < key) {
				*start = s;
				*end = key;
				*bounded = false;
				return entry;
			}
		}
		if (++i < n->count)
			key = CMM_LOAD_SHARED(n->key[i]);
	}
	return NULL;
}

void *vma_index_find(const struct vma_index *idx, unsigned long addr,
		     unsigned long *start, unsigned long *end)
{
	unsigned long s = 0, e = 0, bound = addr;
	bool bounded;
	void *entry;

	do {
		entry = find_once(idx, addr, &s, &e, &bound, &bounded);
		addr = bound;	/* > addr: the loop ends */
	} while (bounded);
	if (!entry)
		return NULL;
	if (start)
		*start = s;
	if (end)
		*end = e;
	return entry;
}

/* ---- the writer: positions --------------------------------------------- */

/*
 * A position in the index: the node and slot at every level, node[0] the
 * leaf, node[height - 1] the root.  slot[0] may be the leaf's count (past
 * its last slot) only in the last leaf.  The writer alone changes the
 * index, so it reads it with plain loads.
 */
struct path {
	unsigned int height;
	struct vma_index_node *node[HEIGHT_MAX];
	unsigned int slot[HEIGHT_MAX];
};

/* The position of the first slot ending above key; idx is not empty. */
static void path_descend(const struct vma_index *idx, unsigned long key, struct path *p)
{
	struct vma_index_node *n = idx->root;
	unsigned int i, lim;
	int l;

	p->height = idx->height;
	for (l = (int)idx->height - 1; l >= 0; l--) {
		lim = n->level ? n->count - 1 : n->count;
		for (i = 0; i < lim && n->key[i] <= key; i++)
			;
		p->node[l] = n;
		p->slot[l] = i;
		if (l)
			n = n->i.child[i];
	}
}

static bool path_at_slot(const struct path *p)
{
	return p->slot[0] < p->node[0]->count;
}

static unsigned long path_end(const struct path *p)
{
	return p->node[0]->l.end[p->slot[0]];
}

static unsigned long path_start(const struct path *p)
{
	return p->node[0]->l.slot[p->slot[0]].start;
}

static void *path_entry(const struct path *p)
{
	return p->node[0]->l.slot[p->slot[0]].entry;
}

/*
 * noipa on the two steppers: GCC 12.2 at -O2 miscompiles their callers.
 * Its ipa-modref summary of the store loop after the search loop lets
 * FRE keep a caller's stale copy of p->node[0] across the call, so
 * `q = p; path_prev(&q)` went on reading p's leaf (a standalone
 * reproducer fails at -O2 and passes with -fno-ipa-modref or clang).
 */
#define PATH_STEP	__attribute__((noipa))

/* Step to the next slot; false (p unchanged) past the last. */
static PATH_STEP bool path_next(struct path *p)
{
	unsigned int l;

	if (p->slot[0] + 1 < p->node[0]->count) {
		p->slot[0]++;
		return true;
	}
	for (l = 1; l < p->height && p->slot[l] + 1 >= p->node[l]->count; l++)
		;
	if (l >= p->height)
		return false;
	p->slot[l]++;
	while (l-- > 0) {
		p->node[l] = p->node[l + 1]->i.child[p->slot[l + 1]];
		p->slot[l] = 0;
	}
	return true;
}

/* Step to the previous slot; false (p unchanged) before the first. */
static PATH_STEP bool path_prev(struct path *p)
{
	unsigned int l;

	if (p->slot[0] > 0) {
		p->slot[0]--;
		return true;
	}
	for (l = 1; l < p->height && p->slot[l] == 0; l++)
		;
	if (l >= p->height)
		return false;
	p->slot[l]--;
	while (l-- > 0) {
		p->node[l] = p->node[l + 1]->i.child[p->slot[l + 1]];
		p->slot[l] = p->node[l]->count - 1;
	}
	return true;
}

/*
 * The largest end under p->node[l] is now max: store it in the one pivot
 * that names it, in the lowest ancestor where the path does not take the
 * last child (none if the path runs down the index's right edge).
 */
static void path_set_max(const struct path *p, unsigned int l, unsigned long max)
{
	for (l++; l < p->height; l++) {
		if (p->slot[l] + 1 < p->node[l]->count) {
			CMM_STORE_SHARED(p->node[l]->i.pivot[p->slot[l]], max);
			return;
		}
	}
}

/*
 * Change the end of the slot at p in place, and the pivot above if it is
 * its leaf's last.  The leaf first: a reader that meets the two out of
 * step either finds nothing ending above addr in the leaf, or goes on to
 * the next subtree; see the readers.
 */
static void path_set_end(const struct path *p, unsigned long end)
{
	unsigned int i = p->slot[0];

	CMM_STORE_SHARED(p->node[0]->l.end[i], end);
	if (i + 1 == p->node[0]->count)
		path_set_max(p, 0, end);
}

/*
 * Holes must stay between their live neighbours.  Before a live range
 * takes [start, end): holes before p's slot ending above start move their
 * end down to start (back to the previous live slot); holes from p's slot
 * on ending below end move it up to end (on to the next live slot).
 */
static void holes_clear(const struct vma_index *idx, const struct path *p, bool before,
			bool after, unsigned long start, unsigned long end)
{
	struct path q;

	if (!idx->holes)
		return;
	q = *p;
	while (before && path_prev(&q) && !path_entry(&q))
		if (path_end(&q) > start)
			path_set_end(&q, start);
	q = *p;
	if (!after || (!path_at_slot(&q) && !path_next(&q)))
		return;
	do {
		if (path_entry(&q))
			break;
		if (path_end(&q) < end)
			path_set_end(&q, end);
	} while (path_next(&q));
}

/* ---- the writer: copy on write ------------------------------------------ */

struct litem {
	unsigned long start, end;
	void *entry;
};

struct citem {
	struct vma_index_node *node;
	unsigned long max;	/* largest end in its subtree */
};

/* One write's new nodes (freed at once if it fails) and replaced ones. */
struct build {
	struct vma_index_node *fresh[2 * HEIGHT_MAX + 1];
	unsigned int nfresh;
	struct vma_index_node *old[3 * HEIGHT_MAX];
	unsigned int nold;
	size_t holes;		/* holes the copies leave behind */
};

static struct vma_index_node *fresh_node(struct build *b, unsigned int level)
{
	struct vma_index_node *n = kmem_cache_alloc(level ? inner_cache : leaf_cache);
	unsigned int i;

	if (!n)
		return NULL;
	n->level = level;
	for (i = 0; i < (level ? INNER_KEYS : LEAF_KEYS); i++)
		n->key[i] = KEY_NONE;
	b->fresh[b->nfresh++] = n;
	return n;
}

static bool is_fresh(const struct build *b, const struct vma_index_node *n)
{
	unsigned int i;

	for (i = 0; i < b->nfresh; i++)
		if (b->fresh[i] == n)
			return true;
	return false;
}

static unsigned long node_max(const struct vma_index_node *n)
{
	while (n->level)
		n = n->i.child[n->count - 1];
	return n->l.end[n->count - 1];
}

/* Append a leaf's live slots, but skip, to out[]; count its holes. */
static unsigned int leaf_gather(const struct vma_index_node *n, unsigned int skip,
				struct litem *out, unsigned int k, size_t *holes)
{
	unsigned int i;

	for (i = 0; i < n->count; i++) {
		if (i == skip)
			continue;
		if (!n->l.slot[i].entry) {
			++*holes;
			continue;
		}
		out[k++] = (struct litem){ n->l.slot[i].start, n->l.end[i], n->l.slot[i].entry };
	}
	return k;
}

/* Append n's children [from, to) with their subtrees' largest ends. */
static unsigned int inner_gather(const struct vma_index_node *n, unsigned int from,
				 unsigned int to, struct citem *out, unsigned int k)
{
	unsigned int j;

	for (j = from; j < to; j++)
		out[k++] = (struct citem){ n->i.child[j], j + 1 < n->count ? n->i.pivot[j] :
							  node_max(n->i.child[j]) };
	return k;
}

/* n items into 0, 1 or 2 new nodes (halves): their citems in up[]. */
static int leaf_distribute(struct build *b, const struct litem *it, unsigned int n,
			   struct citem *up, unsigned int *nup)
{
	unsigned int k = !n ? 0 : n <= LEAF_SLOTS ? 1 : 2, part, cnt, j, off = 0;
	struct vma_index_node *node;

	for (part = 0; part < k; part++, off += cnt) {
		cnt = k == 1 ? n : part ? n - n / 2 : n / 2;
		node = fresh_node(b, 0);
		if (!node)
			return -ENOMEM;
		for (j = 0; j < cnt; j++) {
			node->l.end[j] = it[off + j].end;
			node->l.slot[j].start = it[off + j].start;
			node->l.slot[j].entry = it[off + j].entry;
		}
		node->count = cnt;
		up[part] = (struct citem){ node, it[off + cnt - 1].end };
	}
	*nup = k;
	return 0;
}

static int inner_distribute(struct build *b, const struct citem *it, unsigned int n,
			    struct citem *up, unsigned int *nup)
{
	unsigned int k = !n ? 0 : n <= NODE_SLOTS ? 1 : 2, part, cnt, j, off = 0;
	struct vma_index_node *node;

	for (part = 0; part < k; part++, off += cnt) {
		cnt = k == 1 ? n : part ? n - n / 2 : n / 2;
		node = fresh_node(b, it[0].node->level + 1);
		if (!node)
			return -ENOMEM;
		for (j = 0; j < cnt; j++) {
			if (j + 1 < cnt)
				node->i.pivot[j] = it[off + j].max;
			node->i.child[j] = it[off + j].node;
		}
		node->count = cnt;
		up[part] = (struct citem){ node, it[off + cnt - 1].max };
	}
	*nup = k;
	return 0;
}

/*
 * The sibling that a node at level l of p, fallen below its minimum,
 * merges with or borrows from: the left one if any, else the right one.
 * Its index in the parent, or -1 if the parent has no other child.
 */
static int sibling_of(const struct path *p, unsigned int l)
{
	const struct vma_index_node *parent = p->node[l + 1];
	unsigned int j = p->slot[l + 1];

	if (parent->count < 2)
		return -1;
	return j > 0 ? (int)j - 1 : (int)j + 1;
}

/*
 * A leaf that overflows shares its slots with a sibling that has room,
 * rather than split (as a B*-tree does): the same copies as a split, and
 * fuller leaves - random inserts leave them 70% full with splits alone,
 * 86% with sharing - so more of the index stays in cache.  The emptier
 * neighbour, or -1 if both are full.
 */
static int sibling_with_room(const struct path *p)
{
	const struct vma_index_node *parent = p->node[1];
	unsigned int j = p->slot[1], best = LEAF_SLOTS;
	int s = -1;

	if (j > 0 && parent->i.child[j - 1]->count < best) {
		best = parent->i.child[j - 1]->count;
		s = j - 1;
	}
	if (j + 1 < parent->count && parent->i.child[j + 1]->count < best)
		s = j + 1;
	return s;
}

/*
 * Replace p's leaf by one holding the leaf items it[0..n) - the leaf's
 * live slots after the change - and carry the change up.  Bottom-up, each
 * level's new nodes replace old ones in the parent: a node with too many
 * items splits in two halves, a non-root one with too few takes in its
 * sibling's (one node if they fit, else two halves).  Where one new node
 * replaces one old one, the parent keeps its place: the new child is
 * published in its slot with rcu_assign_pointer() (and its largest end in
 * the pivot above, if it changed), and the levels above stay as they
 * are.  Otherwise the parent is rebuilt too, up to the root, which is
 * published last.  Readers see the old subtree or the new one.  The old
 * nodes go to call_rcu().  -ENOMEM changes nothing.  it[] must have room
 * for a sibling's slots after n.
 */
static int rebuild(struct vma_index *idx, const struct path *p, struct litem *it,
		   unsigned int n, size_t holes)
{
	unsigned int h = p->height, levels = h ? h : 1, l, lo = 0, hi = 0, nup, cn, i;
	struct citem up[2], ci[2 * NODE_SLOTS + 2];
	struct vma_index_node *root, *old, *sib;
	struct build b = { .holes = holes };
	unsigned long max;
	int s;

	if (h > 0) {
		lo = hi = h > 1 ? p->slot[1] : 0;
		if (h > 1 && ((n < LEAF_MIN && (s = sibling_of(p, 0)) >= 0) ||
			      (n > LEAF_SLOTS && (s = sibling_with_room(p)) >= 0))) {
			struct litem tmp[LEAF_SLOTS];
			unsigned int sn;

			sib = p->node[1]->i.child[s];
			sn = leaf_gather(sib, LEAF_SLOTS, tmp, 0, &b.holes);
			if ((unsigned int)s < lo) {
				memmove(&it[sn], it, n * sizeof(*it));
				memcpy(it, tmp, sn * sizeof(*it));
				lo = s;
			} else {
				memcpy(&it[n], tmp, sn * sizeof(*it));
				hi = s;
			}
			n += sn;
			b.old[b.nold++] = sib;
		}
		b.old[b.nold++] = p->node[0];
	}
	if (leaf_distribute(&b, it, n, up, &nup))
		goto fail;

	for (l = 1; l < levels && !(nup == 1 && lo == hi); l++) {
		old = p->node[l];
		cn = inner_gather(old, 0, lo, ci, 0);
		memcpy(&ci[cn], up, nup * sizeof(*up));
		cn = inner_gather(old, hi + 1, old->count, ci, cn + nup);
		lo = hi = l + 1 < h ? p->slot[l + 1] : 0;
		if (l + 1 < h && cn < NODE_MIN && (s = sibling_of(p, l)) >= 0) {
			sib = p->node[l + 1]->i.child[s];
			if ((unsigned int)s < lo) {
				memmove(&ci[sib->count], ci, cn * sizeof(*ci));
				inner_gather(sib, 0, sib->count, ci, 0);
				lo = s;
			} else {
				inner_gather(sib, 0, sib->count, ci, cn);
				hi = s;
			}
			cn += sib->count;
			b.old[b.nold++] = sib;
		}
		b.old[b.nold++] = old;
		if (inner_distribute(&b, ci, cn, up, &nup))
			goto fail;
	}

	if (l < levels) {
		/* p->node[l] stays: one child, maybe one pivot, change in place. */
		max = node_max(p->node[l - 1]);
		rcu_assign_pointer(p->node[l]->i.child[lo], up[0].node);
		if (up[0].max != max)
			path_set_max(p, l - 1, up[0].max);
	} else {
		if (nup == 2) {		/* the root split: a new root above */
			if (levels == HEIGHT_MAX)
				goto fail;
			memcpy(ci, up, sizeof(up));
			if (inner_distribute(&b, ci, 2, up, &nup))
				goto fail;
			levels++;
		}
		root = nup ? up[0].node : NULL;
		/* A root with one child hands the root over to it. */
		while (root && root->level && root->count == 1) {
			old = root;
			root = old->i.child[0];
			if (is_fresh(&b, old))
				kmem_cache_free(inner_cache, old);	/* never seen */
			else
				b.old[b.nold++] = old;
			levels--;
		}
		rcu_assign_pointer(idx->root, root);
		idx->height = root ? levels : 0;
	}
	for (i = 0; i < b.nold; i++)
		node_retire(idx, b.old[i]);
	idx->holes -= b.holes;
	return 0;

fail:
	while (b.nfresh)
		node_free(b.fresh[--b.nfresh]);
	return -ENOMEM;
}

/* ---- the writer: operations --------------------------------------------- */

/* The index's first slot. */
static void path_first(const struct vma_index *idx, struct path *p)
{
	struct vma_index_node *n = idx->root;
	int l;

	p->height = idx->height;
	for (l = (int)idx->height - 1; l >= 0; l--) {
		p->node[l] = n;
		p->slot[l] = 0;
		if (l)
			n = n->i.child[0];
	}
}

/*
 * After erases that ran out of memory: each write that could allocate
 * also copies the first leaf that has holes, so with memory back they are
 * all gone within as many writes as there are such leaves (a leaf of
 * nothing but holes would otherwise stay until a write landed in it).  A
 * scan from the left, but holes only exist after allocations failed.
 */
static void holes_purge(struct vma_index *idx)
{
	struct litem it[2 * LEAF_SLOTS + 1];
	struct vma_index_node *leaf;
	unsigned int i, n;
	size_t holes = 0;
	struct path p;

	if (!idx->holes || !idx->root)
		return;
	path_first(idx, &p);
	for (;;) {
		leaf = p.node[0];
		for (i = 0; i < leaf->count && leaf->l.slot[i].entry; i++)
			;
		if (i < leaf->count)
			break;
		p.slot[0] = leaf->count - 1;
		if (!path_next(&p))
			return;
	}
	n = leaf_gather(leaf, LEAF_SLOTS, it, 0, &holes);
	rebuild(idx, &p, it, n, holes);
}

int vma_index_insert(struct vma_index *idx, unsigned long start, unsigned long end,
		     void *entry)
{
	struct litem it[2 * LEAF_SLOTS + 1];
	unsigned int n = 0, i;
	size_t holes = 0;
	struct path p, q;
	int ret;

	if (start >= end)
		return -EINVAL;
	if (!idx->root) {
		p.height = 0;
	} else {
		/*
		 * Every slot before p ends at or below start: only the first
		 * live one from p on can overlap.
		 */
		path_descend(idx, start, &p);
		q = p;
		if (path_at_slot(&q) || path_next(&q)) {
			while (!path_entry(&q) && path_next(&q))
				;
			if (path_entry(&q) && path_start(&q) < end)
				return -EEXIST;
		}
		holes_clear(idx, &p, false, true, start, end);
		n = leaf_gather(p.node[0], LEAF_SLOTS, it, 0, &holes);
	}
	for (i = n; i > 0 && it[i - 1].end > start; i--)
		;
	memmove(&it[i + 1], &it[i], (n - i) * sizeof(*it));
	it[i] = (struct litem){ start, end, entry };

	ret = rebuild(idx, &p, it, n + 1, holes);
	if (ret)
		return ret;
	CMM_STORE_SHARED(idx->count, idx->count + 1);
	holes_purge(idx);
	return 0;
}

void *vma_index_erase(struct vma_index *idx, unsigned long start)
{
	struct litem it[2 * LEAF_SLOTS + 1];
	size_t holes = 0;
	unsigned int n;
	struct path p;
	void *entry;

	if (!idx->root)
		return NULL;
	path_descend(idx, start, &p);
	if (!path_at_slot(&p))
		return NULL;
	entry = path_entry(&p);
	if (!entry || path_start(&p) != start)
		return NULL;

	n = leaf_gather(p.node[0], p.slot[0], it, 0, &holes);
	if (rebuild(idx, &p, it, n, holes)) {
		/* No memory for the copy: empty the slot where it is. */
		CMM_STORE_SHARED(p.node[0]->l.slot[p.slot[0]].entry, NULL);
		idx->holes++;
	} else {
		holes_purge(idx);
	}
	CMM_STORE_SHARED(idx->count, idx->count - 1);
	return entry;
}

/*
 * The range starting at start becomes [start, addr) and [addr, end) ->
 * entry in one copy of its leaf, published at once: a reader sees the
 * range whole or both halves, never a hole at [addr, end) (the maple
 * tree's node replacement does the same for __split_vma()).
 */
int vma_index_split(struct vma_index *idx, unsigned long start, unsigned long addr, void *entry)
{
	struct litem it[2 * LEAF_SLOTS + 1];
	unsigned int n, i;
	size_t holes = 0;
	struct path p;
	int ret;

	if (!idx->root)
		return -ENOENT;
	path_descend(idx, start, &p);
	if (!path_at_slot(&p) || !path_entry(&p) || path_start(&p) != start)
		return -ENOENT;
	if (addr <= start || addr >= path_end(&p))
		return -EINVAL;
	n = leaf_gather(p.node[0], LEAF_SLOTS, it, 0, &holes);
	for (i = 0; i < n && it[i].start != start; i++)
		;
	memmove(&it[i + 2], &it[i + 1], (n - i - 1) * sizeof(*it));
	it[i + 1] = (struct litem){ addr, it[i].end, entry };
	it[i].end = addr;
	ret = rebuild(idx, &p, it, n + 1, holes);
	if (ret)
		return ret;
	CMM_STORE_SHARED(idx->count, idx->count + 1);
	holes_purge(idx);
	return 0;
}

/*
 * The range starting at next_start folds into the one before it, which
 * starts at prev_start and ends where it begins: one copy of their leaf,
 * published at once.  -EXDEV if they are not in one leaf (the caller
 * erases and extends instead, with a moment's hole between).
 */
int vma_index_merge(struct vma_index *idx, unsigned long prev_start, unsigned long next_start)
{
	struct litem it[2 * LEAF_SLOTS + 1];
	unsigned int n, i;
	size_t holes = 0;
	struct path p;
	int ret;

	if (!idx->root)
		return -ENOENT;
	path_descend(idx, prev_start, &p);
	if (!path_at_slot(&p) || !path_entry(&p) || path_start(&p) != prev_start ||
	    path_end(&p) != next_start)
		return -ENOENT;
	n = leaf_gather(p.node[0], LEAF_SLOTS, it, 0, &holes);
	for (i = 0; i < n && it[i].start != prev_start; i++)
		;
	if (i + 1 >= n || it[i + 1].start != next_start)
		return -EXDEV;
	it[i].end = it[i + 1].end;
	memmove(&it[i + 1], &it[i + 2], (n - i - 2) * sizeof(*it));
	ret = rebuild(idx, &p, it, n - 1, holes);
	if (ret)
		return ret;
	CMM_STORE_SHARED(idx->count, idx->count - 1);
	holes_purge(idx);
	return 0;
}

int vma_index_set_range(struct vma_index *idx, unsigned long old_start,
			unsigned long start, unsigned long end)
{
	struct path p, q;

	if (start >= end)
		return -EINVAL;
	if (!idx->root)
		return -ENOENT;
	path_descend(idx, old_start, &p);
	if (!path_at_slot(&p) || !path_entry(&p) || path_start(&p) != old_start)
		return -ENOENT;

	/* The live neighbours bound the move: it cannot reorder the index. */
	q = p;
	while (path_prev(&q))
		if (path_entry(&q)) {
			if (path_end(&q) > start)
				return -EEXIST;
			break;
		}
	q = p;
	while (path_next(&q))
		if (path_entry(&q)) {
			if (path_start(&q) < end)
				return -EEXIST;
			break;
		}

	holes_clear(idx, &p, true, false, start, end);
	q = p;
	if (path_next(&q))
		holes_clear(idx, &q, false, true, start, end);

	/*
	 * The start, then the end (and the pivot above it).  Readers load
	 * the end first, so they never pair the new end with the old start;
	 * any other pairing lies between the neighbours.
	 */
	CMM_STORE_SHARED(p.node[0]->l.slot[p.slot[0]].start, start);
	cmm_smp_wmb();
	if (path_end(&p) != end)
		path_set_end(&p, end);
	return 0;
}

/* ---- debug --------------------------------------------------------------- */

struct check {
	const struct vma_index *idx;
	struct vma_index_shape *shape;
	size_t count, holes;
	unsigned long last_end;		/* slots' ends never decrease */
	unsigned long hole_end;		/* largest hole end since the last live slot */
	bool any;
};

static int check_node(struct check *c, const struct vma_index_node *n, unsigned int depth,
		      bool root)
{
	unsigned int i, max = n->level ? NODE_SLOTS : LEAF_SLOTS;
	unsigned int nkeys = n->level ? INNER_KEYS : LEAF_KEYS;
	unsigned int used = n->level ? n->count - 1 : n->count;

	if (n->count < 1 || n->count > max || (root && n->level && n->count < 2))
		return -EUCLEAN;
	if (n->level + depth + 1 != c->idx->height)
		return -EUCLEAN;
	for (i = used; i < nkeys; i++)
		if (n->key[i] != KEY_NONE)
			return -EUCLEAN;
	if (n->level) {
		if (!root && (!c->shape->node_min || n->count < c->shape->node_min))
			c->shape->node_min = n->count;
		c->shape->nodes++;
		for (i = 0; i < n->count; i++) {
			const struct vma_index_node *child = n->i.child[i];

			if (i + 1 < n->count && n->i.pivot[i] != node_max(child))
				return -EUCLEAN;
			if (check_node(c, child, depth + 1, false))
				return -EUCLEAN;
		}
		return 0;
	}
	if (!root && (!c->shape->leaf_min || n->count < c->shape->leaf_min))
		c->shape->leaf_min = n->count;
	c->shape->leaves++;
	for (i = 0; i < n->count; i++) {
		unsigned long s = n->l.slot[i].start, e = n->l.end[i];

		if (c->any && e < c->last_end)
			return -EUCLEAN;
		c->any = true;
		c->last_end = e;
		if (!n->l.slot[i].entry) {
			c->holes++;
			if (e > c->hole_end)
				c->hole_end = e;
			continue;
		}
		/* Live: non-empty, after every slot before it. */
		if (s >= e || s < c->hole_end)
			return -EUCLEAN;
		c->count++;
		c->hole_end = e;
	}
	return 0;
}

int vma_index_check(const struct vma_index *idx, struct vma_index_shape *shape)
{
	struct vma_index_shape dummy;
	struct check c = { .idx = idx, .shape = shape ? shape : &dummy };

	memset(c.shape, 0, sizeof(*c.shape));
	c.shape->height = idx->height;
	if (!idx->root)
		return idx->height || idx->count || idx->holes ? -EUCLEAN : 0;
	if (idx->height > HEIGHT_MAX || check_node(&c, idx->root, 0, true))
		return -EUCLEAN;
	if (c.count != idx->count || c.holes != idx->holes)
		return -EUCLEAN;
	return 0;
}
