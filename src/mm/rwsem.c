/* SPDX-License-Identifier: MIT */
/*
 * mm/rwsem.c - the mmap_lock's reader/writer semaphore: one 32-bit word and
 * futex(2), as the kernel's struct rw_semaphore is one atomic count and a
 * wait list.
 *
 * The word holds the reader count and three flags (see mm/rwsem.h).  Every
 * transition is one atomic read-modify-write on it; the uncontended lock
 * and unlock are one atomic op each and never enter the kernel.
 *
 * Sleeping.  A waiter first makes sure RWSEM_SLEEPERS (and, for a writer,
 * RWSEM_WRITER_WAITING) is set, with a CAS on the exact value it saw, then
 * calls FUTEX_WAIT with that value: if the word moved in between, the
 * kernel returns at once and the waiter looks again.  So while anyone
 * sleeps, SLEEPERS is set; a release that may let a sleeper in (up_write,
 * downgrade_write, the last up_read) clears it atomically and, if it was
 * set, wakes everyone.  Woken waiters re-evaluate and set the flags again
 * if they still must wait.  Spurious wake-ups are harmless; a lost one
 * cannot happen.  Acquirers never clear SLEEPERS, so a quiescent semaphore
 * reads 0.
 *
 * Writer preference: WRITER_WAITING stops new readers, so a writer waits
 * only for the readers already inside.  The writer that takes the lock
 * clears it; another waiting writer sets it again when it wakes.
 */
#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "mm/rwsem.h"

/* Readers may not enter while a writer holds or waits (unless handed off to). */
#define RWSEM_READ_BLOCKED	(RWSEM_WRITER | RWSEM_WRITER_WAITING)
/* A writer may not enter while anyone holds, or while a reader is handed the lock. */
#define RWSEM_WRITE_BLOCKED	(RWSEM_WRITER | RWSEM_READER_MASK | RWSEM_READER_HANDOFF)

static bool rwsem_read_blocked(uint32_t s)
{
	if (s & RWSEM_WRITER)
		return true;
	/* The handoff outranks a waiting writer: that is its point. */
	return (s & RWSEM_WRITER_WAITING) && !(s & RWSEM_READER_HANDOFF);
}

static uint64_t rwsem_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/*
 * The futex calls keep errno: the mmap_lock is taken inside interposed
 * libc calls, whose callers must not see a stray EAGAIN.
 */
static void rwsem_futex_wait(struct rw_semaphore *sem, uint32_t val, uint64_t timeout_ns)
{
	struct timespec ts = {
		.tv_sec = (time_t)(timeout_ns / 1000000000ull),
		.tv_nsec = (long)(timeout_ns % 1000000000ull),
	};
	int saved = errno;

	/* EAGAIN (the word moved), EINTR and ETIMEDOUT all mean: look again. */
	syscall(SYS_futex, (uint32_t *)&sem->state, FUTEX_WAIT_PRIVATE, val,
		timeout_ns ? &ts : NULL, NULL, 0);
	errno = saved;
}

static void rwsem_futex_wake(struct rw_semaphore *sem)
{
	int saved = errno;

	syscall(SYS_futex, (uint32_t *)&sem->state, FUTEX_WAKE_PRIVATE, INT_MAX,
		NULL, NULL, 0);
	errno = saved;
}

/*
 * Make sure `bits` are set in the word, then sleep until it changes.
 * Returns whether it went to FUTEX_WAIT (the kernel may still return at
 * once if the word moved); false when the word was not `seen` any more.
 * The caller re-evaluates either way.
 */
static bool rwsem_sleep(struct rw_semaphore *sem, uint32_t seen, uint32_t bits,
			uint64_t timeout_ns)
{
	uint32_t want = seen | bits;

	/* Already flagged: no store, so a flagged word stays bit-identical. */
	if (seen != want &&
	    !atomic_compare_exchange_strong_explicit(&sem->state, &seen, want,
						     memory_order_relaxed,
						     memory_order_relaxed))
		return false;
	rwsem_futex_wait(sem, want, timeout_ns);
	return true;
}

static void rwsem_count_contended(struct rw_semaphore *sem, bool slept)
{
	if (slept)
		atomic_fetch_add_explicit(&sem->contended, 1, memory_order_relaxed);
}

void init_rwsem(struct rw_semaphore *sem)
{
	atomic_init(&sem->state, 0);
	atomic_init(&sem->contended, 0);
	atomic_init(&sem->spun, 0);
}

/*
 * Spin while a writer holds the word (and nobody sleeps yet: a queue
 * means the wait is long), at most RWSEM_SPIN_NS.  True when the writer
 * let go while we spun; *s is the word as last seen.
 */
static bool rwsem_spin_on_writer(struct rw_semaphore *sem, uint32_t *s)
{
	uint64_t t0 = rwsem_now_ns();
	unsigned int i;

	for (i = 1; (*s & RWSEM_WRITER) && !(*s & RWSEM_SLEEPERS); i++) {
		__builtin_ia32_pause();
		if (!(i & 63) && rwsem_now_ns() - t0 > RWSEM_SPIN_NS)
			return false;
		*s = atomic_load_explicit(&sem->state, memory_order_relaxed);
	}
	return !(*s & RWSEM_WRITER);
}

static void rwsem_count_spun(struct rw_semaphore *sem, bool spun, bool slept)
{
	if (spun && !slept)
		atomic_fetch_add_explicit(&sem->spun, 1, memory_order_relaxed);
}

/*
 * One attempt to add a reader to a word seen as `*s`; updates *s on
 * failure.  The first reader in ends a handoff: from here writers wait for
 * the readers inside, as always.
 */
static bool rwsem_read_cas(struct rw_semaphore *sem, uint32_t *s)
{
	return atomic_compare_exchange_weak_explicit(&sem->state, s,
						     (*s + 1) & ~RWSEM_READER_HANDOFF,
						     memory_order_acquire,
						     memory_order_relaxed);
}

bool down_read_trylock(struct rw_semaphore *sem)
{
	uint32_t s = atomic_load_explicit(&sem->state, memory_order_relaxed);

	while (!rwsem_read_blocked(s)) {
		if (rwsem_read_cas(sem, &s))
			return true;
	}
	return false;
}

/*
 * rwsem_down_read_slowpath(): sleep until no writer holds or waits; after
 * RWSEM_WAIT_TIMEOUT_NS of that, ask for the lock to be handed over
 * (writers then wait for us; each up_write() wakes us to look again).
 */
void down_read(struct rw_semaphore *sem)
{
	uint32_t s = atomic_load_explicit(&sem->state, memory_order_relaxed);
	uint64_t since = 0, waited;
	bool slept = false, spun = false;

	for (;;) {
		if (!rwsem_read_blocked(s)) {
			if (rwsem_read_cas(sem, &s))
				break;
			continue;
		}
		/* Behind a writer that holds it (not one that waits): spin a while. */
		if (!spun && (s & RWSEM_WRITER)) {
			spun = true;
			if (rwsem_spin_on_writer(sem, &s))
				continue;
		}
		if (!since)
			since = rwsem_now_ns();
		waited = rwsem_now_ns() - since;
		/*
		 * Only behind a writer that holds it: behind readers, the
		 * waiting writer came first and goes first (in the kernel's
		 * queue it is the head, and the handoff would be its own).
		 */
		if ((s & RWSEM_WRITER) && !(s & RWSEM_READER_HANDOFF) &&
		    waited >= RWSEM_WAIT_TIMEOUT_NS) {
			/* Set, then look again at once: it may let us in now. */
			atomic_compare_exchange_weak_explicit(&sem->state, &s,
							      s | RWSEM_READER_HANDOFF,
							      memory_order_relaxed,
							      memory_order_relaxed);
			s = atomic_load_explicit(&sem->state, memory_order_relaxed);
			continue;
		}
		/* Wake at the deadline, if nothing else wakes us first. */
		slept |= rwsem_sleep(sem, s, RWSEM_SLEEPERS,
				     (s & RWSEM_READER_HANDOFF) || waited >= RWSEM_WAIT_TIMEOUT_NS ?
				     0 : RWSEM_WAIT_TIMEOUT_NS - waited);
		s = atomic_load_explicit(&sem->state, memory_order_relaxed);
	}
	rwsem_count_contended(sem, slept);
	rwsem_count_spun(sem, spun, slept);
}

/*
 * Arcangeli's down_read_if_not_hold(): take it for read only if nobody
 * holds it in any mode and no writer waits.  A plain load decides failure:
 * a failed CAS (lock cmpxchg) would still take the cacheline exclusive and
 * write it back, which is exactly the bouncing this primitive avoids.
 */
bool down_read_trylock_exclusive(struct rw_semaphore *sem)
{
	uint32_t s = atomic_load_explicit(&sem->state, memory_order_relaxed);

	while (!(s & (RWSEM_READ_BLOCKED | RWSEM_READER_MASK | RWSEM_READER_HANDOFF))) {
		if (rwsem_read_cas(sem, &s))
			return true;
	}
	return false;
}

uint32_t up_read_release(struct rw_semaphore *sem)
{
	return atomic_fetch_sub_explicit(&sem->state, 1, memory_order_release);
}

/* Still touches the lock word: the caller keeps the semaphore's memory alive. */
void up_read_wake(struct rw_semaphore *sem, uint32_t old)
{
	/* Only the last reader can let a sleeper (a writer) in. */
	if ((old & RWSEM_READER_MASK) != 1 || !(old & RWSEM_SLEEPERS))
		return;
	old = atomic_fetch_and_explicit(&sem->state, ~RWSEM_SLEEPERS,
					memory_order_relaxed);
	if (old & RWSEM_SLEEPERS)
		rwsem_futex_wake(sem);
}

void up_read(struct rw_semaphore *sem)
{
	up_read_wake(sem, up_read_release(sem));
}

/* One attempt to take a word seen as `*s` for write; updates *s on failure. */
static bool rwsem_write_cas(struct rw_semaphore *sem, uint32_t *s)
{
	/* Keep SLEEPERS: others may still sleep.  WRITER_WAITING is ours now. */
	uint32_t want = (*s & ~RWSEM_WRITER_WAITING) | RWSEM_WRITER;

	return atomic_compare_exchange_weak_explicit(&sem->state, s, want,
						     memory_order_acquire,
						     memory_order_relaxed);
}

bool down_write_trylock(struct rw_semaphore *sem)
{
	uint32_t s = atomic_load_explicit(&sem->state, memory_order_relaxed);

	while (!(s & RWSEM_WRITE_BLOCKED)) {
		if (rwsem_write_cas(sem, &s))
			return true;
	}
	return false;
}

void down_write(struct rw_semaphore *sem)
{
	uint32_t s = atomic_load_explicit(&sem->state, memory_order_relaxed);
	bool slept = false, spun = false;

	for (;;) {
		if (!(s & RWSEM_WRITE_BLOCKED)) {
			if (rwsem_write_cas(sem, &s))
				break;
			continue;
		}
		if (!spun && (s & RWSEM_WRITER)) {
			spun = true;
			if (rwsem_spin_on_writer(sem, &s))
				continue;
		}
		slept |= rwsem_sleep(sem, s, RWSEM_SLEEPERS | RWSEM_WRITER_WAITING, 0);
		s = atomic_load_explicit(&sem->state, memory_order_relaxed);
	}
	rwsem_count_contended(sem, slept);
	rwsem_count_spun(sem, spun, slept);
}

void up_write(struct rw_semaphore *sem)
{
	uint32_t old = atomic_fetch_and_explicit(&sem->state,
						 ~(RWSEM_WRITER | RWSEM_SLEEPERS),
						 memory_order_release);

	if (old & RWSEM_SLEEPERS)
		rwsem_futex_wake(sem);
}

/*
 * The writer becomes one reader without letting a writer in between.
 * Sleeping readers are woken; if another writer waits they find
 * WRITER_WAITING and sleep again (writer preference still holds).
 */
void downgrade_write(struct rw_semaphore *sem)
{
	uint32_t s = atomic_load_explicit(&sem->state, memory_order_relaxed);
	uint32_t want;

	do {
		want = (s & ~(RWSEM_WRITER | RWSEM_SLEEPERS)) + 1;
	} while (!atomic_compare_exchange_weak_explicit(&sem->state, &s, want,
							memory_order_release,
							memory_order_relaxed));
	if (s & RWSEM_SLEEPERS)
		rwsem_futex_wake(sem);
}
