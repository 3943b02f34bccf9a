/* SPDX-License-Identifier: MIT */
/*
 * test_resolve.c - register, copy, zeropage and wake on real faults.
 *
 * Threads touch registered pages; the test itself plays the handler: it
 * reads the fault message from the uffd and resolves it, then checks what
 * the faulting thread saw, byte for byte.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "uffd/uffd.h"

#define PG	4096ul

static struct uffd u;

static void setup(void)
{
	cr_assert_eq(sysconf(_SC_PAGESIZE), (long)PG);
	cr_assert_eq(uffd_open(&u, 0, stderr), 0);
}

static void teardown(void)
{
	uffd_close(&u);
}

TestSuite(uffd_resolve, .init = setup, .fini = teardown, .timeout = 20);

static char *map_pages(size_t pages)
{
	char *p = mmap(NULL, pages * PG, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	cr_assert_neq(p, MAP_FAILED);
	return p;
}

static char *map_registered(size_t pages)
{
	char *p = map_pages(pages);

	cr_assert_eq(uffd_register(&u, (unsigned long)p, pages * PG), 0);
	return p;
}

static void fill(char *buf, size_t len, unsigned int seed)
{
	size_t i;

	for (i = 0; i < len; i++)
		buf[i] = (char)(i * 7 + seed * 131 + (i >> 12));
}

static bool resident(void *page)
{
	unsigned char v = 0;

	cr_assert_eq(mincore(page, PG, &v), 0);
	return v & 1;
}

/* The page of the next fault; fails the test after 5 s without one. */
static unsigned long next_fault(void)
{
	struct pollfd pfd = { .fd = u.fd, .events = POLLIN };
	struct uffd_msg msg;

	for (;;) {
		cr_assert_eq(poll(&pfd, 1, 5000), 1, "no fault message");
		if (read(u.fd, &msg, sizeof(msg)) == sizeof(msg))
			break;
		cr_assert_eq(errno, EAGAIN);
	}
	cr_assert_eq(msg.event, UFFD_EVENT_PAGEFAULT);
	return msg.arg.pagefault.address & ~(PG - 1);
}

static void assert_no_fault_pending(void)
{
	struct uffd_msg msg;

	cr_assert_eq(read(u.fd, &msg, sizeof(msg)), -1);
	cr_assert_eq(errno, EAGAIN);
}

/* A thread that reads [addr, addr+len) into its own buffer. */
struct toucher {
	pthread_t thread;
	const char *addr;
	size_t len;
	char *seen;
	atomic_bool done;
};

static void *touch(void *arg)
{
	struct toucher *t = arg;

	memcpy(t->seen, t->addr, t->len);
	atomic_store(&t->done, true);
	return NULL;
}

static struct toucher *touch_start(const char *addr, size_t len)
{
	struct toucher *t = calloc(1, sizeof(*t));

	cr_assert_not_null(t);
	t->addr = addr;
	t->len = len;
	t->seen = malloc(len);
	cr_assert_not_null(t->seen);
	cr_assert_eq(pthread_create(&t->thread, NULL, touch, t), 0);
	return t;
}

static void touch_join(struct toucher *t)
{
	cr_assert_eq(pthread_join(t->thread, NULL), 0);
	cr_assert(atomic_load(&t->done));
}

static void touch_free(struct toucher *t)
{
	free(t->seen);
	free(t);
}

/* Still asleep in their faults after a while: nobody woke them. */
static void assert_still_waiting(struct toucher **t, int n)
{
	struct timespec ts = { .tv_nsec = 50 * 1000 * 1000 };
	int i;

	nanosleep(&ts, NULL);
	for (i = 0; i < n; i++)
		cr_assert_not(atomic_load(&t[i]->done), "woken without a wake");
}

Test(uffd_resolve, register_unregister)
{
	char *p = map_pages(4);
	size_t i;

	cr_assert_eq(uffd_register(&u, (unsigned long)p, 4 * PG), 0);
	cr_assert_eq(uffd_unregister(&u, (unsigned long)p, 4 * PG), 0);
	/* Ordinary memory again: the first touch needs no handler. */
	for (i = 0; i < 4 * PG; i++)
		cr_assert_eq(p[i], 0);
	munmap(p, 4 * PG);
}

Test(uffd_resolve, register_rejects_unaligned)
{
	char *p = map_pages(2);

	errno = 77;
	cr_assert_eq(uffd_register(&u, (unsigned long)p + 1, PG), -EINVAL);
	cr_assert_eq(errno, 77);
	munmap(p, 2 * PG);
}

Test(uffd_resolve, unregister_wakes_pending_fault)
{
	char *p = map_registered(1);
	struct toucher *t = touch_start(p, PG);
	size_t i;

	cr_assert_eq(next_fault(), (unsigned long)p);
	cr_assert_eq(uffd_unregister(&u, (unsigned long)p, PG), 0);
	touch_join(t);
	for (i = 0; i < PG; i++)
		cr_assert_eq(t->seen[i], 0);
	touch_free(t);
	munmap(p, PG);
}

Test(uffd_resolve, copy_serves_fault)
{
	char *p = map_registered(1);
	char *src = aligned_alloc(PG, PG);
	struct toucher *t;

	fill(src, PG, 1);
	t = touch_start(p, PG);
	cr_assert_eq(next_fault(), (unsigned long)p);
	cr_assert_eq(uffd_copy(&u, (unsigned long)p, src, PG, false), (long)PG);
	touch_join(t);
	cr_assert_arr_eq(t->seen, src, PG);
	cr_assert_arr_eq(p, src, PG);
	touch_free(t);
	free(src);
	munmap(p, PG);
}

Test(uffd_resolve, zeropage_serves_fault)
{
	char *p = map_registered(1);
	struct toucher *t = touch_start(p, PG);
	size_t i;

	cr_assert_eq(next_fault(), (unsigned long)p);
	cr_assert_eq(uffd_zeropage(&u, (unsigned long)p, PG, false), (long)PG);
	touch_join(t);
	for (i = 0; i < PG; i++)
		cr_assert_eq(t->seen[i], 0, "byte %zu", i);
	touch_free(t);
	munmap(p, PG);
}

/* One fault, sixteen pages installed: the rest are touched fault-free. */
Test(uffd_resolve, copy_16_pages)
{
	char *p = map_registered(16);
	char *src = aligned_alloc(PG, 16 * PG);
	struct toucher *t;

	fill(src, 16 * PG, 2);
	t = touch_start(p, 16 * PG);
	cr_assert_eq(next_fault(), (unsigned long)p);
	cr_assert_eq(uffd_copy(&u, (unsigned long)p, src, 16 * PG, false), 65536);
	touch_join(t);
	cr_assert_arr_eq(t->seen, src, 16 * PG);
	assert_no_fault_pending();
	touch_free(t);
	free(src);
	munmap(p, 16 * PG);
}

/*
 * 01234567   eight threads, one page each
 * ffffffff   eight faults read
 * cccccccc   eight DONTWAKE copies: all still asleep
 * wwwwwwww   one wake over the range: all resume
 */
Test(uffd_resolve, dontwake_copies_then_one_wake)
{
	enum { N = 8 };
	char *p = map_registered(N);
	char *src = aligned_alloc(PG, N * PG);
	struct toucher *t[N];
	bool faulted[N] = { false };
	unsigned long a;
	int i;

	fill(src, N * PG, 3);
	for (i = 0; i < N; i++)
		t[i] = touch_start(p + i * PG, PG);
	for (i = 0; i < N; i++) {
		a = next_fault();
		cr_assert(a >= (unsigned long)p && a < (unsigned long)p + N * PG);
		faulted[(a - (unsigned long)p) / PG] = true;
	}
	for (i = 0; i < N; i++) {
		cr_assert(faulted[i], "page %d never faulted", i);
		cr_assert_eq(uffd_copy(&u, (unsigned long)p + i * PG,
				       src + i * PG, PG, true), (long)PG);
	}
	assert_still_waiting(t, N);
	cr_assert_eq(uffd_wake(&u, (unsigned long)p, N * PG), 0);
	for (i = 0; i < N; i++) {
		touch_join(t[i]);
		cr_assert_arr_eq(t[i]->seen, src + i * PG, PG);
		touch_free(t[i]);
	}
	free(src);
	munmap(p, N * PG);
}

/* The second copy finds the page present: -EEXIST, the thread woken by hand. */
Test(uffd_resolve, eexist_then_wake)
{
	char *p = map_registered(1);
	char *src = aligned_alloc(PG, 2 * PG);
	struct toucher *t;

	fill(src, 2 * PG, 4);
	t = touch_start(p, PG);
	cr_assert_eq(next_fault(), (unsigned long)p);
	cr_assert_eq(uffd_copy(&u, (unsigned long)p, src, PG, true), (long)PG);
	errno = 55;
	cr_assert_eq(uffd_copy(&u, (unsigned long)p, src + PG, PG, false),
		     -EEXIST);
	cr_assert_eq(errno, 55);
	cr_assert_eq(uffd_zeropage(&u, (unsigned long)p, PG, false), -EEXIST);
	assert_still_waiting(&t, 1);
	cr_assert_eq(uffd_wake(&u, (unsigned long)p, PG), 0);
	touch_join(t);
	cr_assert_arr_eq(t->seen, src, PG);	/* the first copy stands */
	touch_free(t);
	free(src);
	munmap(p, PG);
}

Test(uffd_resolve, enoent_after_munmap)
{
	char *p = map_registered(2);
	char *src = aligned_alloc(PG, PG);

	fill(src, PG, 5);
	cr_assert_eq(munmap(p, 2 * PG), 0);
	errno = 66;
	cr_assert_eq(uffd_copy(&u, (unsigned long)p, src, PG, false), -ENOENT);
	cr_assert_eq(uffd_zeropage(&u, (unsigned long)p, PG, false), -ENOENT);
	cr_assert_eq(errno, 66);
	free(src);
}

/*
 * 0123
 * ..P.   page 2 present before registering
 * cc|    a 4-page copy stops there: 2 pages' bytes, page 3 left missing
 */
Test(uffd_resolve, partial_copy_stops_at_present_page)
{
	char *p = map_pages(4);
	char *src = aligned_alloc(PG, 4 * PG);
	size_t i;

	fill(src, 4 * PG, 6);
	memset(p + 2 * PG, 0xee, PG);
	cr_assert_eq(uffd_register(&u, (unsigned long)p, 4 * PG), 0);
	cr_assert_eq(uffd_copy(&u, (unsigned long)p, src, 4 * PG, false),
		     (long)(2 * PG));
	cr_assert_arr_eq(p, src, 2 * PG);
	for (i = 0; i < PG; i++)
		cr_assert_eq((unsigned char)p[2 * PG + i], 0xee);
	cr_assert_not(resident(p + 3 * PG));
	free(src);
	munmap(p, 4 * PG);
}

Test(uffd_resolve, partial_zeropage_stops_at_present_page)
{
	char *p = map_pages(4);

	memset(p + PG, 0xee, PG);
	cr_assert_eq(uffd_register(&u, (unsigned long)p, 4 * PG), 0);
	cr_assert_eq(uffd_zeropage(&u, (unsigned long)p, 4 * PG, false),
		     (long)PG);
	cr_assert_eq(uffd_zeropage(&u, (unsigned long)p + PG, 3 * PG, false),
		     -EEXIST);
	cr_assert_not(resident(p + 2 * PG));
	munmap(p, 4 * PG);
}

Test(uffd_resolve, wake_without_waiter)
{
	char *p = map_registered(1);

	cr_assert_eq(uffd_wake(&u, (unsigned long)p, PG), 0);
	munmap(p, PG);
}
