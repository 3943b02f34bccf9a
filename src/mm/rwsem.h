/* SPDX-License-Identifier: MIT */
/*
 * mm/rwsem.h - a reader/writer semaphore, as the kernel's struct rw_semaphore.
 *
 * One 32-bit word and a futex.  Writers are preferred: once a writer waits,
 * new readers wait too (the kernel's handoff keeps writers from starving;
 * this is the user-space equivalent).  And as the kernel's
 * RWSEM_FLAG_HANDOFF does for a waiter at the head of its queue, a reader
 * that has waited RWSEM_WAIT_TIMEOUT_NS sets RWSEM_READER_HANDOFF: no
 * writer may take the lock until a reader has, so free-running writers
 * cannot starve readers (a speculative fault's fallback) for ever.
 *
 * down_read_trylock_exclusive() is Arcangeli's primitive (seed 003): it
 * fails when the semaphore is held in either mode or a writer waits, and a
 * failed attempt writes no cacheline (a plain load decides).
 */
#ifndef USPF_RWSEM_H
#define USPF_RWSEM_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#define RWSEM_WRITER		0x80000000u	/* held for write */
#define RWSEM_WRITER_WAITING	0x40000000u	/* a writer waits: readers hold off */
#define RWSEM_SLEEPERS		0x20000000u	/* someone sleeps on the futex */
#define RWSEM_READER_HANDOFF	0x10000000u	/* a reader waited too long: writers hold off */
#define RWSEM_READER_MASK	0x0fffffffu	/* readers holding it */

/* mm/rwsem.c's RWSEM_WAIT_TIMEOUT: DIV_ROUND_UP(HZ, 250) jiffies, 4 ms. */
#define RWSEM_WAIT_TIMEOUT_NS	4000000ull

struct rw_semaphore {
	_Atomic uint32_t state;
	_Atomic uint64_t contended;	/* acquisitions that had to sleep */
	_Atomic uint64_t spun;		/* acquisitions that spun on a writer, and never slept */
};

/*
 * rwsem_optimistic_spin(): before sleeping behind a writer, spin on the
 * lock word - the kernel does while the owner runs (osq_lock, what Yu Ma
 * saw hot in seed 000).  User space cannot see whether the owner runs, so
 * the spin is bounded: a writer's hold is one system call or so.
 */
#define RWSEM_SPIN_NS		20000ull

void init_rwsem(struct rw_semaphore *sem);
void down_read(struct rw_semaphore *sem);
bool down_read_trylock(struct rw_semaphore *sem);
bool down_read_trylock_exclusive(struct rw_semaphore *sem);
void up_read(struct rw_semaphore *sem);
/*
 * up_read() in its two halves, for a caller that must show what happens
 * between them (the lock word released, a sleeper not yet woken: the
 * window in which a writer can take the lock and free the object the
 * semaphore lives in).  up_read() == up_read_wake(sem, up_read_release(sem)).
 */
uint32_t up_read_release(struct rw_semaphore *sem);
void up_read_wake(struct rw_semaphore *sem, uint32_t old);
void down_write(struct rw_semaphore *sem);
bool down_write_trylock(struct rw_semaphore *sem);
void up_write(struct rw_semaphore *sem);
void downgrade_write(struct rw_semaphore *sem);

static inline bool rwsem_is_locked(struct rw_semaphore *sem)
{
	return atomic_load_explicit(&sem->state, memory_order_relaxed) &
	       (RWSEM_WRITER | RWSEM_READER_MASK);
}

static inline bool rwsem_is_write_locked(struct rw_semaphore *sem)
{
	return atomic_load_explicit(&sem->state, memory_order_relaxed) & RWSEM_WRITER;
}

static inline unsigned int rwsem_readers(struct rw_semaphore *sem)
{
	return atomic_load_explicit(&sem->state, memory_order_relaxed) & RWSEM_READER_MASK;
}

#endif
