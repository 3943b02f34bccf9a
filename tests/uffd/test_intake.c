/* SPDX-License-Identifier: MIT */
/*
 * test_intake.c - the three intakes (io_uring, poll, busy) on real faults.
 *
 * A handler thread runs an intake and resolves every fault by copying a
 * known page; several threads fault concurrently; then the handler is
 * stopped and must come back promptly.  Helper threads never assert
 * (Criterion's asserts belong to the test's own thread): they record.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "uffd/uffd.h"

#define PG		4096ul
#define THREADS		8
#define PAGES_EACH	4
#define PAGES		(THREADS * PAGES_EACH)

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

TestSuite(uffd_intake, .init = setup, .fini = teardown, .timeout = 20);

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void sleep_ms(long ms)
{
	struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = ms % 1000 * 1000000 };

	nanosleep(&ts, NULL);
}

struct handler {
	pthread_t thread;
	enum uffd_intake_kind want;
	unsigned int depth, batch;
	int stop_fd;
	atomic_bool stop;
	char *base;		/* registered, PAGES pages */
	char *src;		/* what each page gets */
	struct uffd_spin *spin;	/* NULL: sleep at once */
	/* results */
	atomic_int state;	/* 0 starting, 1 waiting, 2 done */
	enum uffd_intake_kind got;
	int create_ret;
	int last_ret;		/* the wait's final return */
	atomic_long served;	/* fault messages resolved */
	long most;		/* most messages from one wait */
	long resolve_errors;
	struct uffd_intake_stats stats;
};

static void resolve(struct handler *h, const struct uffd_msg *m)
{
	unsigned long page = m->arg.pagefault.address & ~(PG - 1);
	long r;

	if (m->event != UFFD_EVENT_PAGEFAULT) {
		h->resolve_errors++;
		return;
	}
	r = uffd_copy(&u, page, h->src + (page - (unsigned long)h->base), PG,
		      false);
	if (r == -EEXIST)
		r = uffd_wake(&u, page, PG) ? -1 : (long)PG;
	if (r != (long)PG)
		h->resolve_errors++;
	atomic_fetch_add(&h->served, 1);
}

static void *handler_main(void *arg)
{
	struct handler *h = arg;
	struct uffd_intake *in;
	struct uffd_msg *msgs;
	int n, i;

	/* Created here: the io_uring is SINGLE_ISSUER to this thread. */
	h->create_ret = uffd_intake_create(&in, u.fd, h->want, h->depth,
					   h->batch, h->stop_fd, &h->stop);
	if (h->create_ret) {
		atomic_store(&h->state, 2);
		return NULL;
	}
	h->got = uffd_intake_kind(in);
	if (h->spin)
		uffd_intake_set_spin(in, h->spin);
	atomic_store(&h->state, 1);
	while ((n = uffd_intake_wait(in, &msgs)) > 0) {
		if (n > h->most)
			h->most = n;
		for (i = 0; i < n; i++)
			resolve(h, &msgs[i]);
	}
	h->last_ret = n;
	uffd_intake_get_stats(in, &h->stats);
	uffd_intake_destroy(in);
	atomic_store(&h->state, 2);
	return NULL;
}

static struct handler *handler_new(enum uffd_intake_kind kind,
				   unsigned int depth, unsigned int batch,
				   bool with_stop_fd)
{
	struct handler *h = calloc(1, sizeof(*h));
	size_t i;

	cr_assert_not_null(h);
	h->want = kind;
	h->depth = depth;
	h->batch = batch;
	h->stop_fd = with_stop_fd ? eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK) : -1;
	if (with_stop_fd)
		cr_assert_geq(h->stop_fd, 0);
	h->base = mmap(NULL, PAGES * PG, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	cr_assert_neq(h->base, MAP_FAILED);
	cr_assert_eq(uffd_register(&u, (unsigned long)h->base, PAGES * PG), 0);
	h->src = aligned_alloc(PG, PAGES * PG);
	cr_assert_not_null(h->src);
	for (i = 0; i < PAGES * PG; i++)
		h->src[i] = (char)(i * 13 + (i >> 12) * 101 + kind);
	return h;
}

static void *touch(void *arg);

static void handler_start(struct handler *h)
{
	cr_assert_eq(pthread_create(&h->thread, NULL, handler_main, h), 0);
	while (atomic_load(&h->state) == 0)
		sched_yield();
	cr_assert_eq(h->create_ret, 0);
}

/* Stop it the documented way: *stop, then stop_fd.  Returns seconds taken. */
static double handler_stop(struct handler *h)
{
	uint64_t one = 1;
	double t0 = now();

	atomic_store(&h->stop, true);
	if (h->stop_fd >= 0)
		cr_assert_eq(write(h->stop_fd, &one, sizeof(one)), sizeof(one));
	cr_assert_eq(pthread_join(h->thread, NULL), 0);
	return now() - t0;
}

static void handler_free(struct handler *h)
{
	if (h->stop_fd >= 0)
		close(h->stop_fd);
	munmap(h->base, PAGES * PG);
	free(h->src);
	free(h);
}

struct toucher {
	pthread_t thread;
	const char *addr;
	char seen[PAGES_EACH * PG];
};

static void *touch(void *arg)
{
	struct toucher *t = arg;

	memcpy(t->seen, t->addr, sizeof(t->seen));
	return NULL;
}

/* THREADS threads fault on PAGES_EACH pages each, all served by h. */
static void fault_from_threads(struct handler *h)
{
	struct toucher *t = calloc(THREADS, sizeof(*t));
	int i;

	cr_assert_not_null(t);
	for (i = 0; i < THREADS; i++) {
		t[i].addr = h->base + (size_t)i * PAGES_EACH * PG;
		cr_assert_eq(pthread_create(&t[i].thread, NULL, touch, &t[i]), 0);
	}
	for (i = 0; i < THREADS; i++) {
		cr_assert_eq(pthread_join(t[i].thread, NULL), 0);
		cr_assert_arr_eq(t[i].seen, t[i].addr, sizeof(t[i].seen));
		cr_assert_arr_eq(t[i].seen, h->src + (t[i].addr - h->base),
				 sizeof(t[i].seen));
	}
	free(t);
}

static void serves_and_stops(enum uffd_intake_kind kind)
{
	struct handler *h = handler_new(kind, 4, 8, true);
	double took;

	handler_start(h);
	cr_assert_eq(h->got, kind, "intake kind %d, wanted %d", h->got, kind);
	fault_from_threads(h);
	took = handler_stop(h);
	cr_assert_lt(took, 0.5, "stop took %.3f s", took);
	cr_assert_eq(h->last_ret, 0);
	cr_assert_geq(atomic_load(&h->served), PAGES);
	cr_assert_eq(h->resolve_errors, 0);
	cr_assert_geq(h->stats.reads, 1);
	cr_assert_lt(h->stats.errors, 64, "failed reads: %llu",
		     (unsigned long long)h->stats.errors);	/* no storm */
	cr_assert_leq(h->stats.reads, atomic_load(&h->served));
	handler_free(h);
}

Test(uffd_intake, uring_serves_threads_and_stops)
{
	serves_and_stops(UFFD_INTAKE_URING);
}

Test(uffd_intake, poll_serves_threads_and_stops)
{
	serves_and_stops(UFFD_INTAKE_POLL);
}

Test(uffd_intake, busy_serves_threads_and_stops)
{
	serves_and_stops(UFFD_INTAKE_BUSY);
}

/* Faults queued before the first wait come in as one batch. */
static void takes_batches(enum uffd_intake_kind kind)
{
	struct handler *h = handler_new(kind, 2, 16, true);
	struct toucher *t = calloc(THREADS, sizeof(*t));
	int i;

	cr_assert_not_null(t);
	for (i = 0; i < THREADS; i++) {
		t[i].addr = h->base + (size_t)i * PAGES_EACH * PG;
		cr_assert_eq(pthread_create(&t[i].thread, NULL, touch, &t[i]), 0);
	}
	sleep_ms(100);		/* let all eight fault and queue */
	handler_start(h);
	for (i = 0; i < THREADS; i++)
		cr_assert_eq(pthread_join(t[i].thread, NULL), 0);
	handler_stop(h);
	cr_assert_gt(h->most, 1, "never more than one message per wait");
	cr_assert_eq(h->resolve_errors, 0);
	free(t);
	handler_free(h);
}

Test(uffd_intake, uring_takes_batches)
{
	takes_batches(UFFD_INTAKE_URING);
}

Test(uffd_intake, poll_takes_batches)
{
	takes_batches(UFFD_INTAKE_POLL);
}

static void stops_when_idle(enum uffd_intake_kind kind, bool with_stop_fd)
{
	struct handler *h = handler_new(kind, 4, 8, with_stop_fd);
	double took;

	handler_start(h);
	sleep_ms(20);		/* asleep in the wait by now */
	took = handler_stop(h);
	cr_assert_lt(took, with_stop_fd ? 0.1 : 0.5, "stop took %.3f s", took);
	cr_assert_eq(h->last_ret, 0);
	cr_assert_eq(atomic_load(&h->served), 0);
	handler_free(h);
}

Test(uffd_intake, uring_stops_when_idle)
{
	stops_when_idle(UFFD_INTAKE_URING, true);
}

Test(uffd_intake, poll_stops_when_idle)
{
	stops_when_idle(UFFD_INTAKE_POLL, true);
}

Test(uffd_intake, busy_stops_when_idle)
{
	stops_when_idle(UFFD_INTAKE_BUSY, false);
}

/* Without a stop_fd the sleeping intakes still look at *stop now and then. */
Test(uffd_intake, uring_stops_without_stop_fd)
{
	stops_when_idle(UFFD_INTAKE_URING, false);
}

Test(uffd_intake, poll_stops_without_stop_fd)
{
	stops_when_idle(UFFD_INTAKE_POLL, false);
}

Test(uffd_intake, kind_reported)
{
	enum uffd_intake_kind k;
	struct uffd_intake *in;
	struct uffd_msg *msgs;
	atomic_bool stop = true;

	for (k = UFFD_INTAKE_URING; k <= UFFD_INTAKE_BUSY; k++) {
		cr_assert_eq(uffd_intake_create(&in, u.fd, k, 2, 4, -1, &stop), 0);
		/* io_uring is there on this kernel; elsewhere POLL stands in. */
		cr_assert_eq(uffd_intake_kind(in), k);
		/* Already stopped: the wait returns at once. */
		cr_assert_eq(uffd_intake_wait(in, &msgs), 0);
		uffd_intake_destroy(in);
	}
}

Test(uffd_intake, create_rejects_bad_arguments)
{
	struct uffd_intake *in = (void *)1;
	atomic_bool stop = false;

	errno = 99;
	cr_assert_eq(uffd_intake_create(&in, u.fd, UFFD_INTAKE_POLL, 1, 1, -1,
					NULL), -EINVAL);
	cr_assert_null(in);
	cr_assert_eq(uffd_intake_create(&in, u.fd, (enum uffd_intake_kind)7, 1,
					1, -1, &stop), -EINVAL);
	cr_assert_eq(errno, 99);
}

Test(uffd_intake, create_rejects_bad_fds)
{
	enum uffd_intake_kind k;
	struct uffd_intake *in;
	atomic_bool stop = false;
	int fd = 1000;		/* not open */
	int blocking;

	cr_assert_eq(fcntl(fd, F_GETFD), -1);
	blocking = eventfd(0, EFD_CLOEXEC);
	cr_assert_geq(blocking, 0);
	for (k = UFFD_INTAKE_URING; k <= UFFD_INTAKE_BUSY; k++) {
		cr_assert_eq(uffd_intake_create(&in, fd, k, 2, 4, -1, &stop),
			     -EBADF);
		cr_assert_eq(uffd_intake_create(&in, blocking, k, 2, 4, -1,
						&stop), -EINVAL);
	}
	close(blocking);
}

/* The fd closed under a waiting intake: reported, not spun on. */
static void closed_fd_reported(enum uffd_intake_kind kind)
{
	struct uffd_intake *in;
	struct uffd_msg *msgs;
	atomic_bool stop = false;
	int fd = fcntl(u.fd, F_DUPFD_CLOEXEC, 1000);

	cr_assert_geq(fd, 1000);
	cr_assert_eq(uffd_intake_create(&in, fd, kind, 2, 4, -1, &stop), 0);
	close(fd);
	cr_assert_eq(uffd_intake_wait(in, &msgs), -EBADF);
	uffd_intake_destroy(in);
}

Test(uffd_intake, poll_reports_closed_fd)
{
	closed_fd_reported(UFFD_INTAKE_POLL);
}

Test(uffd_intake, busy_reports_closed_fd)
{
	closed_fd_reported(UFFD_INTAKE_BUSY);
}

/* ---- spinning before sleeping (uffd_intake_set_spin) ---- */

/* The spin tests need the faulting threads' ids in the messages. */
static void setup_tid(void)
{
	cr_assert_eq(sysconf(_SC_PAGESIZE), (long)PG);
	cr_assert_eq(uffd_open(&u, UFFD_FEATURE_THREAD_ID, stderr), 0);
}

TestSuite(uffd_spin, .init = setup_tid, .fini = teardown, .timeout = 30);

static struct handler *spin_handler(enum uffd_intake_kind kind, struct uffd_spin *sp)
{
	struct handler *h = handler_new(kind, 4, 8, true);

	h->spin = sp;
	handler_start(h);
	return h;
}

/* One thread faulting page after page: each next fault finds the handler spinning. */
static void spin_serves_a_stream(enum uffd_intake_kind kind)
{
	struct uffd_spin sp = { .budget_ns = 20000000, .max_spinners = 1, .cpus = 64 };
	struct handler *h = spin_handler(kind, &sp);
	struct toucher t = { 0 };
	size_t i;

	for (i = 0; i < THREADS; i++) {
		t.addr = h->base + i * PAGES_EACH * PG;
		touch(&t);
		cr_assert_arr_eq(t.seen, h->src + i * PAGES_EACH * PG, sizeof(t.seen));
	}
	handler_stop(h);
	cr_assert_eq(h->resolve_errors, 0);
	cr_assert_geq(atomic_load(&h->served), PAGES);
	/* The first fault finds it asleep; most of the others, spinning. */
	cr_assert_geq(h->stats.spin_hits, PAGES / 2, "%llu spin hits of %d faults",
		      (unsigned long long)h->stats.spin_hits, PAGES);
	cr_assert_eq(atomic_load(&sp.spinners), 0);
	handler_free(h);
}

Test(uffd_spin, poll_spin_serves_a_stream)
{
	spin_serves_a_stream(UFFD_INTAKE_POLL);
}

Test(uffd_spin, uring_spin_serves_a_stream)
{
	spin_serves_a_stream(UFFD_INTAKE_URING);
}

/* After its budget an idle handler sleeps: it burns no CPU while nothing faults. */
static void idle_spinner_sleeps(enum uffd_intake_kind kind)
{
	struct uffd_spin sp = { .budget_ns = 2000000, .max_spinners = 1, .cpus = 64 };
	struct handler *h = spin_handler(kind, &sp);
	struct timespec c0, c1;
	struct toucher t = { .addr = h->base };
	clockid_t clk;
	double cpu;

	cr_assert_eq(pthread_getcpuclockid(h->thread, &clk), 0);
	touch(&t);			/* a fault: the handler spins 2 ms after it */
	sleep_ms(20);
	cr_assert_eq(clock_gettime(clk, &c0), 0);
	sleep_ms(300);
	cr_assert_eq(clock_gettime(clk, &c1), 0);
	cpu = (c1.tv_sec - c0.tv_sec) + (c1.tv_nsec - c0.tv_nsec) / 1e9;
	handler_stop(h);
	cr_assert_lt(cpu, 0.03, "an idle handler used %.3f s of CPU in 0.3 s", cpu);
	cr_assert_geq(h->stats.spin_misses, 1);
	cr_assert_geq(h->stats.spin_ns, 2000000);
	cr_assert_eq(h->resolve_errors, 0);
	handler_free(h);
}

Test(uffd_spin, poll_idle_spinner_sleeps)
{
	idle_spinner_sleeps(UFFD_INTAKE_POLL);
}

Test(uffd_spin, uring_idle_spinner_sleeps)
{
	idle_spinner_sleeps(UFFD_INTAKE_URING);
}

/*
 * More threads faulting than CPUs: spinning would hold a CPU a woken
 * faulting thread needs.  The intake counts the threads among the latest
 * faults (their ptids) and, with a spinner, they do not fit cpus = 2: it
 * sleeps at once.
 */
Test(uffd_spin, no_spinning_when_faulters_fill_the_cpus)
{
	struct uffd_spin sp = { .budget_ns = 20000000, .max_spinners = 1, .cpus = 2 };
	struct handler *h = spin_handler(UFFD_INTAKE_POLL, &sp);
	int round;

	for (round = 0; round < 40; round++) {	/* over 64 waits, however batched */
		fault_from_threads(h);
		cr_assert_eq(madvise(h->base, PAGES * PG, MADV_DONTNEED), 0);
	}
	handler_stop(h);
	cr_assert_eq(h->resolve_errors, 0);
	cr_assert_geq(h->stats.faulters, 3, "%llu threads counted among the latest faults",
		      (unsigned long long)h->stats.faulters);
	cr_assert_geq(h->stats.spin_backoffs, 1);
	handler_free(h);
}

/* A zero budget never spins. */
Test(uffd_spin, zero_budget_sleeps_at_once)
{
	struct uffd_spin sp = { .budget_ns = 0, .max_spinners = 1, .cpus = 64 };
	struct handler *h = spin_handler(UFFD_INTAKE_POLL, &sp);

	fault_from_threads(h);
	handler_stop(h);
	cr_assert_eq(h->stats.spin_hits + h->stats.spin_misses, 0);
	cr_assert_eq(h->stats.spin_ns, 0);
	handler_free(h);
}
