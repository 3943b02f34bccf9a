/* SPDX-License-Identifier: MIT */
/*
 * preload/malloc.c - the malloc family of libuspf-preload.so.
 *
 * glibc's malloc maps its memory through internal calls no interposer
 * sees, so under `uspf run` a program's heap would never fault through
 * uspf.  This allocator serves the program from uspf mappings instead.
 *
 * Layout.
 *  - Small requests (<= 32 KiB) are rounded to one of 40 size classes
 *    (16, 32, 48, 64, then four per power of two up to 32 KiB).  Objects
 *    live in 256 KiB spans; a span holds objects of one class and is carved
 *    out of a 2 MiB chunk that is 2 MiB aligned, so the chunk of a pointer
 *    is found by masking and a two-level radix table (address >> 21) tells
 *    whether a pointer is ours at all.
 *  - Each thread keeps a bounded free list per class (no lock); misses
 *    refill a batch from the class's central list of partial spans (one
 *    mutex per class), overflow flushes half of it back.  A pthread key
 *    destructor flushes everything at thread exit.
 *  - A span whose objects are all free goes back to its heap's pool of
 *    empty spans; beyond a few such spans, its pages are given back with
 *    MADV_DONTNEED before it is reused.
 *  - Large requests get a mapping of their own, found by a hash on the
 *    pointer; freeing one unmaps it (a few recent ones are kept, bounded).
 *
 * Metadata (chunk and span descriptors, the radix table, the large-block
 * hash) lives in raw memory from preload_raw_mmap(), never in uspf memory:
 * only free-list links are stored inside the objects themselves.
 *
 * Two heaps.  The uspf heap maps its chunks with uspf_mmap() on the
 * process's runtime.  Callers that must never be handed uspf memory - the
 * runtime's own threads, the runtime while inside libc/liburcu, and any
 * allocation made while this file is itself inside the runtime or libc
 * (tc.guard) - are served by the raw heap, same code, chunks from
 * preload_raw_mmap(), no thread caches.  So is everybody while uspf is off
 * (no runtime) or USPF_HEAP turned the heap off.  A free of uspf memory by
 * such a caller is deferred to the next program thread that takes a slow
 * path, since writing the free-list link could fault into the runtime.
 *
 * Pointers that are neither (glibc malloc before the preload library was
 * there) go to the next free/realloc/malloc_usable_size (dlsym RTLD_NEXT).
 */
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <malloc.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "uspf.h"
#include "preload/preload.h"
#include "mm/fork_state.h"

#define EXPORT __attribute__((visibility("default")))
#define TLS __thread __attribute__((tls_model("initial-exec")))
#define likely(x) __builtin_expect(!!(x), 1)
#define unlikely(x) __builtin_expect(!!(x), 0)

#define PAGE 4096UL
#define CHUNK_SHIFT 21
#define CHUNK_SIZE (1UL << CHUNK_SHIFT)
#define SPAN_SHIFT 18
#define SPAN_SIZE (1UL << SPAN_SHIFT)
#define SPANS_PER_CHUNK (CHUNK_SIZE / SPAN_SIZE)
#define NCLASSES 40
#define MAX_SMALL 32768UL
#define MIN_ALIGN 16UL

/* Empty spans a heap keeps with their pages before giving pages back. */
#define KEEP_DIRTY_SPANS 8
/* Freed large mappings kept for reuse: count and bytes. */
#define LCACHE_SLOTS 64
#define LCACHE_MAX_BYTES (64UL << 20)
#define LCACHE_MAX_ONE (8UL << 20)

/* ---- size classes ---- */

static inline unsigned size_class(size_t n)
{
	if (n <= 64)
		return n ? (unsigned)((n + 15) >> 4) - 1 : 0;
	unsigned lg = 63 - __builtin_clzl(n - 1);	/* n in (2^lg, 2^(lg+1)] */
	size_t idx = (n - 1 - (1UL << lg)) >> (lg - 2);
	return 4 + (lg - 6) * 4 + (unsigned)idx;
}

/* size_class() of sizes up to 1 KiB by (n + 15) / 16: one load on the fast path. */
#define TABLE_SMALL 1024UL
static const uint8_t class_by_16[TABLE_SMALL / 16 + 1] = {
	0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 12, 12, 13, 13, 13, 13,
	14, 14, 14, 14, 15, 15, 15, 15, 16, 16, 16, 16, 16, 16, 16, 16, 17, 17, 17, 17, 17, 17,
	17, 17, 18, 18, 18, 18, 18, 18, 18, 18, 19, 19, 19, 19, 19, 19, 19, 19
};

static inline unsigned small_class(size_t n)
{
	if (likely(n <= TABLE_SMALL))
		return class_by_16[(n + 15) >> 4];
	return size_class(n);
}

/* 16, 32, 48, 64, then 2^k + i * 2^(k-2) for i = 1..4, up to 32 KiB. */
static const uint32_t class_sizes[NCLASSES] = {
	16, 32, 48, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 384, 448, 512, 640, 768, 896, 1024, 1280, 1536, 1792, 2048, 2560, 3072, 3584, 4096, 5120, 6144, 7168, 8192, 10240, 12288, 14336, 16384, 20480, 24576, 28672, 32768
};

/* Thread-cache bound per class: about 64 KiB, 8..256 objects. */
static const uint16_t class_tc_maxes[NCLASSES] = {
	256, 256, 256, 256, 256, 256, 256, 256, 256, 256, 256, 256, 204, 170, 146, 128, 102, 85, 73, 64, 51, 42, 36, 32, 25, 21, 18, 16, 12, 10, 9, 8, 8, 8, 8, 8, 8, 8, 8, 8
};

static inline size_t class_size(unsigned c)
{
	return class_sizes[c];
}

static inline uint32_t class_tc_max(unsigned c)
{
	return class_tc_maxes[c];
}

/* ---- descriptors (raw memory) ---- */

struct heap;
struct chunk;

struct span {
	struct span *next, *prev;	/* class partial list or heap pool */
	struct chunk *chunk;
	char *base;
	void *free;			/* free objects, linked through their first word */
	uint32_t cls;
	uint32_t size;
	uint32_t cap;			/* objects that fit */
	uint32_t bump;			/* objects ever carved */
	uint32_t live;			/* objects out of the span (threads or program) */
	bool on_partial;
	bool dirty;			/* may hold pages */
	_Atomic uint8_t *tag;		/* uspf heap: its byte in the radix (span_tag()) */
};

struct chunk {
	char *base;
	struct heap *heap;
	struct uspf *rt;		/* the runtime that mapped it; NULL: raw */
	struct span spans[SPANS_PER_CHUNK];
};

struct class_central {
	pthread_mutex_t lock;
	struct span *partial;		/* spans with free objects */
} __attribute__((aligned(64)));

struct heap {
	bool uspf;
	struct class_central cls[NCLASSES];
	pthread_mutex_t pool_lock;
	struct span *pool;		/* empty spans, dirty ones first */
	unsigned pool_dirty;
	/* chunk descriptors: carved from raw pages */
	struct chunk *desc_free;
	size_t desc_left;
};

static struct heap heap_uspf = { .uspf = true };
/* Page-aligned: its class locks, held across fork(), sit on one page (one COW fault each side). */
static struct heap heap_raw __attribute__((aligned(4096))) = { .uspf = false };

/* ---- thread state ---- */

/*
 * One TLS block, so the fast paths find the cache and the guard through one
 * GOT slot.  The fast paths run only when state == 1 and guard == 0.
 */
struct tcache {
	void *head[NCLASSES];
	uint32_t count[NCLASSES];
	int state;			/* 0 new, 1 live (key set), 2 dead (thread exiting) */
	int guard;			/* inside the runtime/libc on our behalf: serve raw */
};

static TLS struct tcache tc;

/* ---- raw helpers ---- */

static void *raw_map(size_t len)
{
	void *p = preload_raw_mmap(len);
	if (p == MAP_FAILED)
		return NULL;
	return p;
}

/* preload.c brackets calls into the runtime with these (weak: optional). */
extern void preload_enter(void) __attribute__((weak));
extern void preload_exit(void) __attribute__((weak));

static inline void rt_enter(void)
{
	tc.guard++;
	if (preload_enter)
		preload_enter();
}

static inline void rt_exit(void)
{
	if (preload_exit)
		preload_exit();
	tc.guard--;
}

static void raw_unmap(void *p, size_t len)
{
	preload_raw_munmap(p, len);
}

static inline size_t page_up(size_t n)
{
	return (n + PAGE - 1) & ~(PAGE - 1);
}

/* ---- radix: chunk of an address ---- */

/*
 * Each leaf entry holds the chunk and, for the uspf heap, one tag byte per
 * span: 1 + the span's class while it serves one, 0 otherwise (in the pool,
 * raw heap, not ours).  free() finds a small uspf object's class with two
 * loads (the leaf, the tag) instead of four (leaf, chunk, chunk->heap,
 * span).  The tag of a span with live objects does not change: a free of a
 * live object reads a stable value, as it did from span->cls.
 */
#define RADIX_LEAF_BITS 13
#define RADIX_LEAF_MASK ((1UL << RADIX_LEAF_BITS) - 1)
#define RADIX_TOP_BITS (47 - CHUNK_SHIFT - RADIX_LEAF_BITS)

struct radix_ent {
	_Atomic(struct chunk *) chunk;
	_Atomic uint8_t tag[SPANS_PER_CHUNK];
};

static struct radix_ent *_Atomic radix_top[1UL << RADIX_TOP_BITS];
static __fork_state pthread_mutex_t radix_lock = PTHREAD_MUTEX_INITIALIZER;

static inline struct radix_ent *radix_ent_of(uintptr_t a)
{
	if (a >> 47)
		return NULL;
	struct radix_ent *leaf = atomic_load_explicit(
		&radix_top[a >> (CHUNK_SHIFT + RADIX_LEAF_BITS)], memory_order_acquire);
	if (!leaf)
		return NULL;
	return &leaf[(a >> CHUNK_SHIFT) & RADIX_LEAF_MASK];
}

static inline struct chunk *chunk_of(const void *p)
{
	struct radix_ent *e = radix_ent_of((uintptr_t)p);
	return e ? atomic_load_explicit(&e->chunk, memory_order_acquire) : NULL;
}

/* 1 + the class of a small uspf-heap object; 0 for anything else (NULL too). */
static inline unsigned span_tag(const void *p)
{
	uintptr_t a = (uintptr_t)p;
	struct radix_ent *e = radix_ent_of(a);
	if (!e)
		return 0;
	return atomic_load_explicit(&e->tag[(a >> SPAN_SHIFT) & (SPANS_PER_CHUNK - 1)],
				    memory_order_relaxed);
}

/* A span starts or stops serving class c (NCLASSES: back to the pool). */
static inline void span_set_class(struct span *s, unsigned c)
{
	s->cls = c;
	if (s->tag)
		atomic_store_explicit(s->tag, c < NCLASSES ? (uint8_t)(c + 1) : 0,
				      memory_order_relaxed);
}

static struct radix_ent *radix_set(void *base, struct chunk *c)
{
	uintptr_t g = (uintptr_t)base >> CHUNK_SHIFT;
	if ((uintptr_t)base >> 47)
		return NULL;
	struct radix_ent *leaf =
		atomic_load_explicit(&radix_top[g >> RADIX_LEAF_BITS], memory_order_acquire);
	if (!leaf) {
		pthread_mutex_lock(&radix_lock);
		leaf = atomic_load_explicit(&radix_top[g >> RADIX_LEAF_BITS], memory_order_acquire);
		if (!leaf) {
			leaf = raw_map(sizeof(*leaf) << RADIX_LEAF_BITS);
			if (leaf)
				atomic_store_explicit(&radix_top[g >> RADIX_LEAF_BITS], leaf,
						      memory_order_release);
		}
		pthread_mutex_unlock(&radix_lock);
		if (!leaf)
			return NULL;
	}
	struct radix_ent *e = &leaf[g & RADIX_LEAF_MASK];
	for (unsigned i = 0; i < SPANS_PER_CHUNK; i++)
		atomic_store_explicit(&e->tag[i], 0, memory_order_relaxed);
	atomic_store_explicit(&e->chunk, c, memory_order_release);
	return e;
}

/* ---- mapping primitives for the two heaps ---- */

static const struct uspf_backing zero_backing = { .kind = USPF_BACKING_ZERO };

/* The runtime to use for memory mapped by rt: NULL when it is not the live one (fork). */
static struct uspf *live_rt(struct uspf *rt)
{
	struct uspf *now;
	tc.guard++;
	now = preload_runtime();
	tc.guard--;
	return now == rt ? rt : NULL;
}

static void *map_uspf(struct uspf *rt, size_t len)
{
	void *out = NULL;
	int ret;
	rt_enter();
	ret = uspf_mmap(rt, NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
			&zero_backing, &out);
	rt_exit();
	return ret ? NULL : out;
}

static void unmap_any(struct uspf *rt, void *p, size_t len)
{
	if (rt && (rt = live_rt(rt))) {
		rt_enter();
		int ret = uspf_munmap(rt, p, len);
		rt_exit();
		if (!ret)
			return;
	}
	if (rt)
		return;
	syscall(SYS_munmap, p, len);
}

static void dontneed_any(struct uspf *rt, void *p, size_t len)
{
	if (rt && (rt = live_rt(rt))) {
		rt_enter();
		uspf_madvise(rt, p, len, MADV_DONTNEED);
		rt_exit();
		return;
	}
	syscall(SYS_madvise, p, len, MADV_DONTNEED);
}

/* A 2 MiB aligned chunk: map twice the size and trim. */
static void *map_chunk(struct heap *h, struct uspf *rt)
{
	char *p, *a;
	size_t len = 2 * CHUNK_SIZE;

	if (h->uspf) {
		p = map_uspf(rt, len);
		if (!p)
			return NULL;
	} else {
		p = raw_map(len);
		if (!p)
			return NULL;
	}
	a = (char *)(((uintptr_t)p + CHUNK_SIZE - 1) & ~(CHUNK_SIZE - 1));
	size_t head = a - p, tail = len - head - CHUNK_SIZE;
	if (h->uspf) {
		rt_enter();
		if (head)
			uspf_munmap(rt, p, head);
		if (tail)
			uspf_munmap(rt, a + CHUNK_SIZE, tail);
		rt_exit();
	} else {
		if (head)
			raw_unmap(p, head);
		if (tail)
			raw_unmap(a + CHUNK_SIZE, tail);
	}
	return a;
}

static void fork_uspf_register(void);
static pthread_once_t fork_uspf_once;

/* Called with h->pool_lock held: a new chunk's spans join the pool. */
static bool heap_grow(struct heap *h, struct uspf *rt)
{
	struct chunk *c;
	char *base;

	if (!h->desc_left) {
		size_t len = 64 * 1024;
		struct chunk *d = raw_map(len);
		if (!d)
			return false;
		h->desc_free = d;
		h->desc_left = len / sizeof(*d);
	}
	base = map_chunk(h, rt);
	if (!base)
		return false;
	c = h->desc_free++;
	h->desc_left--;
	memset(c, 0, sizeof(*c));
	c->base = base;
	c->heap = h;
	c->rt = h->uspf ? rt : NULL;
	for (unsigned i = 0; i < SPANS_PER_CHUNK; i++) {
		struct span *s = &c->spans[i];
		s->chunk = c;
		s->base = base + i * SPAN_SIZE;
		s->cls = NCLASSES;
		s->next = h->pool;
		h->pool = s;
	}
	struct radix_ent *e = radix_set(base, c);
	if (!e) {
		h->pool = c->spans[0].next;	/* never registered: drop it */
		unmap_any(c->rt, base, CHUNK_SIZE);
		return false;
	}
	if (h->uspf)
		for (unsigned i = 0; i < SPANS_PER_CHUNK; i++)
			c->spans[i].tag = &e->tag[i];
	return true;
}

static struct span *pool_get(struct heap *h, struct uspf *rt)
{
	struct span *s;

	pthread_mutex_lock(&h->pool_lock);
	if (!h->pool && !heap_grow(h, rt)) {
		pthread_mutex_unlock(&h->pool_lock);
		return NULL;
	}
	s = h->pool;
	h->pool = s->next;
	if (s->dirty)
		h->pool_dirty--;
	pthread_mutex_unlock(&h->pool_lock);
	return s;
}

/* An empty span back to the pool; its pages go back past KEEP_DIRTY_SPANS. */
static void pool_put(struct heap *h, struct span *s)
{
	pthread_mutex_lock(&h->pool_lock);
	if (h->pool_dirty >= KEEP_DIRTY_SPANS) {
		pthread_mutex_unlock(&h->pool_lock);
		dontneed_any(s->chunk->rt, s->base, SPAN_SIZE);
		s->dirty = false;
		pthread_mutex_lock(&h->pool_lock);
		/* clean spans go after the dirty ones: walk is short (<= KEEP) */
		struct span **pp = &h->pool;
		while (*pp && (*pp)->dirty)
			pp = &(*pp)->next;
		s->next = *pp;
		*pp = s;
	} else {
		s->dirty = true;
		h->pool_dirty++;
		s->next = h->pool;
		h->pool = s;
	}
	pthread_mutex_unlock(&h->pool_lock);
}

/* ---- central lists ---- */

static inline void partial_add(struct class_central *cc, struct span *s)
{
	s->prev = NULL;
	s->next = cc->partial;
	if (cc->partial)
		cc->partial->prev = s;
	cc->partial = s;
	s->on_partial = true;
}

static inline void partial_del(struct class_central *cc, struct span *s)
{
	if (s->prev)
		s->prev->next = s->next;
	else
		cc->partial = s->next;
	if (s->next)
		s->next->prev = s->prev;
	s->next = s->prev = NULL;
	s->on_partial = false;
}

/*
 * Take up to n objects of class c, linked through their first word.
 * Returns how many; *head gets the list.  Called without locks held.
 */
static uint32_t central_take(struct heap *h, unsigned c, uint32_t n, void **head, struct uspf *rt)
{
	struct class_central *cc = &h->cls[c];
	void *list = NULL;
	uint32_t got = 0;

	pthread_mutex_lock(&cc->lock);
	while (got < n) {
		struct span *s = cc->partial;
		if (!s) {
			pthread_mutex_unlock(&cc->lock);
			s = pool_get(h, rt);
			pthread_mutex_lock(&cc->lock);
			if (!s)
				break;
			size_t sz = class_size(c);
			span_set_class(s, c);
			s->size = (uint32_t)sz;
			s->cap = (uint32_t)(SPAN_SIZE / sz);
			s->bump = 0;
			s->live = 0;
			s->free = NULL;
			partial_add(cc, s);
		}
		while (got < n && s->free) {
			void *o = s->free;
			s->free = *(void **)o;
			*(void **)o = list;
			list = o;
			s->live++;
			got++;
		}
		while (got < n && s->bump < s->cap) {
			void *o = s->base + (size_t)s->bump++ * s->size;
			*(void **)o = list;
			list = o;
			s->live++;
			got++;
		}
		if (!s->free && s->bump == s->cap)
			partial_del(cc, s);
	}
	pthread_mutex_unlock(&cc->lock);
	*head = list;
	return got;
}

/*
 * Give back a list of objects of class c (linked through their first word,
 * n of them or NULL-terminated).  Spans that become empty go to the pool.
 */
static void central_put(struct heap *h, unsigned c, void *list)
{
	struct class_central *cc = &h->cls[c];
	struct span *empty = NULL;

	pthread_mutex_lock(&cc->lock);
	while (list) {
		void *o = list;
		list = *(void **)o;
		struct chunk *ch = chunk_of(o);
		struct span *s = &ch->spans[((uintptr_t)o - (uintptr_t)ch->base) >> SPAN_SHIFT];
		*(void **)o = s->free;
		s->free = o;
		s->live--;
		if (!s->live) {
			if (s->on_partial)
				partial_del(cc, s);
			span_set_class(s, NCLASSES);
			s->free = NULL;
			s->bump = 0;
			s->next = empty;
			empty = s;
		} else if (!s->on_partial) {
			partial_add(cc, s);
		}
	}
	pthread_mutex_unlock(&cc->lock);
	while (empty) {
		struct span *s = empty;
		empty = s->next;
		pool_put(h, s);
	}
}

/* ---- large blocks: their own mapping, a hash on the pointer ---- */

struct large {
	uintptr_t key;		/* the pointer given out; 0 empty, 1 tombstone */
	char *base;
	size_t maplen;
	size_t usable;
	struct uspf *rt;	/* NULL: raw */
};

static __fork_state pthread_mutex_t large_lock = PTHREAD_MUTEX_INITIALIZER;
static struct large *ltab;
static size_t ltab_cap, ltab_used, ltab_tomb;

struct lcache_ent { char *base; size_t maplen; struct uspf *rt; };
static struct lcache_ent lcache[LCACHE_SLOTS];
static unsigned lcache_n;
static size_t lcache_bytes;

static inline size_t lhash(uintptr_t k)
{
	k >>= 12;
	k *= 0x9e3779b97f4a7c15ULL;
	return (size_t)(k >> 20);
}

/* large_lock held. */
static struct large *ltab_find(uintptr_t key)
{
	if (!ltab)
		return NULL;
	size_t m = ltab_cap - 1;
	for (size_t i = lhash(key) & m;; i = (i + 1) & m) {
		if (ltab[i].key == key)
			return &ltab[i];
		if (ltab[i].key == 0)
			return NULL;
	}
}

/* large_lock held. */
static bool ltab_insert(const struct large *e)
{
	if ((ltab_used + ltab_tomb + 1) * 4 >= ltab_cap * 3) {
		size_t ncap = ltab_cap ? ltab_cap : 1024;
		if ((ltab_used + 1) * 2 >= ncap)
			ncap *= 2;
		struct large *n = raw_map(ncap * sizeof(*n));
		if (!n)
			return false;
		memset(n, 0, ncap * sizeof(*n));	/* raw_map is zeroed anyway */
		for (size_t i = 0; i < ltab_cap; i++) {
			if (ltab[i].key <= 1)
				continue;
			size_t j = lhash(ltab[i].key) & (ncap - 1);
			while (n[j].key)
				j = (j + 1) & (ncap - 1);
			n[j] = ltab[i];
		}
		if (ltab)
			raw_unmap(ltab, ltab_cap * sizeof(*ltab));
		ltab = n;
		ltab_cap = ncap;
		ltab_tomb = 0;
	}
	size_t m = ltab_cap - 1;
	size_t i = lhash(e->key) & m;
	while (ltab[i].key > 1)
		i = (i + 1) & m;
	if (ltab[i].key == 1)
		ltab_tomb--;
	ltab[i] = *e;
	ltab_used++;
	return true;
}

static void *large_alloc(size_t size, size_t align, bool uspf_heap, struct uspf *rt, bool *fresh)
{
	size_t need = page_up(size);
	size_t extra = align > PAGE ? align : 0;
	size_t maplen;
	char *base = NULL;
	struct large e;

	if (need < size || need + extra < need) {
		errno = ENOMEM;
		return NULL;
	}
	maplen = need + extra;
	*fresh = true;
	pthread_mutex_lock(&large_lock);
	if (!extra) {
		struct uspf *want = uspf_heap ? rt : NULL;
		for (unsigned i = 0; i < lcache_n; i++) {
			if (lcache[i].rt == want && lcache[i].maplen >= need &&
			    lcache[i].maplen - need <= need) {
				base = lcache[i].base;
				maplen = lcache[i].maplen;
				lcache_bytes -= maplen;
				lcache[i] = lcache[--lcache_n];
				*fresh = false;
				break;
			}
		}
	}
	pthread_mutex_unlock(&large_lock);
	if (!base) {
		base = uspf_heap ? map_uspf(rt, maplen) : raw_map(maplen);
		if (!base) {
			errno = ENOMEM;
			return NULL;
		}
	}
	e.base = base;
	e.maplen = maplen;
	e.key = extra ? (((uintptr_t)base + align - 1) & ~(align - 1)) : (uintptr_t)base;
	e.usable = maplen - (e.key - (uintptr_t)base);
	e.rt = uspf_heap ? rt : NULL;
	pthread_mutex_lock(&large_lock);
	bool ok = ltab_insert(&e);
	pthread_mutex_unlock(&large_lock);
	if (!ok) {
		unmap_any(e.rt, base, maplen);
		errno = ENOMEM;
		return NULL;
	}
	return (void *)e.key;
}

/* Unmap (or keep for reuse) a large block already out of the table. */
static void large_release(struct large *e)
{
	if (e->maplen <= LCACHE_MAX_ONE && e->base == (char *)e->key) {
		pthread_mutex_lock(&large_lock);
		if (lcache_n < LCACHE_SLOTS && lcache_bytes + e->maplen <= LCACHE_MAX_BYTES) {
			lcache[lcache_n++] = (struct lcache_ent){ e->base, e->maplen, e->rt };
			lcache_bytes += e->maplen;
			pthread_mutex_unlock(&large_lock);
			return;
		}
		pthread_mutex_unlock(&large_lock);
	}
	if (e->rt)
		unmap_any(e->rt, e->base, e->maplen);
	else
		raw_unmap(e->base, e->maplen);
}

/* Remove p from the large table: true (and *out) when it was one. */
static bool large_take(void *p, struct large *out)
{
	bool found = false;
	if ((uintptr_t)p & (PAGE - 1))
		return false;	/* large blocks are page aligned: no lock for the rest */
	pthread_mutex_lock(&large_lock);
	struct large *e = ltab_find((uintptr_t)p);
	if (e) {
		*out = *e;
		e->key = 1;
		ltab_used--;
		ltab_tomb++;
		found = true;
	}
	pthread_mutex_unlock(&large_lock);
	return found;
}

static bool large_usable(const void *p, size_t *usable)
{
	bool found = false;
	if ((uintptr_t)p & (PAGE - 1))
		return false;
	pthread_mutex_lock(&large_lock);
	struct large *e = ltab_find((uintptr_t)p);
	if (e) {
		*usable = e->usable;
		found = true;
	}
	pthread_mutex_unlock(&large_lock);
	return found;
}

/* ---- the next allocator, for pointers that are not ours ---- */

static void (*next_free)(void *);
static void *(*next_realloc)(void *, size_t);
static size_t (*next_usable)(void *);
static void *(*next_malloc)(size_t);
static void *(*next_calloc)(size_t, size_t);
static void *(*next_memalign)(size_t, size_t);

static void resolve_next(void)
{
	tc.guard++;
	if (!next_free)
		next_free = (void (*)(void *))dlsym(RTLD_NEXT, "free");
	if (!next_realloc)
		next_realloc = (void *(*)(void *, size_t))dlsym(RTLD_NEXT, "realloc");
	if (!next_usable)
		next_usable = (size_t (*)(void *))dlsym(RTLD_NEXT, "malloc_usable_size");
	if (!next_malloc)
		next_malloc = (void *(*)(size_t))dlsym(RTLD_NEXT, "malloc");
	if (!next_calloc)
		next_calloc = (void *(*)(size_t, size_t))dlsym(RTLD_NEXT, "calloc");
	if (!next_memalign)
		next_memalign = (void *(*)(size_t, size_t))dlsym(RTLD_NEXT, "memalign");
	tc.guard--;
}

/* ---- deferred frees (uspf memory freed by a bypassed caller) ---- */

struct deferred { struct deferred *next; void *p; };
static _Atomic(struct deferred *) deferred_head;

static void free_raw_small(struct chunk *ch, void *p);
static void do_free(void *p, bool bypass);

static void defer_free(void *p)
{
	struct deferred *d;
	unsigned c = size_class(sizeof(*d));
	void *o;
	if (central_take(&heap_raw, c, 1, &o, NULL) != 1)
		return;		/* leak rather than touch uspf memory here */
	d = o;
	d->p = p;
	d->next = atomic_load_explicit(&deferred_head, memory_order_relaxed);
	while (!atomic_compare_exchange_weak(&deferred_head, &d->next, d))
		;
}

static void drain_deferred(void)
{
	struct deferred *d = atomic_exchange(&deferred_head, NULL);
	while (d) {
		struct deferred *n = d->next;
		void *p = d->p;
		free_raw_small(chunk_of(d), d);
		do_free(p, false);
		d = n;
	}
}

static inline void maybe_drain(void)
{
	if (unlikely(atomic_load_explicit(&deferred_head, memory_order_relaxed)))
		drain_deferred();
}

/* ---- thread cache life ---- */

static pthread_key_t tc_key;
static pthread_once_t tc_once = PTHREAD_ONCE_INIT;
static bool tc_key_ok;

static void tc_flush_class(unsigned c, uint32_t keep)
{
	uint32_t n = tc.count[c] - keep;
	void *list = tc.head[c], *tail = NULL;
	if (!n)
		return;
	/* cut the first n objects off */
	void *o = list;
	for (uint32_t i = 1; i < n; i++)
		o = *(void **)o;
	tail = *(void **)o;
	*(void **)o = NULL;
	tc.head[c] = tail;
	tc.count[c] = keep;
	central_put(&heap_uspf, c, list);
}

static void tc_destroy(void *arg)
{
	(void)arg;
	tc.guard++;
	for (unsigned c = 0; c < NCLASSES; c++)
		tc_flush_class(c, 0);
	tc.state = 2;
	tc.guard--;
}

static void tc_key_init(void)
{
	tc_key_ok = pthread_key_create(&tc_key, tc_destroy) == 0;
}

/* ---- fork ---- */

/*
 * Fork takes every lock, in two groups around preload.c's handlers (which
 * take the runtime's mmap lock).  The uspf heap's pool lock is held across
 * uspf_mmap(), so that group goes first (registered after preload.c's, at
 * the first uspf chunk); the raw heap, the radix and the large table are
 * taken by the runtime's own allocations under its mmap lock, so they go
 * last (registered by our constructor, which runs before preload.c's).
 */
static void heap_lock_all(struct heap *h)
{
	for (unsigned c = 0; c < NCLASSES; c++)
		pthread_mutex_lock(&h->cls[c].lock);
	pthread_mutex_lock(&h->pool_lock);
}

static void heap_unlock_all(struct heap *h)
{
	pthread_mutex_unlock(&h->pool_lock);
	for (unsigned c = NCLASSES; c-- > 0;)
		pthread_mutex_unlock(&h->cls[c].lock);
}

static void heap_reinit(struct heap *h)
{
	for (unsigned c = 0; c < NCLASSES; c++)
		pthread_mutex_init(&h->cls[c].lock, NULL);
	pthread_mutex_init(&h->pool_lock, NULL);
}

static void fork_prepare_uspf(void) { heap_lock_all(&heap_uspf); }
static void fork_parent_uspf(void) { heap_unlock_all(&heap_uspf); }
static void fork_child_uspf(void) { heap_reinit(&heap_uspf); }

static void fork_prepare_raw(void)
{
	heap_lock_all(&heap_raw);
	pthread_mutex_lock(&radix_lock);
	pthread_mutex_lock(&large_lock);
}

static void fork_parent_raw(void)
{
	pthread_mutex_unlock(&large_lock);
	pthread_mutex_unlock(&radix_lock);
	heap_unlock_all(&heap_raw);
}

enum route { ROUTE_SYSTEM, ROUTE_RAW, ROUTE_USPF };

/*
 * The runtime starts when the program first needs it, not at its first
 * malloc: until the program has asked for USPF_MIN_SIZE bytes in all (the
 * smallest mapping uspf takes), the system allocator serves it, as with
 * USPF_HEAP=0 (the raw heap while dlsym has not answered).  A short
 * command (echo, cat, sed on a line) then starts no handler thread, takes
 * no userfaultfd round trip, and forks as natively: a size-class heap
 * spreads a shell's objects over more pages than glibc's, each one a
 * copy-on-write fault after every fork (BENCHMARKS.md, "What a process
 * costs").  Its blocks stay glibc's: free() and realloc() send pointers
 * that are not uspf's to the next allocator.  Bytes freed meanwhile are
 * not subtracted: the count is how much the program has wanted.
 */
static __fork_state _Atomic bool early_over;
static __fork_state _Atomic size_t early_bytes;

static __attribute__((noinline)) enum route early_route(size_t size)
{
	size_t total = atomic_fetch_add_explicit(&early_bytes, size, memory_order_relaxed) + size;

	if (total < preload_min_size() && total >= size) {
		if (unlikely(!next_malloc || !next_calloc || !next_memalign))
			resolve_next();
		return next_malloc && next_calloc && next_memalign ? ROUTE_SYSTEM : ROUTE_RAW;
	}
	atomic_store_explicit(&early_over, true, memory_order_relaxed);
	return ROUTE_USPF;
}

static void fork_child_raw(void)
{
	/*
	 * A child measures its own need: a subshell that allocates a little
	 * and exits must not start a runtime because its parent was close
	 * to the threshold (the parent's runtime is not the child's).
	 */
	atomic_store_explicit(&early_over, false, memory_order_relaxed);
	atomic_store_explicit(&early_bytes, 0, memory_order_relaxed);
	heap_reinit(&heap_raw);
	pthread_mutex_init(&radix_lock, NULL);
	pthread_mutex_init(&large_lock, NULL);
}

static pthread_once_t fork_uspf_once = PTHREAD_ONCE_INIT;

static void fork_uspf_register(void)
{
	pthread_atfork(fork_prepare_uspf, fork_parent_uspf, fork_child_uspf);
}

/*
 * glibc's PTHREAD_MUTEX_INITIALIZER is all zeroes, so the zeroed heaps are
 * usable before this constructor runs (ld.so and other constructors allocate).
 */
__attribute__((constructor(101)))
static void preload_malloc_init(void)
{
	tc.guard++;
	pthread_atfork(fork_prepare_raw, fork_parent_raw, fork_child_raw);
	tc.guard--;
	resolve_next();
}


/* ---- the allocation paths ---- */

/* Which heap serves this caller: true = uspf heap with *rt set. */
static _Atomic bool heap_known_on;

static inline bool heap_on(void)
{
	if (likely(atomic_load_explicit(&heap_known_on, memory_order_relaxed)))
		return true;
	if (!preload_heap_enabled())
		return false;
	atomic_store_explicit(&heap_known_on, true, memory_order_relaxed);
	return true;
}

/*
 * Who serves this caller: bypassed and re-entrant callers get the raw heap;
 * the program gets the uspf heap, or with USPF_HEAP=0 (or uspf disabled)
 * the system allocator (the raw heap while dlsym has not answered: it
 * allocates).
 */

static inline enum route route(size_t size)
{
	if (tc.guard || preload_bypass())
		return ROUTE_RAW;
	if (likely(heap_on()))
		return likely(atomic_load_explicit(&early_over, memory_order_relaxed)) ?
		       ROUTE_USPF : early_route(size);
	if (unlikely(!next_malloc || !next_calloc || !next_memalign))
		resolve_next();
	return next_malloc && next_calloc && next_memalign ? ROUTE_SYSTEM : ROUTE_RAW;
}

/*
 * The fast paths' test: this thread's cache is live (so the uspf heap is
 * on: heap_known_on never goes back) and the caller is the program.
 */
static inline bool fast_ok(void)
{
	return likely(tc.state == 1 && !tc.guard) && likely(!preload_bypass());
}

static inline void uspf_first_use(void)
{
	static _Atomic bool done;
	if (likely(atomic_load_explicit(&done, memory_order_acquire)))
		return;
	tc.guard++;
	pthread_once(&fork_uspf_once, fork_uspf_register);
	tc.guard--;
	atomic_store_explicit(&done, true, memory_order_release);
}

static void *small_alloc_central(struct heap *h, unsigned c, struct uspf *rt)
{
	void *o;
	if (central_take(h, c, 1, &o, rt) != 1) {
		errno = ENOMEM;
		return NULL;
	}
	return o;
}

/* Give this thread a cache; the key's destructor flushes it at thread exit. */
static void tc_setup(void)
{
	tc.guard++;
	pthread_once(&tc_once, tc_key_init);
	if (tc_key_ok)
		pthread_setspecific(tc_key, (void *)1);
	tc.guard--;
	tc.state = 1;
}

static __attribute__((noinline)) void *small_alloc_slow(unsigned c)
{
	struct uspf *rt;

	/* A forked child's thread cache runs dry before it needs a runtime. */
	if (unlikely(!atomic_load_explicit(&early_over, memory_order_relaxed))) {
		switch (early_route(class_size(c))) {
		case ROUTE_SYSTEM:
			return next_malloc(class_size(c));
		case ROUTE_RAW:
			return small_alloc_central(&heap_raw, c, NULL);
		default:
			break;
		}
	}

	tc.guard++;
	rt = preload_runtime();
	tc.guard--;
	if (!rt)
		return small_alloc_central(&heap_raw, c, NULL);
	uspf_first_use();
	maybe_drain();
	if (tc.head[c]) {
		/* the deferred frees refilled this class */
		void *o = tc.head[c];
		tc.head[c] = *(void **)o;
		tc.count[c]--;
		return o;
	}
	if (tc.state == 0)
		tc_setup();
	if (tc.state == 2)
		return small_alloc_central(&heap_uspf, c, rt);
	uint32_t want = class_tc_max(c) / 2;
	void *list;
	uint32_t got = central_take(&heap_uspf, c, want ? want : 1, &list, rt);
	if (!got) {
		errno = ENOMEM;
		return NULL;
	}
	void *o = list;
	tc.head[c] = *(void **)o;
	tc.count[c] = got - 1;
	return o;
}

/* The thread cache's pop: the whole fast path of a small allocation. */
static inline void *tc_pop(unsigned c)
{
	void *o = tc.head[c];

	if (likely(o)) {
		tc.head[c] = *(void **)o;
		tc.count[c]--;
		return o;
	}
	return small_alloc_slow(c);
}

static inline void *small_alloc(unsigned c, bool uspf)
{
	if (!uspf)
		return small_alloc_central(&heap_raw, c, NULL);
	return tc_pop(c);
}

static void *alloc_large(size_t size, size_t align, bool uspf, bool *fresh)
{
	struct uspf *rt = NULL;
	if (uspf) {
		tc.guard++;
		rt = preload_runtime();
		tc.guard--;
		if (!rt) {
			uspf = false;
		} else {
			uspf_first_use();
			maybe_drain();
		}
	}
	return large_alloc(size, align, uspf, rt, fresh);
}

static __attribute__((noinline)) void *do_malloc(size_t size)
{
	enum route r = route(size);
	if (unlikely(r == ROUTE_SYSTEM))
		return next_malloc(size);
	bool uspf = r == ROUTE_USPF;
	if (likely(size <= MAX_SMALL))
		return small_alloc(small_class(size), uspf);
	bool fresh;
	return alloc_large(size, 0, uspf, &fresh);
}

/* Past the class's bound: half the cache goes back to the central list. */
static __attribute__((noinline)) void tc_overflow(unsigned c)
{
	int saved = errno;
	maybe_drain();
	tc_flush_class(c, class_tc_max(c) / 2);
	errno = saved;
}

/* An object into this thread's cache (fast_ok() or tc.state == 1 checked). */
static inline void tc_push(unsigned c, void *p)
{
	*(void **)p = tc.head[c];
	tc.head[c] = p;
	if (unlikely(++tc.count[c] > class_tc_max(c)))
		tc_overflow(c);
}

static void free_raw_small(struct chunk *ch, void *p)
{
	(void)ch;
	*(void **)p = NULL;
	struct span *s = &ch->spans[((uintptr_t)p - (uintptr_t)ch->base) >> SPAN_SHIFT];
	central_put(&heap_raw, s->cls, p);
}

static void do_free(void *p, bool bypass)
{
	struct chunk *ch = chunk_of(p);
	if (likely(ch)) {
		if (ch->heap == &heap_raw) {
			free_raw_small(ch, p);
			return;
		}
		if (bypass) {
			defer_free(p);
			return;
		}
		struct span *s = &ch->spans[((uintptr_t)p - (uintptr_t)ch->base) >> SPAN_SHIFT];
		unsigned c = s->cls;
		if (likely(tc.state == 1)) {
			tc_push(c, p);
			return;
		}
		*(void **)p = NULL;
		central_put(&heap_uspf, c, p);
		return;
	}
	struct large e;
	if (large_take(p, &e)) {
		if (bypass && e.rt) {
			/* the runtime must not be re-entered from inside itself: keep it */
			pthread_mutex_lock(&large_lock);
			ltab_insert(&e);
			pthread_mutex_unlock(&large_lock);
			defer_free(p);
			return;
		}
		large_release(&e);
		return;
	}
	if (!next_free)
		resolve_next();
	if (next_free)
		next_free(p);
}

static inline bool caller_bypassed(void)
{
	return tc.guard || preload_bypass();
}

/* Usable size of one of our pointers; 0 when it is not ours. */
static size_t our_usable(const void *p)
{
	struct chunk *ch = chunk_of(p);
	if (ch)
		return ch->spans[((uintptr_t)p - (uintptr_t)ch->base) >> SPAN_SHIFT].size;
	size_t u;
	if (large_usable(p, &u))
		return u;
	return 0;
}

/* Aligned allocation: align is a power of two >= sizeof(void *). */
static void *do_aligned(size_t align, size_t size)
{
	if (align <= MIN_ALIGN)
		return do_malloc(size);
	enum route r = route(size);
	if (unlikely(r == ROUTE_SYSTEM))
		return next_memalign(align, size);
	bool uspf = r == ROUTE_USPF;
	if (size <= MAX_SMALL && align <= MAX_SMALL) {
		/* the first class whose size is a multiple of align: objects are aligned */
		for (unsigned c = small_class(size < align ? align : size); c < NCLASSES; c++)
			if (class_size(c) % align == 0)
				return small_alloc(c, uspf);
	}
	bool fresh;
	return alloc_large(size, align, uspf, &fresh);
}

/* ---- exported API ---- */

/*
 * The fast paths (malloc, free, calloc): a small object from or to this
 * thread's cache, no call out of this file but preload_bypass(), no atomic
 * read-modify-write, no lock.  Everything else takes the paths above.
 */
EXPORT void *malloc(size_t size)
{
	if (likely(size <= MAX_SMALL) && fast_ok())
		return tc_pop(small_class(size));
	return do_malloc(size);
}

static __attribute__((noinline)) void free_slow(void *p, unsigned tag)
{
	if (!p)
		return;
	int saved = errno;
	if (!tag && likely(next_free) && ((uintptr_t)p & (PAGE - 1)) && !chunk_of(p)) {
		/* the system allocator's (USPF_HEAP=0): not ours, small or large */
		next_free(p);
		errno = saved;
		return;
	}
	if (tag && tc.state == 0 && !tc.guard && !preload_bypass()) {
		/*
		 * A program thread that frees before it ever allocates (a
		 * consumer of another thread's objects): give it a cache too,
		 * so its frees reach the central lists in batches, one lock
		 * each, instead of one lock per object.
		 */
		tc_setup();
		tc_push(tag - 1, p);
	} else {
		do_free(p, caller_bypassed());
	}
	errno = saved;
}

EXPORT void free(void *p)
{
	unsigned tag = span_tag(p);	/* 0 for NULL */
	if (likely(tag) && fast_ok()) {
		tc_push(tag - 1, p);
		return;
	}
	free_slow(p, tag);
}

static __attribute__((noinline)) void *calloc_slow(size_t n, size_t size, size_t total)
{
	enum route r = route(total);
	if (unlikely(r == ROUTE_SYSTEM))
		return next_calloc(n, size);
	bool uspf = r == ROUTE_USPF;
	if (total <= MAX_SMALL) {
		void *p = small_alloc(small_class(total), uspf);
		if (p)
			memset(p, 0, total);
		return p;
	}
	bool fresh;
	void *p = alloc_large(total, 0, uspf, &fresh);
	if (p && !fresh)
		memset(p, 0, total);
	return p;
}

EXPORT void *calloc(size_t n, size_t size)
{
	size_t total;
	if (__builtin_mul_overflow(n, size, &total)) {
		errno = ENOMEM;
		return NULL;
	}
	if (likely(total <= MAX_SMALL) && fast_ok()) {
		unsigned c = small_class(total);
		void *p = tc.head[c];
		if (likely(p)) {
			tc.head[c] = *(void **)p;
			tc.count[c]--;
		} else {
			p = small_alloc_slow(c);
			if (!p)
				return NULL;
		}
		return memset(p, 0, total);
	}
	return calloc_slow(n, size, total);
}

EXPORT void *realloc(void *p, size_t size)
{
	if (!p)
		return do_malloc(size);
	if (!size) {
		free(p);
		return NULL;
	}
	size_t old = our_usable(p);
	if (!old) {
		if (!next_realloc)
			resolve_next();
		if (next_realloc)
			return next_realloc(p, size);
		errno = ENOMEM;
		return NULL;
	}
	if (old <= MAX_SMALL && chunk_of(p)) {
		/* stay when the class fits and is not far too big */
		if (size <= old && (class_size(small_class(size)) == old || size >= old / 2))
			return p;
	} else if (size > MAX_SMALL) {
		if (size <= old && page_up(size) >= old / 2) {
			return p;
		}
		/* grow or shrink a large block in place with mremap where we can */
		struct large e;
		if (!caller_bypassed() && large_take(p, &e)) {
			struct uspf *rt = e.rt ? live_rt(e.rt) : NULL;
			if (rt && e.base == (char *)e.key && page_up(size) >= size) {
				void *out = NULL;
				rt_enter();
				int ret = uspf_mremap(rt, e.base, e.maplen, page_up(size),
						      MREMAP_MAYMOVE, NULL, &out);
				rt_exit();
				if (!ret) {
					e.base = out;
					e.key = (uintptr_t)out;
					e.maplen = e.usable = page_up(size);
				}
				pthread_mutex_lock(&large_lock);
				bool ok = ltab_insert(&e);
				pthread_mutex_unlock(&large_lock);
				if (ok && !ret)
					return out;
				if (!ok) {
					/* cannot happen short of ENOMEM on the table: keep p valid */
					errno = ENOMEM;
					return NULL;
				}
			} else {
				pthread_mutex_lock(&large_lock);
				ltab_insert(&e);
				pthread_mutex_unlock(&large_lock);
			}
		}
	}
	void *n = do_malloc(size);
	if (!n)
		return NULL;
	memcpy(n, p, old < size ? old : size);
	free(p);
	return n;
}

EXPORT void *reallocarray(void *p, size_t n, size_t size)
{
	size_t total;
	if (__builtin_mul_overflow(n, size, &total)) {
		errno = ENOMEM;
		return NULL;
	}
	return realloc(p, total);
}

EXPORT int posix_memalign(void **out, size_t align, size_t size)
{
	if (align < sizeof(void *) || (align & (align - 1)))
		return EINVAL;
	int saved = errno;
	void *p = do_aligned(align, size);
	if (!p) {
		errno = saved;
		return ENOMEM;
	}
	*out = p;
	return 0;
}

EXPORT void *aligned_alloc(size_t align, size_t size)
{
	/* glibc 2.36 accepts any power of two (and rounds others up as memalign) */
	if (align & (align - 1)) {
		errno = EINVAL;
		return NULL;
	}
	return do_aligned(align < sizeof(void *) ? sizeof(void *) : align, size);
}

EXPORT void *memalign(size_t align, size_t size)
{
	if (align > (SIZE_MAX >> 2)) {
		errno = EINVAL;
		return NULL;
	}
	if (align < sizeof(void *))
		align = sizeof(void *);
	if (align & (align - 1)) {
		size_t a = sizeof(void *);
		while (a < align)
			a <<= 1;
		align = a;
	}
	return do_aligned(align, size);
}

EXPORT void *valloc(size_t size)
{
	return do_aligned(PAGE, size);
}

EXPORT void *pvalloc(size_t size)
{
	size_t r = page_up(size ? size : 1);
	if (r < size) {
		errno = ENOMEM;
		return NULL;
	}
	return do_aligned(PAGE, r);
}

EXPORT size_t malloc_usable_size(void *p)
{
	if (!p)
		return 0;
	size_t u = our_usable(p);
	if (u)
		return u;
	if (!next_usable)
		resolve_next();
	return next_usable ? next_usable(p) : 0;
}
