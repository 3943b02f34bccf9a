/* SPDX-License-Identifier: MIT */
/*
 * pager.c - a user-space pager: a file mapped through uspf's file backing.
 *
 * Shows: the case Umap users know - a file's pages brought in on demand by
 * user space.  The mapping has the file backing (USPF_BACKING_FILE): the
 * first touch of each page faults, and a handler thread fills the page with
 * pread(2) from the file (past the end of the file: zeroes).  Reader
 * threads touch random pages and compare every byte with what pread(2)
 * returns for the same page.  Between rounds the pager evicts every page
 * with uspf_madvise(MADV_DONTNEED), as reclaim drops clean file pages, and
 * the next round reads them from the file again.  Every policy ends up
 * under the mmap lock here: the speculative path and the per-VMA locks
 * serve anonymous VMAs only, as in their first versions (the kernel's
 * per-VMA locks took file faults from 6.5 on), and the counters say so:
 * spf_abort_not_anon then mmap_lock_fallback, or vma_lock_abort.
 *
 * Without --file it creates a temporary file of --size bytes (not a
 * multiple of the page size, so the last page ends in zeroes) with known
 * contents, and removes it; with --file PATH it maps that file read-only
 * and never writes it.
 *
 * Build: make examples/pager (in the tree), or against an installed uspf:
 *        cc -pthread -o pager pager.c helpers.c $(pkg-config --cflags --libs uspf)
 * Run:   ./examples/pager [--policy NAME] [--file PATH | --size SIZE]
 *                         [--threads N] [--reads N] [--rounds N] [--seed N]
 * e.g.   ./examples/pager --policy pervma-rwsem --file /usr/bin/gcc
 *
 * Exit status: 0 if every byte matched the file, 1 on a wrong byte or a
 * failed call, 2 on a bad flag or a file that cannot be mapped.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uspf.h>

#include "helpers.h"

#define PAGE_SIZE	4096UL
#define MAX_THREADS	64

struct reader {
	pthread_t thread;
	uint64_t seed;
	unsigned long wrong;		/* pages that did not match the file */
	int error;			/* a pread(2) that failed: errno */
};

static int fd = -1;
static const unsigned char *map;
static size_t npages;
static unsigned long reads_per_thread;

/* The page as the file has it: pread(2), zeroes past the end. */
static int file_page(size_t pg, unsigned char *buf)
{
	size_t done = 0;
	ssize_t n;

	while (done < PAGE_SIZE) {
		n = pread(fd, buf + done, PAGE_SIZE - done, pg * PAGE_SIZE + done);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			break;
		done += n;
	}
	memset(buf + done, 0, PAGE_SIZE - done);
	return 0;
}

/* Touch random pages of the mapping (each first touch a fault); compare with the file. */
static void *reader_thread(void *arg)
{
	unsigned char want[PAGE_SIZE];
	struct reader *r = arg;
	unsigned long i;
	size_t pg;
	int ret;

	for (i = 0; i < reads_per_thread; i++) {
		pg = ex_next_random(&r->seed) % npages;
		ret = file_page(pg, want);
		if (ret) {
			r->error = -ret;
			break;
		}
		if (memcmp(map + pg * PAGE_SIZE, want, PAGE_SIZE)) {
			if (!r->wrong)
				fprintf(stderr, "pager: page %zu differs from the file\n", pg);
			r->wrong++;
		}
	}
	return NULL;
}

/* A file of `size` bytes with known contents; removed at once, kept open. */
static int make_temp_file(unsigned long long size)
{
	const char *dir = getenv("TMPDIR");
	unsigned char buf[65536];
	unsigned long long off = 0;
	char path[4096];
	size_t i, len;
	ssize_t n;
	int tfd;

	snprintf(path, sizeof(path), "%s/uspf-pager.XXXXXX", dir && *dir ? dir : "/tmp");
	tfd = mkstemp(path);
	if (tfd < 0)
		return -errno;
	unlink(path);
	while (off < size) {
		len = size - off < sizeof(buf) ? size - off : sizeof(buf);
		for (i = 0; i < len; i++)
			buf[i] = (unsigned char)(((off + i) * 0x9e3779b97f4a7c15ULL) >> 56);
		n = write(tfd, buf, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			n = n ? -errno : -EIO;
			close(tfd);
			return n;
		}
		off += n;
	}
	return tfd;
}

static void usage(FILE *f)
{
	fprintf(f, "usage: pager [--policy NAME] [--file PATH | --size SIZE] [--threads N] [--reads N]\n"
		   "             [--rounds N] [--seed N]\n");
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "policy", required_argument, NULL, 'p' },
		{ "file", required_argument, NULL, 'f' },
		{ "size", required_argument, NULL, 's' },
		{ "threads", required_argument, NULL, 't' },
		{ "reads", required_argument, NULL, 'r' },
		{ "rounds", required_argument, NULL, 'R' },
		{ "seed", required_argument, NULL, 'S' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	unsigned long long size = (4 << 20) + 1000, nthreads = 2, reads = 2000, rounds = 2, seed = 1;
	struct reader readers[MAX_THREADS] = { 0 };
	struct uspf_backing backing = { .kind = USPF_BACKING_FILE };
	unsigned long wrong = 0, round, i;
	struct uspf_config cfg;
	const char *file = NULL;
	struct stat stbuf;
	struct uspf *u;
	uint64_t before;
	int opt, ret;

	uspf_config_init(&cfg);
	ex_prog = "pager";
	opterr = 0;
	while ((opt = getopt_long(argc, argv, ":", opts, NULL)) != -1) {
		switch (opt) {
		case 'p':
			if (uspf_policy_from_name(optarg, &cfg.policy))
				return ex_bad_policy(optarg, false);
			break;
		case 'f':
			file = optarg;
			break;
		case 's':
			if (!ex_parse_size(optarg, 1, 1ULL << 30, &size))
				return ex_bad_value("--size", optarg, "1 to 1G bytes");
			break;
		case 't':
			if (!ex_parse_size(optarg, 1, MAX_THREADS, &nthreads))
				return ex_bad_value("--threads", optarg, "1 to 64");
			break;
		case 'r':
			if (!ex_parse_size(optarg, 1, 100000000, &reads))
				return ex_bad_value("--reads", optarg, "1 to 100000000");
			break;
		case 'R':
			if (!ex_parse_size(optarg, 1, 1000, &rounds))
				return ex_bad_value("--rounds", optarg, "1 to 1000");
			break;
		case 'S':
			if (!ex_parse_size(optarg, 0, UINT32_MAX, &seed))
				return ex_bad_value("--seed", optarg, "0 to 4294967295");
			break;
		case 'h':
			usage(stdout);
			return 0;
		case ':':
			fprintf(stderr, "pager: option '%s' needs a value (see pager --help)\n",
				argv[optind - 1]);
			return 2;
		default:
			fprintf(stderr, "pager: unknown option '%s' (see pager --help)\n",
				argv[optind - 1]);
			return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "pager: unexpected argument '%s' (see pager --help)\n", argv[optind]);
		return 2;
	}

	if (file) {
		fd = open(file, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			return ex_bad_value("--file", file, "a readable file");
		if (fstat(fd, &stbuf) || !S_ISREG(stbuf.st_mode) || !stbuf.st_size)
			return ex_bad_value("--file", file, "a regular file that is not empty");
		size = stbuf.st_size;
	} else {
		fd = make_temp_file(size);
		if (fd < 0) {
			fprintf(stderr, "pager: temporary file: %s\n", strerror(-fd));
			return 1;
		}
	}
	npages = (size + PAGE_SIZE - 1) / PAGE_SIZE;
	reads_per_thread = (reads + nthreads - 1) / nthreads;

	ret = uspf_create(&u, &cfg);
	if (ret) {
		fprintf(stderr, "uspf_create: %s\n", strerror(-ret));
		return 1;
	}
	backing.file.fd = fd;
	backing.file.offset = 0;
	ret = uspf_mmap(u, NULL, npages * PAGE_SIZE, PROT_READ, MAP_PRIVATE, &backing,
			(void **)&map);
	if (ret) {
		fprintf(stderr, "uspf_mmap: %s\n", strerror(-ret));
		uspf_destroy(u);
		return 1;
	}
	printf("pager: %s, %llu bytes (%zu pages) mapped with the file backing; %llu threads, %llu random page reads per round, policy %s\n",
	       file ? file : "temporary file", size, npages, nthreads, reads,
	       uspf_policy_name(cfg.policy));

	for (round = 1; round <= rounds; round++) {
		/* Evict: drop every page, as reclaim drops clean file pages. */
		if (round > 1) {
			ret = uspf_madvise(u, (void *)map, npages * PAGE_SIZE, MADV_DONTNEED);
			if (ret) {
				fprintf(stderr, "uspf_madvise: %s\n", strerror(-ret));
				wrong++;
				break;
			}
			printf("evict: MADV_DONTNEED on all %zu pages\n", npages);
		}
		before = ex_faults(u);
		for (i = 0; i < nthreads; i++) {
			readers[i].seed = 0x9e3779b97f4a7c15ULL * (i + 1) + seed + round;
			ret = pthread_create(&readers[i].thread, NULL, reader_thread, &readers[i]);
			if (ret) {
				fprintf(stderr, "pthread_create: %s\n", strerror(ret));
				nthreads = i;
				wrong++;
				break;
			}
		}
		for (i = 0; i < nthreads; i++) {
			pthread_join(readers[i].thread, NULL);
			wrong += readers[i].wrong;
			if (readers[i].error) {
				fprintf(stderr, "pread: %s\n", strerror(readers[i].error));
				wrong++;
			}
			readers[i].wrong = 0;
			readers[i].error = 0;
		}
		printf("round %lu: %llu pages read and compared with the file; %llu faults\n", round,
		       reads_per_thread * nthreads, (unsigned long long)(ex_faults(u) - before));
	}

	ex_report(u);
	uspf_destroy(u);
	close(fd);
	if (wrong) {
		printf("pager: FAIL: %lu pages wrong\n", wrong);
		return 1;
	}
	printf("pager: OK\n");
	return 0;
}
