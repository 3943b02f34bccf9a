/* SPDX-License-Identifier: MIT */
/*
 * slab.c - a slab cache of fixed-size objects on uspf memory, and the
 * lesson of SLAB_TYPESAFE_BY_RCU.
 *
 * Shows: why a reader of a type-safe-by-RCU cache must revalidate the
 * object after taking a reference.  The cache's slabs are uspf mappings
 * (their first touch faults through the chosen policy).  An index of
 * slots points at objects; readers walk it with no lock, under liburcu's
 * (urcu-bp) rcu_read_lock(), and a writer thread keeps replacing the
 * object of a random slot with a new one holding a new key.
 *
 * --mode typesafe (the default), the kernel's SLAB_TYPESAFE_BY_RCU: a freed
 * object goes back to the cache at once and the writer's next allocation
 * reuses it, for another key, while a reader that found it may still be
 * looking at it.  RCU guarantees only that the memory stays an object of
 * this type.  So a reader reads the key it looked up, takes a reference
 * only if the count is not zero (a free object has none), and then checks
 * the key again: if it changed, the object was recycled under it; drop the
 * reference and look up again.  uspf's own VMA cache works this way under
 * the pervma-refcnt policy (see src/vma.c and vma_start_read() in
 * src/policy_pervma_refcnt.c: the reference, then vm_mm and the range
 * checked again).
 *
 * --no-revalidate skips that second check.  The reader then uses whatever
 * object it holds; it checks the key afterwards only to count how often it
 * would have used another key's object (the run does not fail on it).
 *
 * --mode rcu frees objects only after a grace period (call_rcu): a reader
 * can find an object freed, but never recycled; a recycled object there
 * is a bug and fails the run.
 *
 * --window N spins N times between reading the key and taking the
 * reference, as a reader interrupted there (an interrupt, a preemption)
 * would; the default, 10, makes recycling visible in a fraction of a
 * second on a small machine; 0 leaves only the real interruptions.
 *
 * Build: make examples/slab (in the tree), or against an installed uspf:
 *        cc -pthread -o slab slab.c helpers.c $(pkg-config --cflags --libs uspf liburcu-bp)
 * Run:   ./examples/slab [--policy NAME] [--mode typesafe|rcu] [--no-revalidate]
 *                        [--readers N] [--slots N] [--seconds S] [--window N]
 * e.g.   ./examples/slab --no-revalidate --seconds 2
 *
 * Exit status: 0 if every object a reader used was consistent, 1 on an
 * inconsistent object or a failed call, 2 on a bad flag.
 */
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>
#include <urcu-bp.h>
#include <uspf.h>

#include "helpers.h"

#define PAGE_SIZE	4096UL
#define SLAB_SIZE	(4 * PAGE_SIZE)
#define PAYLOAD_WORDS	8
#define MAX_READERS	64

/* The object: its key says which incarnation it is; the payload follows the key. */
struct obj {
	_Atomic uint64_t key;		/* changes each time the object is reused */
	atomic_uint refcnt;		/* 0: free; 1: in the index; +1 per reader */
	struct obj *next_free;		/* on the cache's free list */
	struct rcu_head rcu;		/* --mode rcu: freed after a grace period */
	uint64_t payload[PAYLOAD_WORDS];
};

/* The cache: objects carved from uspf-mapped slabs, a LIFO free list. */
struct kmem_cache {
	struct uspf *u;
	bool typesafe_by_rcu;
	pthread_mutex_t lock;
	struct obj *free;
	unsigned long slabs;
	int error;			/* a uspf_mmap that failed, for main to report */
};

struct reader {
	pthread_t thread;
	uint64_t seed;
	unsigned long lookups;		/* objects found and used */
	unsigned long freed;		/* found freed (refcount 0): looked up again */
	unsigned long recycled;		/* found reused for another key: looked up again */
	unsigned long wrong;		/* --no-revalidate: used another key's object */
	unsigned long bad;		/* payload not matching the key: must stay 0 */
};

static struct kmem_cache cache = { .lock = PTHREAD_MUTEX_INITIALIZER };
static struct obj **slots;		/* the index; written by the writer, read under RCU */
static unsigned long nslots = 64;
static bool revalidate = true;
static unsigned long window = 10;	/* spins between the lookup and the reference */
static atomic_bool stop;
static unsigned long replaced;		/* writer: objects replaced */

static uint64_t payload_word(uint64_t key, unsigned int i)
{
	return key * 0x9e3779b97f4a7c15ULL + i;
}

/* Grow the cache by one slab: a new uspf mapping, each page faults when first linked. */
static int cache_grow(struct kmem_cache *c)
{
	struct obj *o;
	char *slab;
	size_t i;
	int ret;

	ret = uspf_mmap(c->u, NULL, SLAB_SIZE, PROT_READ | PROT_WRITE,
			MAP_PRIVATE | MAP_ANONYMOUS, NULL, (void **)&slab);
	if (ret)
		return ret;
	for (i = 0; i + sizeof(*o) <= SLAB_SIZE; i += sizeof(*o)) {
		o = (struct obj *)(slab + i);
		o->next_free = c->free;
		c->free = o;
	}
	c->slabs++;
	return 0;
}

static struct obj *cache_alloc(struct kmem_cache *c)
{
	struct obj *o = NULL;

	pthread_mutex_lock(&c->lock);
	if (!c->free)
		c->error = cache_grow(c);
	if (c->free) {
		o = c->free;
		c->free = o->next_free;
	}
	pthread_mutex_unlock(&c->lock);
	return o;
}

static void cache_free_now(struct kmem_cache *c, struct obj *o)
{
	pthread_mutex_lock(&c->lock);
	o->next_free = c->free;
	c->free = o;
	pthread_mutex_unlock(&c->lock);
}

static void cache_free_rcu(struct rcu_head *head)
{
	cache_free_now(&cache, caa_container_of(head, struct obj, rcu));
}

/* The last reference is gone: free the object, at once or after a grace period. */
static void obj_put(struct obj *o)
{
	/* Release our uses of it; acquire everyone else's before it is reused. */
	if (atomic_fetch_sub_explicit(&o->refcnt, 1, memory_order_acq_rel) != 1)
		return;
	if (cache.typesafe_by_rcu)
		cache_free_now(&cache, o);
	else
		call_rcu(&o->rcu, cache_free_rcu);
}

/* refcount_inc_not_zero(), acquiring: a free object (0) cannot be taken. */
static bool obj_get_unless_zero(struct obj *o)
{
	unsigned int old = atomic_load_explicit(&o->refcnt, memory_order_relaxed);

	do {
		if (!old)
			return false;
	} while (!atomic_compare_exchange_weak_explicit(&o->refcnt, &old, old + 1,
							memory_order_acquire, memory_order_relaxed));
	return true;
}

/* A fresh object for key: filled while its count is 0, then made live (release). */
static struct obj *obj_new(uint64_t key)
{
	struct obj *o = cache_alloc(&cache);
	unsigned int i;

	if (!o)
		return NULL;
	atomic_store_explicit(&o->key, key, memory_order_relaxed);
	for (i = 0; i < PAYLOAD_WORDS; i++)
		o->payload[i] = payload_word(key, i);
	atomic_store_explicit(&o->refcnt, 1, memory_order_release);
	return o;
}

/*
 * The lookup of every SLAB_TYPESAFE_BY_RCU user (and of
 * lock_vma_under_rcu()): find the object in the slot and the key it holds,
 * take a reference unless it is free, then - after the reference, never
 * before - check that it still holds that key.  Returns the object,
 * referenced, and the key looked up in *keyp.
 */
static struct obj *lookup(struct reader *r, unsigned long slot, uint64_t *keyp)
{
	struct obj *o;
	uint64_t key;
	unsigned long i;

	for (;;) {
		rcu_read_lock();
		o = rcu_dereference(slots[slot]);
		key = atomic_load_explicit(&o->key, memory_order_relaxed);
		for (i = 0; i < window; i++)	/* a reader interrupted right here */
			caa_cpu_relax();
		if (!obj_get_unless_zero(o)) {
			rcu_read_unlock();
			r->freed++;
			continue;
		}
		rcu_read_unlock();	/* the reference keeps the object from here */
		if (revalidate && atomic_load_explicit(&o->key, memory_order_relaxed) != key) {
			obj_put(o);
			r->recycled++;
			continue;
		}
		*keyp = key;
		return o;
	}
}

static void *reader_thread(void *arg)
{
	struct reader *r = arg;
	struct obj *o;
	uint64_t key, now;
	unsigned int i;

	while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
		o = lookup(r, ex_next_random(&r->seed) % nslots, &key);
		/* Held by our reference, the object cannot change: it is self-consistent. */
		now = atomic_load_explicit(&o->key, memory_order_relaxed);
		for (i = 0; i < PAYLOAD_WORDS; i++)
			if (o->payload[i] != payload_word(now, i))
				r->bad++;
		/* But is it the one we looked up?  Without revalidation, maybe not. */
		if (now != key)
			r->wrong++;
		obj_put(o);
		r->lookups++;
	}
	return NULL;
}

/* Replace the object of a random slot with a new one: the old one is freed. */
static void *writer_thread(void *arg)
{
	uint64_t seed = 0x2545f4914f6cdd1dULL, key = nslots;
	unsigned long slot;
	struct obj *old, *o;

	while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
		o = obj_new(key++);
		if (!o)
			break;
		slot = ex_next_random(&seed) % nslots;
		old = slots[slot];
		rcu_assign_pointer(slots[slot], o);
		obj_put(old);	/* the index's reference */
		replaced++;
	}
	return NULL;
}

static void usage(FILE *f)
{
	fprintf(f, "usage: slab [--policy NAME] [--mode typesafe|rcu] [--no-revalidate] [--readers N]\n"
		   "            [--slots N] [--seconds S] [--window N]\n");
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "policy", required_argument, NULL, 'p' },
		{ "mode", required_argument, NULL, 'm' },
		{ "no-revalidate", no_argument, NULL, 'n' },
		{ "readers", required_argument, NULL, 'r' },
		{ "slots", required_argument, NULL, 's' },
		{ "seconds", required_argument, NULL, 't' },
		{ "window", required_argument, NULL, 'w' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	struct reader readers[MAX_READERS] = { 0 }, sum = { 0 };
	unsigned long nreaders = 2, i;
	struct uspf_config cfg;
	struct timespec ts;
	pthread_t writer;
	double seconds = 1;
	int opt, ret;

	uspf_config_init(&cfg);
	cache.typesafe_by_rcu = true;
	ex_prog = "slab";
	opterr = 0;
	while ((opt = getopt_long(argc, argv, ":", opts, NULL)) != -1) {
		switch (opt) {
		case 'p':
			if (uspf_policy_from_name(optarg, &cfg.policy))
				return ex_bad_policy(optarg, false);
			break;
		case 'm':
			if (!strcmp(optarg, "typesafe") || !strcmp(optarg, "rcu"))
				cache.typesafe_by_rcu = !strcmp(optarg, "typesafe");
			else
				return ex_bad_value("--mode", optarg, "typesafe or rcu");
			break;
		case 'n':
			revalidate = false;
			break;
		case 'r':
			if (!ex_parse_ulong(optarg, 1, MAX_READERS, &nreaders))
				return ex_bad_value("--readers", optarg, "1 to 64");
			break;
		case 's':
			if (!ex_parse_ulong(optarg, 1, 1 << 20, &nslots))
				return ex_bad_value("--slots", optarg, "1 to 1048576");
			break;
		case 't':
			if (!ex_parse_seconds(optarg, &seconds))
				return ex_bad_value("--seconds", optarg, "0.001 to 3600");
			break;
		case 'w':
			if (!ex_parse_ulong(optarg, 0, 1000000, &window))
				return ex_bad_value("--window", optarg, "0 to 1000000");
			break;
		case 'h':
			usage(stdout);
			return 0;
		case ':':
			fprintf(stderr, "slab: option '%s' needs a value (see slab --help)\n",
				argv[optind - 1]);
			return 2;
		default:
			fprintf(stderr, "slab: unknown option '%s' (see slab --help)\n",
				argv[optind - 1]);
			return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "slab: unexpected argument '%s' (see slab --help)\n", argv[optind]);
		return 2;
	}

	ret = uspf_create(&cache.u, &cfg);
	if (ret) {
		fprintf(stderr, "uspf_create: %s\n", strerror(-ret));
		return 1;
	}
	slots = calloc(nslots, sizeof(*slots));
	if (!slots) {
		fprintf(stderr, "slab: out of memory\n");
		return 1;
	}
	for (i = 0; i < nslots; i++) {
		slots[i] = obj_new(i);
		if (!slots[i]) {
			fprintf(stderr, "slab: cache_grow: %s\n", strerror(-cache.error));
			return 1;
		}
	}
	printf("slab: %s cache of %zu-byte objects, %lu slots, %lu readers (%s), 1 writer, %g s, policy %s\n",
	       cache.typesafe_by_rcu ? "type-safe-by-RCU" : "free-after-grace-period",
	       sizeof(struct obj), nslots, nreaders,
	       revalidate ? "revalidating" : "not revalidating", seconds,
	       uspf_policy_name(cfg.policy));

	for (i = 0; i < nreaders; i++) {
		readers[i].seed = 0x9e3779b97f4a7c15ULL * (i + 1);
		ret = pthread_create(&readers[i].thread, NULL, reader_thread, &readers[i]);
		if (ret) {
			fprintf(stderr, "pthread_create: %s\n", strerror(ret));
			return 1;
		}
	}
	ret = pthread_create(&writer, NULL, writer_thread, NULL);
	if (ret) {
		fprintf(stderr, "pthread_create: %s\n", strerror(ret));
		return 1;
	}
	ts.tv_sec = (time_t)seconds;
	ts.tv_nsec = (long)((seconds - (double)ts.tv_sec) * 1e9);
	nanosleep(&ts, NULL);
	atomic_store(&stop, true);
	pthread_join(writer, NULL);
	for (i = 0; i < nreaders; i++) {
		pthread_join(readers[i].thread, NULL);
		sum.lookups += readers[i].lookups;
		sum.freed += readers[i].freed;
		sum.recycled += readers[i].recycled;
		sum.wrong += readers[i].wrong;
		sum.bad += readers[i].bad;
	}
	/* call_rcu callbacks touch the slabs: let them all run before the slabs go. */
	rcu_barrier();
	if (cache.error) {
		fprintf(stderr, "slab: cache_grow: %s\n", strerror(-cache.error));
		sum.bad++;
	}

	printf("writer:  %lu objects replaced; slabs: %lu of %lu KiB\n",
	       replaced, cache.slabs, SLAB_SIZE >> 10);
	printf("readers: %lu lookups; retried %lu times on a freed object, %lu times on a recycled one\n",
	       sum.lookups, sum.freed, sum.recycled);
	if (!revalidate)
		printf("readers: %lu times used an object recycled for another key (found by checking the key afterwards)\n",
		       sum.wrong);
	ex_report(cache.u);
	uspf_destroy(cache.u);
	free(slots);

	if (sum.bad) {
		printf("slab: FAIL: %lu objects inconsistent with their key\n", sum.bad);
		return 1;
	}
	if (revalidate && sum.wrong) {
		printf("slab: FAIL: %lu wrong objects despite revalidation\n", sum.wrong);
		return 1;
	}
	if (!cache.typesafe_by_rcu && sum.recycled) {
		printf("slab: FAIL: %lu objects recycled within a grace period\n", sum.recycled);
		return 1;
	}
	printf("slab: OK\n");
	return 0;
}
