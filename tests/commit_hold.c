/* SPDX-License-Identifier: MIT */
/*
 * commit_hold.c - how long the ioctl a fault's commit makes would hold
 * its PTL: UFFDIO_COPY (allocate, copy, install: what uspf uses) against
 * UFFDIO_MOVE of a page filled beforehand (the kernel's order:
 * do_anonymous_page() allocates and clears before it takes the PTL, which
 * it holds for the PTE store alone).  Each installs into missing pages of
 * a registered anonymous range, one page per call, timed per call; other
 * threads of the process can be kept running (--threads), since MOVE
 * flushes the source's TLB entry on every CPU the mm runs on.
 *
 *   tests/commit_hold [--threads N] [--pages N]
 *
 * BENCHMARKS.md, "The commit's PTL hold".  Not a test: a measurement
 * kept in the tree so that the figures there can be made again.
 */

#include <errno.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

/* Linux 6.8; Debian 12's headers are 6.1's. */
#ifndef UFFDIO_MOVE
#define UFFD_FEATURE_MOVE (1ull << 16)
struct uffdio_move {
	uint64_t dst, src, len, mode;
	int64_t move;
};
#define UFFDIO_MOVE _IOWR(UFFDIO, 0x05, struct uffdio_move)
#endif

static atomic_bool stop;

static uint64_t now_ns(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000000000ull + (uint64_t)t.tv_nsec;
}

static void *busy(void *arg)
{
	(void)arg;
	while (!atomic_load_explicit(&stop, memory_order_relaxed))
		;
	return NULL;
}

static char *map_registered(int fd, size_t len)
{
	char *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	struct uffdio_register r = {
		.range = { .start = (uintptr_t)p, .len = len },
		.mode = UFFDIO_REGISTER_MODE_MISSING,
	};

	if (p == MAP_FAILED || ioctl(fd, UFFDIO_REGISTER, &r)) {
		perror("commit_hold: mmap/UFFDIO_REGISTER");
		exit(1);
	}
	return p;
}

static long arg_long(const char *s, const char *what, long lo, long hi)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || end == s || *end || v < lo || v > hi) {
		fprintf(stderr, "commit_hold: %s '%s': want an integer %ld..%ld\n", what, s, lo, hi);
		exit(2);
	}
	return v;
}

int main(int argc, char **argv)
{
	long threads = 1, pages = 20000, i, ps = sysconf(_SC_PAGESIZE);
	uint64_t copy_ns = 0, fill_ns = 0, move_ns = 0, t0;
	struct uffdio_api api = { .api = UFFD_API, .features = UFFD_FEATURE_MOVE };
	pthread_t t[64];
	bool move = true;
	char *a, *b, *src;
	int fd;

	for (i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--threads") && i + 1 < argc)
			threads = arg_long(argv[++i], "--threads", 1, 64);
		else if (!strcmp(argv[i], "--pages") && i + 1 < argc)
			pages = arg_long(argv[++i], "--pages", 1, 1 << 20);
		else {
			fprintf(stderr, "usage: commit_hold [--threads 1..64] [--pages 1..1048576]\n");
			return 2;
		}
	}
	fd = (int)syscall(SYS_userfaultfd, O_CLOEXEC);
	if (fd < 0) {
		perror("commit_hold: userfaultfd");
		return 77;
	}
	if (ioctl(fd, UFFDIO_API, &api)) {
		/* No UFFD_FEATURE_MOVE: the copy alone. */
		close(fd);
		fd = (int)syscall(SYS_userfaultfd, O_CLOEXEC);
		api.features = 0;
		if (fd < 0 || ioctl(fd, UFFDIO_API, &api)) {
			perror("commit_hold: UFFDIO_API");
			return 1;
		}
		move = false;
	}
	for (i = 1; i < threads; i++)
		pthread_create(&t[i], NULL, busy, NULL);
	a = map_registered(fd, (size_t)pages * ps);
	b = map_registered(fd, (size_t)pages * ps);
	src = mmap(NULL, ps, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	madvise(src, ps, MADV_NOHUGEPAGE);
	memset(src, 1, ps);
	for (i = 0; i < pages; i++) {
		struct uffdio_copy c = { .dst = (uintptr_t)a + i * ps, .src = (uintptr_t)src, .len = ps };

		t0 = now_ns();
		if (ioctl(fd, UFFDIO_COPY, &c)) {
			perror("commit_hold: UFFDIO_COPY");
			return 1;
		}
		copy_ns += now_ns() - t0;
	}
	for (i = 0; move && i < pages; i++) {
		struct uffdio_move m = { .dst = (uintptr_t)b + i * ps, .src = (uintptr_t)src, .len = ps };

		/* The fill: a native fault allocates and clears, the memset fills. */
		t0 = now_ns();
		memset(src, 2, ps);
		fill_ns += now_ns() - t0;
		t0 = now_ns();
		if (ioctl(fd, UFFDIO_MOVE, &m)) {
			perror("commit_hold: UFFDIO_MOVE");
			return 1;
		}
		move_ns += now_ns() - t0;
	}
	atomic_store(&stop, true);
	for (i = 1; i < threads; i++)
		pthread_join(t[i], NULL);
	if (a[ps * (pages - 1)] != 1 || (move && b[ps * (pages - 1)] != 2)) {
		fprintf(stderr, "commit_hold: wrong bytes installed\n");
		return 1;
	}
	printf("threads %ld, %ld pages: UFFDIO_COPY %.0f ns/page", threads, pages,
	       (double)copy_ns / pages);
	if (move)
		printf("; fill before (native fault + memset) %.0f ns, UFFDIO_MOVE %.0f ns/page",
		       (double)fill_ns / pages, (double)move_ns / pages);
	else
		printf("; UFFDIO_MOVE not offered by this kernel");
	printf("\n");
	return 0;
}
