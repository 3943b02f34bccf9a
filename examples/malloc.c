/* SPDX-License-Identifier: MIT */
/*
 * malloc.c - a size-class malloc on uspf memory, and will-it-scale's
 * malloc1 churn run under every fault-path policy.
 *
 * Shows: an allocator that gives memory back the two ways real ones do,
 * and what that does to the fault path.  Small requests (up to 32 KiB)
 * come from spans of 64 KiB, one size class per span; when a span's last
 * object is freed its pages are returned with uspf_madvise(MADV_DONTNEED)
 * and fault again on reuse.  Large requests get a mapping of their own
 * (uspf_mmap) and give it back with uspf_munmap on free.  The driver runs
 * churn threads that allocate, fill and free large blocks in a loop (the
 * mmap/munmap churn of will-it-scale's malloc1: every map and unmap takes
 * the model's mmap lock for writing) beside faulting threads that keep a
 * ring of small allocations and replace them at random; every allocation
 * is filled with a tag and checked before it is freed.
 *
 * With --policy all each policy runs in turn, with a fresh runtime, and
 * prints one line: the allocator's work (small allocations, large blocks,
 * spans given back), then the faults: how many completed without the mm
 * lock (speculatively or under a per-VMA lock), how many under it, how
 * many of those fell back to it after a writer changed something under
 * them (spf_abort_* then mmap_lock_fallback, or vma_lock_abort), how many
 * went to it at once because spf backed off during an abort storm, and
 * the handling-time p50/p99.  With one policy, every counter follows.
 *
 * Build: make examples/malloc (in the tree), or against an installed uspf:
 *        cc -pthread -o malloc malloc.c helpers.c $(pkg-config --cflags --libs uspf)
 * Run:   ./examples/malloc [--policy NAME|all] [--threads N] [--churn-threads N]
 *                          [--large SIZE] [--live N] [--seconds S]
 * e.g.   ./examples/malloc --policy all --seconds 1
 *
 * Exit status: 0 if every allocation read back its tag, 1 on a wrong word
 * or a failed call, 2 on a bad flag.
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
#include <uspf.h>

#include "helpers.h"

#define PAGE_SIZE	4096UL
#define SPAN_SIZE	(64 * 1024UL)
#define NR_CLASSES	11			/* 32 bytes << 0..10: 32 B to 32 KiB */
#define MAX_SMALL	(32UL << (NR_CLASSES - 1))
#define MAX_THREADS	64

/*
 * A span: SPAN_SIZE bytes of uspf memory cut into objects of one class.
 * The bookkeeping lives in ordinary memory, never in the span: MADV_DONTNEED
 * drops the span's pages, and anything kept in them would read zero.
 */
struct span {
	struct span *next;
	struct size_class *cls;
	char *base;
	unsigned int nobj;
	unsigned int nfree;
	unsigned int free_idx[];	/* a stack of free object numbers */
};

struct size_class {
	pthread_mutex_t lock;
	size_t size;			/* object size, header included */
	struct span *spans;
};

/* Every block starts with this header; the caller gets what follows. */
struct block {
	struct span *span;		/* NULL: a large block, a mapping of its own */
	size_t len;			/* large: the mapping's length */
};

struct heap {
	struct uspf *u;
	struct size_class cls[NR_CLASSES];
	atomic_ulong dontneed;		/* spans emptied and given back */
	atomic_ulong spans;
	atomic_int error;		/* the first failed uspf call */
};

static void heap_init(struct heap *h, struct uspf *u)
{
	unsigned int c;

	memset(h, 0, sizeof(*h));
	h->u = u;
	for (c = 0; c < NR_CLASSES; c++) {
		pthread_mutex_init(&h->cls[c].lock, NULL);
		h->cls[c].size = 32UL << c;
	}
}

/* Free the bookkeeping; uspf_destroy() unmaps what is still mapped. */
static void heap_fini(struct heap *h)
{
	struct span *s, *next;
	unsigned int c;

	for (c = 0; c < NR_CLASSES; c++)
		for (s = h->cls[c].spans; s; s = next) {
			next = s->next;
			free(s);
		}
}

static void heap_error(struct heap *h, int ret)
{
	int none = 0;

	atomic_compare_exchange_strong(&h->error, &none, ret);
}

static struct span *span_new(struct heap *h, struct size_class *cls)
{
	unsigned int nobj = SPAN_SIZE / cls->size, i;
	struct span *s;
	int ret;

	s = malloc(sizeof(*s) + nobj * sizeof(s->free_idx[0]));
	if (!s)
		return NULL;
	ret = uspf_mmap(h->u, NULL, SPAN_SIZE, PROT_READ | PROT_WRITE,
			MAP_PRIVATE | MAP_ANONYMOUS, NULL, (void **)&s->base);
	if (ret) {
		heap_error(h, ret);
		free(s);
		return NULL;
	}
	s->cls = cls;
	s->nobj = s->nfree = nobj;
	for (i = 0; i < nobj; i++)
		s->free_idx[i] = nobj - 1 - i;
	s->next = cls->spans;
	cls->spans = s;
	atomic_fetch_add(&h->spans, 1);
	return s;
}

static void *sc_malloc(struct heap *h, size_t n)
{
	size_t total = n + sizeof(struct block);
	struct size_class *cls;
	struct block *b;
	struct span *s;
	unsigned int c;
	int ret;

	if (total > MAX_SMALL) {
		total = (total + PAGE_SIZE - 1) & ~(PAGE_SIZE - 1);
		ret = uspf_mmap(h->u, NULL, total, PROT_READ | PROT_WRITE,
				MAP_PRIVATE | MAP_ANONYMOUS, NULL, (void **)&b);
		if (ret) {
			heap_error(h, ret);
			return NULL;
		}
		b->span = NULL;
		b->len = total;
		return b + 1;
	}
	for (c = 0; (32UL << c) < total; c++)
		;
	cls = &h->cls[c];
	pthread_mutex_lock(&cls->lock);
	for (s = cls->spans; s && !s->nfree; s = s->next)
		;
	if (!s)
		s = span_new(h, cls);
	if (!s) {
		pthread_mutex_unlock(&cls->lock);
		return NULL;
	}
	b = (struct block *)(s->base + s->free_idx[--s->nfree] * cls->size);
	pthread_mutex_unlock(&cls->lock);
	b->span = s;		/* the first touch of a fresh or dropped page: a fault */
	b->len = cls->size;
	return b + 1;
}

static void sc_free(struct heap *h, void *p)
{
	struct block *b = (struct block *)p - 1;
	struct span *s = b->span;
	struct size_class *cls;
	int ret;

	if (!s) {
		ret = uspf_munmap(h->u, b, b->len);
		if (ret)
			heap_error(h, ret);
		return;
	}
	cls = s->cls;
	pthread_mutex_lock(&cls->lock);
	s->free_idx[s->nfree++] = ((char *)b - s->base) / cls->size;
	if (s->nfree == s->nobj) {
		/* Empty: give the pages back (a real allocator would wait a little). */
		ret = uspf_madvise(h->u, s->base, SPAN_SIZE, MADV_DONTNEED);
		if (ret)
			heap_error(h, ret);
		atomic_fetch_add(&h->dontneed, 1);
	}
	pthread_mutex_unlock(&cls->lock);
}

/* ---- the driver ---- */

struct worker {
	pthread_t thread;
	struct heap *heap;
	unsigned int id;
	uint64_t seed;
	unsigned long allocs;
	unsigned long large;
	unsigned long bad;		/* words that did not read back */
};

static atomic_bool stop;
static unsigned long large_size = 256 << 10;
static unsigned long live = 64;

static void fill(uint64_t *p, size_t len, uint64_t tag)
{
	size_t i;

	for (i = 0; i < len / 8; i++)
		p[i] = tag + i;
}

static unsigned long check(const uint64_t *p, size_t len, uint64_t tag)
{
	unsigned long bad = 0;
	size_t i;

	for (i = 0; i < len / 8; i++)
		bad += p[i] != tag + i;
	return bad;
}

/* malloc1: allocate a large block, touch every page, check it, free it. */
static void *churn_thread(void *arg)
{
	struct worker *w = arg;
	uint64_t tag;
	void *p;

	while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
		p = sc_malloc(w->heap, large_size);
		if (!p)
			break;
		tag = (uint64_t)w->id << 48 | w->large << 20;
		fill(p, large_size, tag);
		w->bad += check(p, large_size, tag);
		sc_free(w->heap, p);
		w->large++;
	}
	return NULL;
}

/* Keep `live` small allocations; replace a random one each step. */
static void *fault_thread(void *arg)
{
	struct worker *w = arg;
	struct { uint64_t *p; size_t len; uint64_t tag; } *ring;
	unsigned long i;
	size_t len, max;

	ring = calloc(live, sizeof(*ring));
	if (!ring)
		return NULL;
	while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
		i = ex_next_random(&w->seed) % live;
		if (ring[i].p) {
			w->bad += check(ring[i].p, ring[i].len, ring[i].tag);
			sc_free(w->heap, ring[i].p);
			ring[i].p = NULL;
		}
		/* Sizes spread over the classes: 8 bytes to 32 KiB less the header. */
		max = (32UL << ex_next_random(&w->seed) % NR_CLASSES) - sizeof(struct block);
		len = (8 + ex_next_random(&w->seed) % (max - 7)) & ~7UL;
		ring[i].p = sc_malloc(w->heap, len);
		if (!ring[i].p)
			break;
		ring[i].len = len;
		ring[i].tag = (uint64_t)w->id << 48 | w->allocs << 20;
		fill(ring[i].p, len, ring[i].tag);
		w->allocs++;
	}
	for (i = 0; i < live; i++)
		if (ring[i].p) {
			w->bad += check(ring[i].p, ring[i].len, ring[i].tag);
			sc_free(w->heap, ring[i].p);
		}
	free(ring);
	return NULL;
}

/* Run the churn under one policy; print its line (and with `full`, every counter). */
static int run_policy(enum uspf_policy_id policy, unsigned int nfault, unsigned int nchurn,
		      double seconds, bool full)
{
	struct worker w[MAX_THREADS] = { 0 };
	unsigned long allocs = 0, large = 0, bad = 0;
	const uint64_t *cnt;
	struct uspf_config cfg;
	struct uspf_stats st;
	struct timespec ts;
	struct heap heap;
	struct uspf *u;
	unsigned int i, n = nfault + nchurn;
	int ret;

	uspf_config_init(&cfg);
	cfg.policy = policy;
	ret = uspf_create(&u, &cfg);
	if (ret) {
		fprintf(stderr, "uspf_create: %s\n", strerror(-ret));
		return 1;
	}
	heap_init(&heap, u);
	atomic_store(&stop, false);
	for (i = 0; i < n; i++) {
		w[i].heap = &heap;
		w[i].id = i + 1;
		w[i].seed = 0x9e3779b97f4a7c15ULL * (i + 1);
		ret = pthread_create(&w[i].thread, NULL, i < nchurn ? churn_thread : fault_thread,
				     &w[i]);
		if (ret) {
			fprintf(stderr, "pthread_create: %s\n", strerror(ret));
			atomic_store(&stop, true);
			n = i;
			bad++;
			break;
		}
	}
	ts.tv_sec = (time_t)seconds;
	ts.tv_nsec = (long)((seconds - (double)ts.tv_sec) * 1e9);
	nanosleep(&ts, NULL);
	atomic_store(&stop, true);
	for (i = 0; i < n; i++) {
		pthread_join(w[i].thread, NULL);
		allocs += w[i].allocs;
		large += w[i].large;
		bad += w[i].bad;
	}
	if (heap.error) {
		fprintf(stderr, "malloc: %s: a uspf call failed: %s\n", uspf_policy_name(policy),
			strerror(-heap.error));
		bad++;
	}
	ret = ex_settled_stats(u, &st);
	if (ret) {
		fprintf(stderr, "uspf_stats: %s\n", strerror(-ret));
		bad++;
	}
	cnt = st.counters;
	printf("%-14s %9lu %7lu %8lu %9llu %9llu %9llu %8llu %7llu %7llu %8llu %5lu\n",
	       uspf_policy_name(policy), allocs, large, atomic_load(&heap.dontneed),
	       (unsigned long long)cnt[USPF_C_FAULTS],
	       (unsigned long long)(cnt[USPF_C_SPF_SUCCESS] + cnt[USPF_C_VMA_LOCK_SUCCESS]),
	       (unsigned long long)cnt[USPF_C_MMAP_LOCK_FAULT],
	       (unsigned long long)(cnt[USPF_C_MMAP_LOCK_FALLBACK] + cnt[USPF_C_VMA_LOCK_ABORT]),
	       (unsigned long long)cnt[USPF_C_SPF_BACKOFF],
	       (unsigned long long)uspf_stats_percentile(&st, 50),
	       (unsigned long long)uspf_stats_percentile(&st, 99), bad);
	if (full)
		ex_print_stats(&st);
	heap_fini(&heap);
	uspf_destroy(u);
	return bad ? 1 : 0;
}

static void usage(FILE *f)
{
	fprintf(f, "usage: malloc [--policy NAME|all] [--threads N] [--churn-threads N] [--large SIZE]\n"
		   "              [--live N] [--seconds S]\n");
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "policy", required_argument, NULL, 'p' },
		{ "threads", required_argument, NULL, 't' },
		{ "churn-threads", required_argument, NULL, 'c' },
		{ "large", required_argument, NULL, 'l' },
		{ "live", required_argument, NULL, 'L' },
		{ "seconds", required_argument, NULL, 's' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	unsigned long nfault = 1, nchurn = 1;
	unsigned long long v;
	enum uspf_policy_id policy = USPF_POLICY_SPF, p;
	bool all = false;
	double seconds = 1;
	int opt, ret = 0;

	ex_prog = "malloc";
	opterr = 0;
	while ((opt = getopt_long(argc, argv, ":", opts, NULL)) != -1) {
		switch (opt) {
		case 'p':
			if (!strcmp(optarg, "all"))
				all = true;
			else if (uspf_policy_from_name(optarg, &policy))
				return ex_bad_policy(optarg, true);
			else
				all = false;
			break;
		case 't':
			if (!ex_parse_size(optarg, 0, MAX_THREADS / 2, &v))
				return ex_bad_value("--threads", optarg, "0 to 32");
			nfault = v;
			break;
		case 'c':
			if (!ex_parse_size(optarg, 0, MAX_THREADS / 2, &v))
				return ex_bad_value("--churn-threads", optarg, "0 to 32");
			nchurn = v;
			break;
		case 'l':
			if (!ex_parse_size(optarg, MAX_SMALL, 1UL << 30, &v) || v % 8)
				return ex_bad_value("--large", optarg,
						    "a multiple of 8 bytes from 32K to 1G");
			large_size = v;
			break;
		case 'L':
			if (!ex_parse_size(optarg, 1, 1 << 20, &v))
				return ex_bad_value("--live", optarg, "1 to 1048576");
			live = v;
			break;
		case 's':
			if (!ex_parse_seconds(optarg, &seconds))
				return ex_bad_value("--seconds", optarg, "0.001 to 3600");
			break;
		case 'h':
			usage(stdout);
			return 0;
		case ':':
			fprintf(stderr, "malloc: option '%s' needs a value (see malloc --help)\n",
				argv[optind - 1]);
			return 2;
		default:
			fprintf(stderr, "malloc: unknown option '%s' (see malloc --help)\n",
				argv[optind - 1]);
			return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "malloc: unexpected argument '%s' (see malloc --help)\n", argv[optind]);
		return 2;
	}
	if (nfault + nchurn == 0)
		return ex_bad_value("--threads", "0", "at least one thread (with --churn-threads)");

	printf("malloc: churn threads %lu (%lu KiB blocks: uspf_mmap, fill, check, uspf_munmap), faulting threads %lu (%lu live allocations of 8 B to 32 KiB), %g s per policy\n",
	       nchurn, large_size >> 10, nfault, live, seconds);
	printf("%-14s %9s %7s %8s %9s %9s %9s %8s %7s %7s %8s %5s\n", "policy", "allocs", "large",
	       "dontneed", "faults", "no-mmlock", "mmap_lock", "fallback", "backoff", "p50 ns",
	       "p99 ns", "wrong");
	for (p = 0; p < USPF_NR_POLICIES; p++)
		if (all || p == policy)
			ret |= run_policy(p, nfault, nchurn, seconds, !all);
	printf(ret ? "malloc: FAIL\n" : "malloc: OK\n");
	return ret;
}
