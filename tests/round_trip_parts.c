/* SPDX-License-Identifier: MIT */
/*
 * round_trip_parts.c - what one userfaultfd round trip is made of, part
 * by part, on this machine: a system call, an empty non-blocking read of
 * a userfaultfd, UFFDIO_COPY and UFFDIO_ZEROPAGE of one page, a wake-up
 * through a pipe (same CPU and across CPUs), a native anonymous fault,
 * and whole round trips (one thread faulting page after page, one
 * handler) with the handler sleeping in poll(2) + read(2), sleeping in a
 * blocking read(2), or spinning on non-blocking reads, on the faulting
 * thread's CPU or another.  Holds /dev/cpu_dma_latency at 0 where it can,
 * as uspf bench does.
 *
 *   tests/round_trip_parts [--pages N]
 *
 * BENCHMARKS.md, "Where the microseconds go".  Not a test: a measurement
 * kept in the tree so that the figures there can be made again.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define PG 4096ul

static long pages = 16384;
static int ncpus;

static uint64_t now_ns(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000000000ull + (uint64_t)t.tv_nsec;
}

static void pin(int cpu)
{
	cpu_set_t s;

	if (cpu < 0)
		return;
	CPU_ZERO(&s);
	CPU_SET(cpu % ncpus, &s);
	sched_setaffinity(0, sizeof(s), &s);
}

static void unpin(void)
{
	cpu_set_t s;
	int i;

	CPU_ZERO(&s);
	for (i = 0; i < ncpus; i++)
		CPU_SET(i, &s);
	sched_setaffinity(0, sizeof(s), &s);
}

static int uffd_new(bool nonblock)
{
	int fd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | (nonblock ? O_NONBLOCK : 0));
	struct uffdio_api api = { .api = UFFD_API };

	if (fd < 0 || ioctl(fd, UFFDIO_API, &api)) {
		perror("round_trip_parts: userfaultfd");
		exit(77);
	}
	return fd;
}

static char *map_registered(int fd, size_t len)
{
	char *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	struct uffdio_register r = {
		.range = { .start = (uintptr_t)p, .len = len },
		.mode = UFFDIO_REGISTER_MODE_MISSING,
	};

	if (p == MAP_FAILED || ioctl(fd, UFFDIO_REGISTER, &r)) {
		perror("round_trip_parts: mmap/UFFDIO_REGISTER");
		exit(1);
	}
	madvise(p, len, MADV_NOHUGEPAGE);
	return p;
}

static void report(const char *what, uint64_t ns, long n)
{
	printf("  %-58s %8.2f us\n", what, (double)ns / n / 1000.0);
}

/* ---- the parts ---- */

static void parts(void)
{
	int fd = uffd_new(true), p1[2], p2[2];
	long i, n = pages;
	char *dst, *src, c = 0;
	uint64_t t0;

	t0 = now_ns();
	for (i = 0; i < n; i++)
		syscall(SYS_getppid);
	report("a system call (getppid)", now_ns() - t0, n);
	{
		struct uffd_msg m;

		t0 = now_ns();
		for (i = 0; i < n; i++)
			if (read(fd, &m, sizeof(m)) >= 0)
				break;
		report("an empty non-blocking read(2) of a userfaultfd (EAGAIN)", now_ns() - t0, n);
	}
	dst = map_registered(fd, n * PG);
	src = mmap(NULL, PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	memset(src, 1, PG);
	t0 = now_ns();
	for (i = 0; i < n; i++) {
		struct uffdio_copy cp = { .dst = (uintptr_t)dst + i * PG, .src = (uintptr_t)src, .len = PG };

		ioctl(fd, UFFDIO_COPY, &cp);
	}
	report("UFFDIO_COPY of one page (allocate, copy, install)", now_ns() - t0, n);
	munmap(dst, n * PG);
	dst = map_registered(fd, n * PG);
	t0 = now_ns();
	for (i = 0; i < n; i++) {
		struct uffdio_zeropage z = { .range = { .start = (uintptr_t)dst + i * PG, .len = PG } };

		ioctl(fd, UFFDIO_ZEROPAGE, &z);
	}
	report("UFFDIO_ZEROPAGE of one page (map the zero page)", now_ns() - t0, n);
	munmap(dst, n * PG);
	dst = mmap(NULL, n * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	madvise(dst, n * PG, MADV_NOHUGEPAGE);
	t0 = now_ns();
	for (i = 0; i < n; i++)
		dst[i * PG] = 1;
	report("a native anonymous write fault (no userfaultfd)", now_ns() - t0, n);
	munmap(dst, n * PG);
	close(fd);
	/* Pipe ping-pong: two wake-ups per round; half a round is one wake-up and switch. */
	for (int cross = 0; cross < 2; cross++) {
		pid_t kid;

		if (pipe(p1) || pipe(p2))
			exit(1);
		kid = fork();
		if (!kid) {
			close(p1[1]);
			close(p2[0]);
			pin(cross ? 1 : 0);
			while (read(p1[0], &c, 1) == 1 && write(p2[1], &c, 1) == 1)
				;
			_exit(0);
		}
		pin(0);
		t0 = now_ns();
		for (i = 0; i < n / 4; i++)
			if (write(p1[1], &c, 1) != 1 || read(p2[0], &c, 1) != 1)
				break;
		report(cross ? "a wake-up through a pipe, to another CPU (half a ping-pong)" :
			       "a wake-up through a pipe, on the same CPU (half a ping-pong)",
		       (now_ns() - t0) / 2, n / 4);
		close(p1[1]);
		close(p1[0]);
		close(p2[0]);
		close(p2[1]);
		while (wait(NULL) > 0)
			;
		unpin();
	}
}

/* ---- whole round trips ---- */

enum how { POLL_READ, BLOCKING_READ, SPIN };

struct handler {
	int fd, cpu;
	enum how how;
	char *src;
	atomic_bool done;
};

static void *handler_main(void *arg)
{
	struct handler *h = arg;
	struct uffd_msg m[16];
	ssize_t r;
	int i;

	pin(h->cpu);
	while (!atomic_load(&h->done)) {
		if (h->how == POLL_READ) {
			struct pollfd p = { .fd = h->fd, .events = POLLIN };

			if (poll(&p, 1, 100) <= 0)
				continue;
		}
		r = read(h->fd, m, sizeof(m));
		if (r <= 0) {
			if (h->how == SPIN)
				__builtin_ia32_pause();
			continue;
		}
		for (i = 0; i < r / (ssize_t)sizeof(m[0]); i++) {
			struct uffdio_copy cp = {
				.dst = m[i].arg.pagefault.address & ~(PG - 1),
				.src = (uintptr_t)h->src, .len = PG,
			};

			if (m[i].event == UFFD_EVENT_PAGEFAULT)
				ioctl(h->fd, UFFDIO_COPY, &cp);
		}
	}
	return NULL;
}

static void round_trip(const char *what, enum how how, int hcpu, int fcpu)
{
	struct handler h = { .how = how, .cpu = hcpu };
	pthread_t t;
	uint64_t t0, el;
	char *dst;
	long i, sum = 0;

	h.fd = uffd_new(how != BLOCKING_READ);
	h.src = mmap(NULL, PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	memset(h.src, 1, PG);
	dst = map_registered(h.fd, pages * PG);
	pthread_create(&t, NULL, handler_main, &h);
	pin(fcpu);
	usleep(10000);
	t0 = now_ns();
	for (i = 0; i < pages; i++)
		sum += dst[i * PG];
	el = now_ns() - t0;
	unpin();
	atomic_store(&h.done, true);
	if (how == BLOCKING_READ) {
		/* A blocked read(2) ends only with a fault: give it one. */
		struct uffdio_range rg = { .start = (uintptr_t)dst, .len = pages * PG };

		ioctl(h.fd, UFFDIO_UNREGISTER, &rg);
		pthread_detach(t);
	} else {
		pthread_join(t, NULL);
	}
	if (sum != pages) {
		fprintf(stderr, "round_trip_parts: wrong bytes\n");
		exit(1);
	}
	report(what, el, pages);
}

int main(int argc, char **argv)
{
	int qos, zero = 0, i;

	for (i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--pages") && i + 1 < argc) {
			pages = atol(argv[++i]);
			if (pages < 1 || pages > 1 << 20) {
				fprintf(stderr, "round_trip_parts: --pages '%s': want 1..1048576\n", argv[i]);
				return 2;
			}
		} else {
			fprintf(stderr, "usage: round_trip_parts [--pages 1..1048576]\n");
			return 2;
		}
	}
	ncpus = (int)sysconf(_SC_NPROCESSORS_ONLN);
	qos = open("/dev/cpu_dma_latency", O_WRONLY);
	if (qos >= 0 && write(qos, &zero, sizeof(zero)) != sizeof(zero)) {
		close(qos);
		qos = -1;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	printf("round_trip_parts: %ld pages, %d CPUs, cpu_dma_latency %s\n", pages, ncpus,
	       qos >= 0 ? "held at 0" : "not held");
	parts();
	round_trip("round trip, handler in poll(2) + read(2), any CPU", POLL_READ, -1, -1);
	round_trip("round trip, handler in blocking read(2), any CPU", BLOCKING_READ, -1, -1);
	round_trip("round trip, handler in blocking read(2), same CPU", BLOCKING_READ, 0, 0);
	if (ncpus > 1) {
		round_trip("round trip, handler in blocking read(2), other CPU", BLOCKING_READ, 1, 0);
		round_trip("round trip, handler spinning on read(2), other CPU", SPIN, 1, 0);
	}
	return 0;
}
