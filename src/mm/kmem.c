/* SPDX-License-Identifier: MIT */
/*
 * mm/kmem.c - the runtime's own memory: raw-syscall mappings and a small slab
 * allocator on top of them (see mm/kmem.h for why not malloc).
 */
#include <errno.h>
#include <stdbool.h>
#include <pthread.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "mm/kmem.h"
#include "mm/fork_state.h"

__thread bool uspf_runtime_thread;

#define KMEM_SLAB_SIZE	(64u * 1024)
#define KMEM_ARENA_SIZE	(1ul << 30)	/* address space only: reserved PROT_NONE */

/*
 * Slabs come from one reserved range, not from fresh mmap()s: a slab
 * mapped while a writer of the program has just unmapped something would
 * land in the hole it left, and a program that maps there again with
 * MAP_FIXED (the hole is "its own" as far as it knows) would wipe it.
 */
static __fork_state pthread_mutex_t arena_lock = PTHREAD_MUTEX_INITIALIZER;
static char *arena;
static size_t arena_used;

static void *arena_slab(void)
{
	void *slab = NULL;
	int saved = errno;
	long p;

	pthread_mutex_lock(&arena_lock);
	if (!arena) {
		p = syscall(SYS_mmap, NULL, KMEM_ARENA_SIZE, PROT_NONE,
			    MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
		arena = p == -1 ? MAP_FAILED : (char *)p;
	}
	if (arena != MAP_FAILED && arena_used + KMEM_SLAB_SIZE <= KMEM_ARENA_SIZE &&
	    !syscall(SYS_mprotect, arena + arena_used, KMEM_SLAB_SIZE, PROT_READ | PROT_WRITE)) {
		slab = arena + arena_used;
		arena_used += KMEM_SLAB_SIZE;
	}
	pthread_mutex_unlock(&arena_lock);
	errno = saved;
	return slab ? slab : kmem_map(KMEM_SLAB_SIZE);	/* arena full: plain pages */
}

static void arena_slab_free(void *slab)
{
	char *p = slab;

	if (arena && arena != MAP_FAILED && p >= arena && p < arena + KMEM_ARENA_SIZE) {
		/* Give the memory back, keep the address space reserved. */
		syscall(SYS_madvise, slab, KMEM_SLAB_SIZE, MADV_DONTNEED);
		return;
	}
	kmem_unmap(slab, KMEM_SLAB_SIZE);
}

static size_t page_round(size_t len)
{
	size_t pg = 4096;

	return (len + pg - 1) & ~(pg - 1);
}

void *kmem_map(size_t len)
{
	int saved = errno;
	long p;

	/* The raw syscall: an interposed mmap() must never see runtime memory. */
	p = syscall(SYS_mmap, NULL, page_round(len), PROT_READ | PROT_WRITE,
		    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	errno = saved;
	return p == -1 ? NULL : (void *)p;
}

void kmem_unmap(void *p, size_t len)
{
	int saved = errno;

	if (p)
		syscall(SYS_munmap, p, page_round(len));
	errno = saved;
}

struct kmem_free {
	struct kmem_free *next;
};

struct kmem_slab {
	struct kmem_slab *next;
};

struct kmem_cache {
	pthread_mutex_t lock;
	struct kmem_cache *next;	/* on cache_chain */
	const char *name;
	size_t size;		/* object size, rounded to align */
	size_t first;		/* offset of the first object in a slab */
	struct kmem_free *free;	/* free objects */
	struct kmem_slab *slabs;
	size_t in_use;
};

/*
 * Every live cache, for fork: like the kernel's slab_caches list under
 * slab_mutex.  Lock order: cache_chain_lock, then a cache's lock, then
 * arena_lock (a cache grows under its lock).
 */
static __fork_state pthread_mutex_t cache_chain_lock = PTHREAD_MUTEX_INITIALIZER;

/*
 * Cache descriptors come from one page while it lasts: fork() holds every
 * cache's lock, and each page whose lock it writes is a copy-on-write
 * fault in the parent and in the child.  With a descriptor per mapping
 * that was a page each (the model has five caches).
 */
#define CACHE_POOL 16
static struct kmem_cache cache_pool[CACHE_POOL] __attribute__((aligned(4096)));
static unsigned int cache_pool_used;	/* bitmask, under cache_chain_lock */

static struct kmem_cache *cache_desc_alloc(void)
{
	unsigned int i;

	pthread_mutex_lock(&cache_chain_lock);
	for (i = 0; i < CACHE_POOL; i++)
		if (!(cache_pool_used & (1u << i))) {
			cache_pool_used |= 1u << i;
			pthread_mutex_unlock(&cache_chain_lock);
			memset(&cache_pool[i], 0, sizeof(cache_pool[i]));
			return &cache_pool[i];
		}
	pthread_mutex_unlock(&cache_chain_lock);
	return kmem_map(sizeof(struct kmem_cache));
}

static void cache_desc_free(struct kmem_cache *c)
{
	if (c >= cache_pool && c < cache_pool + CACHE_POOL) {
		pthread_mutex_lock(&cache_chain_lock);
		cache_pool_used &= ~(1u << (c - cache_pool));
		pthread_mutex_unlock(&cache_chain_lock);
		return;
	}
	kmem_unmap(c, sizeof(*c));
}
static __fork_state struct kmem_cache *cache_chain;

struct kmem_cache *kmem_cache_create(const char *name, size_t size, size_t align)
{
	struct kmem_cache *c;

	if (align < sizeof(void *))
		align = sizeof(void *);
	/* Slabs are page aligned: no object can be aligned beyond a page. */
	if (align & (align - 1) || align > 4096 || size == 0 || size > KMEM_SLAB_SIZE / 4) {
		errno = EINVAL;
		return NULL;
	}
	c = cache_desc_alloc();
	if (!c) {
		errno = ENOMEM;
		return NULL;
	}
	pthread_mutex_init(&c->lock, NULL);
	c->name = name;
	c->size = (size + align - 1) & ~(align - 1);
	c->first = (sizeof(struct kmem_slab) + align - 1) & ~(align - 1);
	pthread_mutex_lock(&cache_chain_lock);
	c->next = cache_chain;
	cache_chain = c;
	pthread_mutex_unlock(&cache_chain_lock);
	return c;
}

/* Carve a new slab into free objects; called with c->lock held. */
static int kmem_cache_grow(struct kmem_cache *c)
{
	struct kmem_slab *slab = arena_slab();
	size_t off;

	if (!slab)
		return -ENOMEM;
	slab->next = c->slabs;
	c->slabs = slab;
	for (off = c->first; off + c->size <= KMEM_SLAB_SIZE; off += c->size) {
		struct kmem_free *f = (struct kmem_free *)((char *)slab + off);

		f->next = c->free;
		c->free = f;
	}
	return 0;
}

void *kmem_cache_alloc(struct kmem_cache *c)
{
	struct kmem_free *f;

	pthread_mutex_lock(&c->lock);
	if (!c->free && kmem_cache_grow(c)) {
		pthread_mutex_unlock(&c->lock);
		return NULL;
	}
	f = c->free;
	c->free = f->next;
	c->in_use++;
	pthread_mutex_unlock(&c->lock);
	memset(f, 0, c->size);
	return f;
}

void kmem_cache_free(struct kmem_cache *c, void *obj)
{
	struct kmem_free *f = obj;

	if (!obj)
		return;
	pthread_mutex_lock(&c->lock);
	f->next = c->free;
	c->free = f;
	c->in_use--;
	pthread_mutex_unlock(&c->lock);
}

size_t kmem_cache_in_use(struct kmem_cache *c)
{
	size_t n;

	pthread_mutex_lock(&c->lock);
	n = c->in_use;
	pthread_mutex_unlock(&c->lock);
	return n;
}

int kmem_cache_protect(struct kmem_cache *c, int prot)
{
	struct kmem_slab *s, *next;
	int ret = 0;

	if (!c)
		return 0;
	pthread_mutex_lock(&c->lock);
	for (s = c->slabs; s && !ret; s = next) {
		next = s->next;	/* read before the slab may become read-only */
		if (syscall(SYS_mprotect, s, KMEM_SLAB_SIZE, prot))
			ret = -errno;
	}
	pthread_mutex_unlock(&c->lock);
	return ret;
}

void kmem_cache_destroy(struct kmem_cache *c)
{
	struct kmem_cache **pp;
	struct kmem_slab *s, *next;

	if (!c)
		return;
	pthread_mutex_lock(&cache_chain_lock);
	for (pp = &cache_chain; *pp; pp = &(*pp)->next) {
		if (*pp == c) {
			*pp = c->next;
			break;
		}
	}
	pthread_mutex_unlock(&cache_chain_lock);
	for (s = c->slabs; s; s = next) {
		next = s->next;
		arena_slab_free(s);
	}
	pthread_mutex_destroy(&c->lock);
	cache_desc_free(c);
}

/* ---- fork -------------------------------------------------------------- */

/*
 * A fork while another thread holds a cache's lock (a handler allocating
 * an anon_vma, the call_rcu worker freeing a VMA) would leave the lock
 * held for ever in the child, whose next runtime allocates from the same
 * caches.  So the fork waits for every allocator lock, as glibc's malloc
 * does with its arenas (__malloc_fork_lock_parent).
 */
static __fork_state bool fork_held;	/* prepare took the locks (the forking thread's) */

static void kmem_fork_prepare(void)
{
	struct kmem_cache *c;

	/*
	 * No cache yet (no runtime in this process): nothing to hold, and
	 * no page of ours to write, copy-on-write, in parent and child.  A
	 * first cache being made meanwhile holds only the chain and arena
	 * locks, which the child makes anew.
	 */
	fork_held = __atomic_load_n(&cache_chain, __ATOMIC_ACQUIRE) != NULL;
	if (!fork_held)
		return;
	pthread_mutex_lock(&cache_chain_lock);
	for (c = cache_chain; c; c = c->next)
		pthread_mutex_lock(&c->lock);
	pthread_mutex_lock(&arena_lock);
}

static void kmem_fork_parent(void)
{
	struct kmem_cache *c;

	if (!fork_held)
		return;
	pthread_mutex_unlock(&arena_lock);
	for (c = cache_chain; c; c = c->next)
		pthread_mutex_unlock(&c->lock);
	pthread_mutex_unlock(&cache_chain_lock);
}

/* The child is alone: fresh locks, nobody can be holding them. */
static void kmem_fork_child(void)
{
	struct kmem_cache *c;

	pthread_mutex_init(&arena_lock, NULL);
	for (c = cache_chain; c; c = c->next)
		pthread_mutex_init(&c->lock, NULL);
	pthread_mutex_init(&cache_chain_lock, NULL);
}

static void kmem_atfork_once(void)
{
	pthread_atfork(kmem_fork_prepare, kmem_fork_parent, kmem_fork_child);
}

void kmem_atfork_register(void)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;

	pthread_once(&once, kmem_atfork_once);
}
