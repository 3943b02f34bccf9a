/* SPDX-License-Identifier: MIT */
/*
 * tests/mm/test_rwsem.c - the mmap_lock's rwsem: sharing, exclusion, every trylock
 * in every state, Arcangeli's store-free trylock, downgrade, writer
 * preference, the contended counter, and a mixed stress run.
 */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sched.h>
#include <time.h>
#include <unistd.h>

#include "mm/jiffies.h"
#include "mm/rwsem.h"

TestSuite(rwsem, .timeout = 30);

static uint32_t state_of(struct rw_semaphore *sem)
{
	return atomic_load(&sem->state);
}

static uint64_t contended_of(struct rw_semaphore *sem)
{
	return atomic_load(&sem->contended);
}

/* Poll until all of `bits` are set in the word (a waiter has flagged itself). */
static void wait_for_bits(struct rw_semaphore *sem, uint32_t bits)
{
	uint64_t deadline = uspf_now_ns() + 5000000000ull;

	while ((state_of(sem) & bits) != bits) {
		cr_assert(uspf_now_ns() < deadline, "waiter never flagged 0x%x, state 0x%x",
			  bits, state_of(sem));
		usleep(100);
	}
}

static void wait_for_flag(_Atomic int *flag, int val)
{
	uint64_t deadline = uspf_now_ns() + 5000000000ull;

	while (atomic_load(flag) != val) {
		cr_assert(uspf_now_ns() < deadline, "flag never reached %d", val);
		usleep(100);
	}
}

/* A thread that takes the lock, says so, and holds it until released. */
struct holder {
	struct rw_semaphore *sem;
	bool write;
	_Atomic int inside;	/* 0 before, 1 holding, 2 done */
	_Atomic int release;
	int ticket;		/* order of entry, from next_ticket */
	pthread_t tid;
};

static _Atomic int next_ticket;

static void *holder_fn(void *arg)
{
	struct holder *h = arg;

	if (h->write)
		down_write(h->sem);
	else
		down_read(h->sem);
	h->ticket = atomic_fetch_add(&next_ticket, 1);
	atomic_store(&h->inside, 1);
	while (!atomic_load(&h->release))
		usleep(100);
	if (h->write)
		up_write(h->sem);
	else
		up_read(h->sem);
	atomic_store(&h->inside, 2);
	return NULL;
}

static void holder_start(struct holder *h, struct rw_semaphore *sem, bool write)
{
	h->sem = sem;
	h->write = write;
	atomic_init(&h->inside, 0);
	atomic_init(&h->release, 0);
	cr_assert_eq(pthread_create(&h->tid, NULL, holder_fn, h), 0);
}

static void holder_finish(struct holder *h)
{
	atomic_store(&h->release, 1);
	pthread_join(h->tid, NULL);
}

Test(rwsem, init_is_free)
{
	struct rw_semaphore sem;

	init_rwsem(&sem);
	cr_assert_eq(state_of(&sem), 0);
	cr_assert_eq(contended_of(&sem), 0);
	cr_assert(!rwsem_is_locked(&sem));
}

#define SHARERS 4

static pthread_barrier_t share_barrier;

static void *sharer_fn(void *arg)
{
	struct rw_semaphore *sem = arg;

	down_read(sem);
	pthread_barrier_wait(&share_barrier);	/* everyone holds it at once */
	pthread_barrier_wait(&share_barrier);	/* main has looked */
	up_read(sem);
	return NULL;
}

Test(rwsem, readers_share)
{
	struct rw_semaphore sem;
	pthread_t tid[SHARERS];
	int i;

	init_rwsem(&sem);
	pthread_barrier_init(&share_barrier, NULL, SHARERS + 1);
	for (i = 0; i < SHARERS; i++)
		cr_assert_eq(pthread_create(&tid[i], NULL, sharer_fn, &sem), 0);
	pthread_barrier_wait(&share_barrier);
	cr_assert_eq(rwsem_readers(&sem), SHARERS);
	cr_assert(rwsem_is_locked(&sem));
	cr_assert(!rwsem_is_write_locked(&sem));
	pthread_barrier_wait(&share_barrier);
	for (i = 0; i < SHARERS; i++)
		pthread_join(tid[i], NULL);
	cr_assert_eq(state_of(&sem), 0);
	cr_assert_eq(contended_of(&sem), 0, "nobody had to wait");
	pthread_barrier_destroy(&share_barrier);
}

Test(rwsem, writer_excludes_writer)
{
	struct rw_semaphore sem;
	struct holder w;

	init_rwsem(&sem);
	down_write(&sem);
	holder_start(&w, &sem, true);
	wait_for_bits(&sem, RWSEM_WRITER_WAITING | RWSEM_SLEEPERS);
	usleep(20000);
	cr_assert_eq(atomic_load(&w.inside), 0);
	up_write(&sem);
	wait_for_flag(&w.inside, 1);
	cr_assert(rwsem_is_write_locked(&sem));
	holder_finish(&w);
	cr_assert_eq(state_of(&sem), 0);
}

Test(rwsem, writer_excludes_reader)
{
	struct rw_semaphore sem;
	struct holder r;

	init_rwsem(&sem);
	down_write(&sem);
	holder_start(&r, &sem, false);
	wait_for_bits(&sem, RWSEM_SLEEPERS);
	usleep(20000);
	cr_assert_eq(atomic_load(&r.inside), 0);
	up_write(&sem);
	wait_for_flag(&r.inside, 1);
	cr_assert_eq(rwsem_readers(&sem), 1);
	holder_finish(&r);
	cr_assert_eq(state_of(&sem), 0);
}

Test(rwsem, reader_excludes_writer)
{
	struct rw_semaphore sem;
	struct holder w;

	init_rwsem(&sem);
	down_read(&sem);
	holder_start(&w, &sem, true);
	wait_for_bits(&sem, RWSEM_WRITER_WAITING | RWSEM_SLEEPERS);
	usleep(20000);
	cr_assert_eq(atomic_load(&w.inside), 0);
	up_read(&sem);
	wait_for_flag(&w.inside, 1);
	holder_finish(&w);
	cr_assert_eq(state_of(&sem), 0);
}

Test(rwsem, trylock_when_free)
{
	struct rw_semaphore sem;

	init_rwsem(&sem);
	cr_assert(down_read_trylock(&sem));
	cr_assert_eq(rwsem_readers(&sem), 1);
	up_read(&sem);
	cr_assert(down_read_trylock_exclusive(&sem));
	cr_assert_eq(rwsem_readers(&sem), 1);
	up_read(&sem);
	cr_assert(down_write_trylock(&sem));
	cr_assert_eq(state_of(&sem), RWSEM_WRITER);
	up_write(&sem);
	cr_assert_eq(state_of(&sem), 0);
	cr_assert_eq(contended_of(&sem), 0);
}

Test(rwsem, trylock_when_read_held)
{
	struct rw_semaphore sem;

	init_rwsem(&sem);
	down_read(&sem);
	cr_assert(down_read_trylock(&sem), "readers share");
	cr_assert_eq(rwsem_readers(&sem), 2);
	up_read(&sem);
	cr_assert(!down_write_trylock(&sem));
	cr_assert(!down_read_trylock_exclusive(&sem));
	cr_assert_eq(rwsem_readers(&sem), 1);
	up_read(&sem);
	cr_assert_eq(state_of(&sem), 0);
}

Test(rwsem, trylock_when_write_held)
{
	struct rw_semaphore sem;

	init_rwsem(&sem);
	down_write(&sem);
	cr_assert(!down_read_trylock(&sem));
	cr_assert(!down_read_trylock_exclusive(&sem));
	cr_assert(!down_write_trylock(&sem));
	cr_assert_eq(state_of(&sem), RWSEM_WRITER);
	up_write(&sem);
	cr_assert_eq(state_of(&sem), 0);
}

Test(rwsem, trylock_when_writer_waiting)
{
	struct rw_semaphore sem;
	struct holder w;

	init_rwsem(&sem);
	down_read(&sem);
	holder_start(&w, &sem, true);
	wait_for_bits(&sem, RWSEM_WRITER_WAITING);
	cr_assert(!down_read_trylock(&sem), "a waiting writer holds new readers off");
	cr_assert(!down_read_trylock_exclusive(&sem));
	cr_assert(!down_write_trylock(&sem));
	cr_assert_eq(rwsem_readers(&sem), 1);
	up_read(&sem);
	wait_for_flag(&w.inside, 1);
	holder_finish(&w);
	cr_assert_eq(state_of(&sem), 0);
}

/* A failed exclusive trylock leaves the word and the counter bit-identical. */
static void assert_exclusive_fails_silently(struct rw_semaphore *sem)
{
	uint32_t before = state_of(sem);
	uint64_t contended = contended_of(sem);

	cr_assert(!down_read_trylock_exclusive(sem), "state 0x%x", before);
	cr_assert_eq(state_of(sem), before);
	cr_assert_eq(contended_of(sem), contended);
}

Test(rwsem, exclusive_failure_writes_nothing)
{
	struct rw_semaphore sem;
	struct holder w, r;

	init_rwsem(&sem);

	down_read(&sem);				/* read-held */
	assert_exclusive_fails_silently(&sem);
	down_read(&sem);				/* two readers */
	assert_exclusive_fails_silently(&sem);
	up_read(&sem);

	holder_start(&w, &sem, true);			/* read-held, writer waiting */
	wait_for_bits(&sem, RWSEM_WRITER_WAITING | RWSEM_SLEEPERS);
	assert_exclusive_fails_silently(&sem);
	up_read(&sem);
	wait_for_flag(&w.inside, 1);			/* write-held */
	assert_exclusive_fails_silently(&sem);

	holder_start(&r, &sem, false);			/* write-held, reader sleeping */
	wait_for_bits(&sem, RWSEM_SLEEPERS);
	assert_exclusive_fails_silently(&sem);
	holder_finish(&w);
	wait_for_flag(&r.inside, 1);
	holder_finish(&r);
	cr_assert_eq(state_of(&sem), 0);
}

/*
 * Stronger than comparing values: with the semaphore on a read-only page,
 * any store or locked RMW (even a failing cmpxchg) would SIGSEGV.
 */
Test(rwsem, exclusive_failure_on_readonly_page)
{
	long pg = sysconf(_SC_PAGESIZE);
	struct rw_semaphore *sem;
	struct holder w;
	void *p;

	p = mmap(NULL, pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	cr_assert_neq(p, MAP_FAILED);
	sem = p;
	init_rwsem(sem);

	down_read(sem);
	cr_assert_eq(mprotect(p, pg, PROT_READ), 0);
	cr_assert(!down_read_trylock_exclusive(sem));
	cr_assert_eq(mprotect(p, pg, PROT_READ | PROT_WRITE), 0);

	holder_start(&w, sem, true);
	wait_for_bits(sem, RWSEM_WRITER_WAITING | RWSEM_SLEEPERS);
	cr_assert_eq(mprotect(p, pg, PROT_READ), 0);
	cr_assert(!down_read_trylock_exclusive(sem));
	cr_assert_eq(mprotect(p, pg, PROT_READ | PROT_WRITE), 0);
	up_read(sem);

	wait_for_flag(&w.inside, 1);
	cr_assert_eq(mprotect(p, pg, PROT_READ), 0);
	cr_assert(!down_read_trylock_exclusive(sem));
	cr_assert_eq(mprotect(p, pg, PROT_READ | PROT_WRITE), 0);
	holder_finish(&w);

	cr_assert_eq(state_of(sem), 0);
	munmap(p, pg);
}

/*
 * Writer holds; a reader blocks.  downgrade_write() lets the reader in and
 * keeps a new writer out until both readers have gone.
 */
Test(rwsem, downgrade_admits_readers_not_writers)
{
	struct rw_semaphore sem;
	struct holder r, w;

	init_rwsem(&sem);
	down_write(&sem);
	holder_start(&r, &sem, false);
	wait_for_bits(&sem, RWSEM_SLEEPERS);
	cr_assert_eq(atomic_load(&r.inside), 0);

	downgrade_write(&sem);
	wait_for_flag(&r.inside, 1);
	cr_assert(!rwsem_is_write_locked(&sem));
	cr_assert_eq(rwsem_readers(&sem), 2);
	cr_assert(!down_write_trylock(&sem));

	holder_start(&w, &sem, true);
	wait_for_bits(&sem, RWSEM_WRITER_WAITING);
	up_read(&sem);					/* the downgraded writer leaves */
	usleep(20000);
	cr_assert_eq(atomic_load(&w.inside), 0, "the other reader still holds");
	holder_finish(&r);
	wait_for_flag(&w.inside, 1);
	holder_finish(&w);
	cr_assert_eq(state_of(&sem), 0);
}

/* A waiting writer goes before a reader that arrived after it. */
Test(rwsem, writer_preference)
{
	struct rw_semaphore sem;
	struct holder w, r;

	init_rwsem(&sem);
	down_read(&sem);
	holder_start(&w, &sem, true);
	wait_for_bits(&sem, RWSEM_WRITER_WAITING);
	cr_assert(!down_read_trylock(&sem));

	holder_start(&r, &sem, false);
	usleep(20000);
	cr_assert_eq(atomic_load(&r.inside), 0, "a new reader waits behind the writer");

	up_read(&sem);
	wait_for_flag(&w.inside, 1);
	cr_assert_eq(atomic_load(&r.inside), 0);
	holder_finish(&w);
	wait_for_flag(&r.inside, 1);
	holder_finish(&r);
	cr_assert_lt(w.ticket, r.ticket);
	cr_assert_eq(state_of(&sem), 0);
}

Test(rwsem, contended_counts_sleeps)
{
	struct rw_semaphore sem;
	struct holder w, r;

	init_rwsem(&sem);
	down_read(&sem);
	up_read(&sem);
	down_write(&sem);
	downgrade_write(&sem);
	up_read(&sem);
	cr_assert_eq(contended_of(&sem), 0, "no waiting, no count");

	down_read(&sem);
	holder_start(&w, &sem, true);
	wait_for_bits(&sem, RWSEM_WRITER_WAITING | RWSEM_SLEEPERS);
	up_read(&sem);
	holder_finish(&w);
	cr_assert_eq(contended_of(&sem), 1, "the writer had to wait");

	down_write(&sem);
	holder_start(&r, &sem, false);
	wait_for_bits(&sem, RWSEM_SLEEPERS);
	up_write(&sem);
	holder_finish(&r);
	cr_assert_eq(contended_of(&sem), 2, "the reader had to wait");
	cr_assert_eq(state_of(&sem), 0);
}

/* ---- stress: four threads mixing every operation for half a second ---- */

#define STRESS_THREADS	4
#define STRESS_NS	500000000ull

static struct rw_semaphore stress_sem;
static _Atomic int stress_writers, stress_readers;
static _Atomic unsigned long stress_violations;
static volatile unsigned long stress_counter;	/* written only under the write lock */
static uint64_t stress_end;

static void stress_spin(unsigned int n)
{
	while (n--)
		__builtin_ia32_pause();
}

static void stress_read_section(void)
{
	unsigned long v;

	atomic_fetch_add(&stress_readers, 1);
	if (atomic_load(&stress_writers))
		atomic_fetch_add(&stress_violations, 1);
	v = stress_counter;
	stress_spin(20);
	if (stress_counter != v)
		atomic_fetch_add(&stress_violations, 1);
	atomic_fetch_sub(&stress_readers, 1);
}

static void stress_write_section(void)
{
	if (atomic_fetch_add(&stress_writers, 1) != 0 || atomic_load(&stress_readers))
		atomic_fetch_add(&stress_violations, 1);
	stress_counter = stress_counter + 1;
	stress_spin(20);
	atomic_fetch_sub(&stress_writers, 1);
}

static unsigned long stress_step(unsigned int op)
{
	switch (op) {
	case 0: case 1: case 2: case 3:
		down_read(&stress_sem);
		stress_read_section();
		up_read(&stress_sem);
		return 0;
	case 4:
		if (down_read_trylock(&stress_sem)) {
			stress_read_section();
			up_read(&stress_sem);
		}
		return 0;
	case 5:
		if (down_read_trylock_exclusive(&stress_sem)) {
			stress_read_section();
			up_read(&stress_sem);
		}
		return 0;
	case 6:
		if (!down_write_trylock(&stress_sem))
			return 0;
		stress_write_section();
		up_write(&stress_sem);
		return 1;
	case 7:
		down_write(&stress_sem);
		stress_write_section();
		downgrade_write(&stress_sem);
		stress_read_section();
		up_read(&stress_sem);
		return 1;
	default:
		down_write(&stress_sem);
		stress_write_section();
		up_write(&stress_sem);
		return 1;
	}
}

static void *stress_fn(void *arg)
{
	uint32_t x = (uint32_t)(uintptr_t)arg * 2654435761u + 1;
	unsigned long writes = 0, i;

	for (i = 0;; i++) {
		if (!(i & 63) && uspf_now_ns() >= stress_end)
			break;
		x ^= x << 13;
		x ^= x >> 17;
		x ^= x << 5;
		writes += stress_step(x % 10);
	}
	return (void *)writes;
}

Test(rwsem, stress_mixed)
{
	pthread_t tid[STRESS_THREADS];
	unsigned long writes = 0;
	void *ret;
	int i;

	init_rwsem(&stress_sem);
	stress_end = uspf_now_ns() + STRESS_NS;
	for (i = 0; i < STRESS_THREADS; i++)
		cr_assert_eq(pthread_create(&tid[i], NULL, stress_fn,
					    (void *)(uintptr_t)(i + 1)), 0);
	for (i = 0; i < STRESS_THREADS; i++) {
		pthread_join(tid[i], &ret);
		writes += (unsigned long)ret;
	}
	cr_assert_eq(atomic_load(&stress_violations), 0);
	cr_assert_eq(stress_counter, writes, "lost updates: %lu of %lu",
		     stress_counter, writes);
	cr_assert_gt(writes, 0);
	cr_assert_eq(state_of(&stress_sem), 0, "final state 0x%x",
		     state_of(&stress_sem));
}

/*
 * Reader handoff (the kernel's RWSEM_FLAG_HANDOFF): a writer holds the
 * lock and another waits, so writer preference alone would let the waiting
 * writer in before the reader that came first, and then the next, for ever.
 * After RWSEM_WAIT_TIMEOUT_NS the reader sets RWSEM_READER_HANDOFF while
 * still waiting; at the release it goes in before the waiting writer.
 */
struct handoff {
	struct rw_semaphore sem;
	atomic_uint ticket;
	unsigned int reader_ticket, writer_ticket;
};

static void t_sleep_ms_local(int ms)
{
	usleep((useconds_t)ms * 1000);
}

static void *handoff_reader(void *arg)
{
	struct handoff *h = arg;

	down_read(&h->sem);
	h->reader_ticket = atomic_fetch_add(&h->ticket, 1);
	t_sleep_ms_local(5);
	up_read(&h->sem);
	return NULL;
}

static void *handoff_writer(void *arg)
{
	struct handoff *h = arg;

	down_write(&h->sem);
	h->writer_ticket = atomic_fetch_add(&h->ticket, 1);
	up_write(&h->sem);
	return NULL;
}

static bool wait_bits_ms(struct rw_semaphore *sem, uint32_t bits, int ms)
{
	for (int i = 0; i < ms * 10; i++) {
		if ((atomic_load(&sem->state) & bits) == bits)
			return true;
		usleep(100);
	}
	return false;
}

Test(rwsem, reader_handed_the_lock_before_a_waiting_writer)
{
	struct handoff h;
	pthread_t r, w;

	init_rwsem(&h.sem);
	atomic_init(&h.ticket, 1);
	down_write(&h.sem);
	cr_assert_eq(pthread_create(&r, NULL, handoff_reader, &h), 0);
	cr_assert(wait_bits_ms(&h.sem, RWSEM_SLEEPERS, 2000));
	cr_assert_eq(pthread_create(&w, NULL, handoff_writer, &h), 0);
	cr_assert(wait_bits_ms(&h.sem, RWSEM_WRITER_WAITING, 2000));
	/* The reader asks for the handoff by itself once it has waited long enough. */
	cr_assert(wait_bits_ms(&h.sem, RWSEM_READER_HANDOFF, 2000),
		  "no handoff after 2 s: state %#x", atomic_load(&h.sem.state));
	cr_assert_not(down_write_trylock(&h.sem));
	up_write(&h.sem);
	pthread_join(r, NULL);
	pthread_join(w, NULL);
	cr_assert_lt(h.reader_ticket, h.writer_ticket, "the waiting writer went first");
	cr_assert_eq(atomic_load(&h.sem.state) & ~RWSEM_SLEEPERS, 0);
}

/* A handoff holds writers off, trylock included, until a reader is in. */
Test(rwsem, handoff_blocks_writers_until_a_reader_is_in)
{
	struct rw_semaphore sem;

	init_rwsem(&sem);
	atomic_store(&sem.state, RWSEM_READER_HANDOFF | RWSEM_WRITER_WAITING);
	cr_assert_not(down_write_trylock(&sem), "a writer took a lock handed to readers");
	cr_assert_not(down_read_trylock_exclusive(&sem));
	/* A reader may pass the waiting writer and ends the handoff. */
	cr_assert(down_read_trylock(&sem));
	cr_assert_eq(atomic_load(&sem.state), RWSEM_WRITER_WAITING | 1);
	up_read(&sem);
	atomic_store(&sem.state, 0);
	cr_assert(down_write_trylock(&sem));
	up_write(&sem);
}

/* ---- optimistic spinning on a writer that holds it briefly ---- */

struct spin_pair {
	struct rw_semaphore sem;
	atomic_bool stop;
};

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Hold the lock for write ~2 us at a time, running all along. */
static void *brief_owner(void *arg)
{
	struct spin_pair *sp = arg;
	uint64_t t0;

	while (!atomic_load(&sp->stop)) {
		down_write(&sp->sem);
		for (t0 = now_ns(); now_ns() - t0 < 2000;)
			;
		up_write(&sp->sem);
		for (t0 = now_ns(); now_ns() - t0 < 2000;)
			;
	}
	return NULL;
}

/*
 * rwsem_optimistic_spin(): a writer (and a reader) behind a writer that
 * holds the lock for microseconds spins on the word and takes it awake,
 * instead of paying a futex sleep and wake-up per acquisition.
 */
Test(rwsem, spins_on_a_brief_writer)
{
	struct spin_pair sp;
	pthread_t t;
	uint64_t t0;
	int i;

	init_rwsem(&sp.sem);
	atomic_init(&sp.stop, false);
	cr_assert_eq(pthread_create(&t, NULL, brief_owner, &sp), 0);
	/*
	 * Until it has spun ten times (bounded: 3 s).  The owner must be
	 * running for a spin to pay off; with other tests on both CPUs it
	 * often is not, and then the spin gives up and sleeps, as it should.
	 */
	for (i = 0, t0 = now_ns(); now_ns() - t0 < 3000000000ull && atomic_load(&sp.sem.spun) < 10;
	     i++) {
		down_write(&sp.sem);
		up_write(&sp.sem);
		down_read(&sp.sem);
		up_read(&sp.sem);
	}
	atomic_store(&sp.stop, true);
	pthread_join(t, NULL);
	cr_assert_gt(atomic_load(&sp.sem.spun), 0, "never spun: %lu sleeps",
		     (unsigned long)atomic_load(&sp.sem.contended));
}
