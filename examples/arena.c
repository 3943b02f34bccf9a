/* SPDX-License-Identifier: MIT */
/*
 * arena.c - a bump (arena) allocator on one uspf region with the pattern
 * backing.
 *
 * Shows: memory whose first contents come from the backing, not from zero.
 * The region is mapped with USPF_BACKING_PATTERN, so every page holds
 * uspf_pattern_fill(generation, page offset) the first time it is touched.
 * Each round carves the region into allocations of random sizes, writes a
 * tag into each and reads it back, then checks that every byte no
 * allocation wrote (the alignment gaps and the rest of the region) still
 * holds the pattern.  Between rounds the arena is reset the way a real
 * arena gives its memory back: uspf_madvise(MADV_DONTNEED) drops every
 * page, and the next round's touches fault again and see the pattern
 * again, not the last round's data.
 *
 * Build: make examples/arena (in the tree), or against an installed uspf:
 *        cc -o arena arena.c helpers.c $(pkg-config --cflags --libs uspf)
 * Run:   ./examples/arena [--policy NAME] [--size SIZE] [--rounds N]
 *                         [--max-alloc SIZE] [--seed N]
 * e.g.   ./examples/arena --policy pervma-refcnt --size 8M --rounds 3
 *
 * Exit status: 0 if every byte was right, 1 on a wrong byte or a failed
 * call, 2 on a bad flag.
 */
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include <uspf.h>

#include "helpers.h"

#define PAGE_SIZE	4096UL
#define ALIGN		16UL
#define GENERATION	42

static unsigned long wrong;	/* wrong bytes or failed calls seen */

static void report_wrong(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fprintf(stderr, "arena: ");
	vfprintf(stderr, fmt, ap);
	fprintf(stderr, "\n");
	va_end(ap);
	wrong++;
}

struct arena {
	char *base;
	size_t size;
	size_t used;
};

/* One allocation, remembered so that it can be checked. */
struct alloc {
	size_t off;
	size_t len;
	unsigned char tag;
};

static void *arena_alloc(struct arena *a, size_t len)
{
	size_t off = (a->used + ALIGN - 1) & ~(ALIGN - 1);

	if (off > a->size || len > a->size - off)
		return NULL;
	a->used = off + len;
	return a->base + off;
}

/* Give every page back: the next touch of each faults and sees the pattern. */
static int arena_reset(struct uspf *u, struct arena *a)
{
	a->used = 0;
	return uspf_madvise(u, a->base, a->size, MADV_DONTNEED);
}

/* Do the bytes [from, to) of the region hold the backing's pattern? */
static bool pattern_intact(const struct arena *a, size_t from, size_t to)
{
	static unsigned char want[PAGE_SIZE];
	size_t pg, lo, hi;

	for (pg = from / PAGE_SIZE; pg * PAGE_SIZE < to; pg++) {
		lo = from > pg * PAGE_SIZE ? from - pg * PAGE_SIZE : 0;
		hi = to < (pg + 1) * PAGE_SIZE ? to - pg * PAGE_SIZE : PAGE_SIZE;
		if (lo == 0 && hi == PAGE_SIZE) {
			if (!uspf_pattern_check(GENERATION, pg, a->base + pg * PAGE_SIZE))
				return false;
			continue;
		}
		uspf_pattern_fill(GENERATION, pg, want);
		if (memcmp(a->base + pg * PAGE_SIZE + lo, want + lo, hi - lo))
			return false;
	}
	return true;
}

static bool tag_intact(const struct arena *a, const struct alloc *al)
{
	size_t i;

	for (i = 0; i < al->len; i++)
		if ((unsigned char)a->base[al->off + i] != al->tag)
			return false;
	return true;
}

static void usage(FILE *f)
{
	fprintf(f, "usage: arena [--policy NAME] [--size SIZE] [--rounds N] [--max-alloc SIZE] [--seed N]\n");
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "policy", required_argument, NULL, 'p' },
		{ "size", required_argument, NULL, 's' },
		{ "rounds", required_argument, NULL, 'r' },
		{ "max-alloc", required_argument, NULL, 'm' },
		{ "seed", required_argument, NULL, 'S' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	unsigned long long size = 4 << 20, rounds = 3, max_alloc = 8192, seed = 1;
	struct uspf_backing backing = {
		.kind = USPF_BACKING_PATTERN,
		.pattern.generation = GENERATION,
	};
	struct uspf_config cfg;
	struct arena a = { 0 };
	struct alloc *allocs;
	struct uspf *u;
	size_t nallocs, i, cursor, round;
	uint64_t before;
	int opt, ret;

	uspf_config_init(&cfg);
	ex_prog = "arena";
	opterr = 0;
	while ((opt = getopt_long(argc, argv, ":", opts, NULL)) != -1) {
		switch (opt) {
		case 'p':
			if (uspf_policy_from_name(optarg, &cfg.policy))
				return ex_bad_policy(optarg, false);
			break;
		case 's':
			if (!ex_parse_size(optarg, PAGE_SIZE, 1ULL << 30, &size) || size % PAGE_SIZE)
				return ex_bad_value("--size", optarg, "a multiple of 4K from 4K to 1G");
			break;
		case 'r':
			if (!ex_parse_size(optarg, 1, 1000, &rounds))
				return ex_bad_value("--rounds", optarg, "1 to 1000");
			break;
		case 'm':
			if (!ex_parse_size(optarg, 1, 1 << 20, &max_alloc))
				return ex_bad_value("--max-alloc", optarg, "1 to 1M");
			break;
		case 'S':
			if (!ex_parse_size(optarg, 0, UINT32_MAX, &seed))
				return ex_bad_value("--seed", optarg, "0 to 4294967295");
			break;
		case 'h':
			usage(stdout);
			return 0;
		case ':':
			fprintf(stderr, "arena: option '%s' needs a value (see arena --help)\n",
				argv[optind - 1]);
			return 2;
		default:
			fprintf(stderr, "arena: unknown option '%s' (see arena --help)\n",
				argv[optind - 1]);
			return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "arena: unexpected argument '%s' (see arena --help)\n", argv[optind]);
		return 2;
	}

	/* At most one allocation per 16 bytes. */
	allocs = calloc(size / ALIGN, sizeof(*allocs));
	if (!allocs) {
		fprintf(stderr, "arena: out of memory\n");
		return 1;
	}
	ret = uspf_create(&u, &cfg);
	if (ret) {
		fprintf(stderr, "uspf_create: %s\n", strerror(-ret));
		return 1;
	}
	ret = uspf_mmap(u, NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
			&backing, (void **)&a.base);
	if (ret) {
		fprintf(stderr, "uspf_mmap: %s\n", strerror(-ret));
		uspf_destroy(u);
		return 1;
	}
	a.size = size;
	srandom(seed);
	printf("arena: %llu KiB region (%zu pages), pattern generation %d, policy %s\n",
	       size >> 10, a.size / PAGE_SIZE, GENERATION, uspf_policy_name(cfg.policy));

	for (round = 1; round <= rounds; round++) {
		/* Reset: MADV_DONTNEED drops the pages; this round faults them again. */
		if (round > 1) {
			ret = arena_reset(u, &a);
			if (ret) {
				report_wrong("uspf_madvise: %s", strerror(-ret));
				break;
			}
			printf("reset: MADV_DONTNEED on all %zu pages\n", a.size / PAGE_SIZE);
		}
		before = ex_faults(u);

		/* Carve: allocations of random sizes until the arena is three-quarters full. */
		for (nallocs = 0; a.used < a.size / 4 * 3; nallocs++) {
			struct alloc *al = &allocs[nallocs];
			char *p;

			al->len = 1 + random() % max_alloc;
			al->tag = 1 + (round * 131 + nallocs) % 255;
			p = arena_alloc(&a, al->len);
			if (!p)
				break;
			al->off = p - a.base;
			memset(p, al->tag, al->len);
		}

		/* Our own writes read back; everything else still holds the pattern. */
		for (i = 0, cursor = 0; i < nallocs; i++) {
			if (!pattern_intact(&a, cursor, allocs[i].off))
				report_wrong("round %zu: pattern wrong before allocation %zu at offset %zu",
					     round, i, allocs[i].off);
			if (!tag_intact(&a, &allocs[i]))
				report_wrong("round %zu: allocation %zu at offset %zu does not read back",
					     round, i, allocs[i].off);
			cursor = allocs[i].off + allocs[i].len;
		}
		if (!pattern_intact(&a, cursor, a.size))
			report_wrong("round %zu: pattern wrong after the last allocation", round);

		printf("round %zu: %zu allocations, %zu KiB used, every byte checked; %llu faults\n",
		       round, nallocs, a.used >> 10, (unsigned long long)(ex_faults(u) - before));
		if (round > 1 && ex_faults(u) == before)
			report_wrong("round %zu: no page faulted after the reset", round);

	}

	ex_report(u);
	uspf_destroy(u);
	free(allocs);
	if (wrong) {
		printf("arena: FAIL: %lu wrong\n", wrong);
		return 1;
	}
	printf("arena: OK\n");
	return 0;
}
