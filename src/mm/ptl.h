/* SPDX-License-Identifier: MIT */
/*
 * ptl.h - page-table locks: the commit point of every fault path.
 *
 * The kernel's split PTE lock protects one page table, which maps 2 MiB on
 * x86-64.  uspf keeps a fixed array of spinlocks and hashes each 2 MiB of
 * address space to one of them: two page tables sharing a stripe only
 * serialise a little more, never less.
 *
 * A fault commits (UFFDIO_COPY / ZEROPAGE) holding the PTL of its address,
 * after revalidating what it speculated on.  A writer that zaps or changes
 * a range (munmap, mprotect, madvise, mremap) holds the PTLs of the whole
 * range across the real syscall, so a commit either lands before the zap or
 * sees the writer's sequence bump.
 */
#ifndef USPF_PTL_H
#define USPF_PTL_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#define PMD_SHIFT	21
#define PMD_SIZE	(1ul << PMD_SHIFT)
#define PMD_MASK	(~(PMD_SIZE - 1))
#define PTL_STRIPES	1024	/* power of two */

struct ptl_stripe {
	atomic_bool locked;
} __attribute__((aligned(64)));	/* one cacheline each: no false sharing */

struct ptl_table {
	struct ptl_stripe stripe[PTL_STRIPES];
};

static inline unsigned int ptl_index(unsigned long addr)
{
	unsigned long pmd = addr >> PMD_SHIFT;

	return (unsigned int)((pmd ^ (pmd >> 10)) & (PTL_STRIPES - 1));
}

/*
 * smp_wmb__before_spin_lock(): Arcangeli's barrier point (seed 003).  The
 * writer's vm_sequence store must be visible before it takes the PTL that a
 * speculative commit takes.  A release fence is a compiler barrier on x86
 * (stores are not reordered with later stores there), as the kernel's.
 */
static inline void smp_wmb__before_spin_lock(void)
{
	atomic_thread_fence(memory_order_release);
}

void ptl_init(struct ptl_table *t);
bool ptl_trylock(struct ptl_table *t, unsigned int idx);
void ptl_lock(struct ptl_table *t, unsigned int idx);
void ptl_unlock(struct ptl_table *t, unsigned int idx);
/*
 * One round of waiting for a held PTL, for a caller that polls it by
 * trylock (spf's pte_map_lock()): a pause, and every PTL_SPINS rounds a
 * sched_yield(), so that on a machine with fewer CPUs than threads a
 * waiter does not burn its quantum behind a preempted holder.
 */
void ptl_relax(unsigned int *spins);
/* sched_yield() calls made waiting for PTLs, process-wide (tests, debugging). */
uint64_t ptl_yields(void);

/* Every stripe covering [start, end), in ascending stripe order. */
void ptl_lock_range(struct ptl_table *t, unsigned long start, unsigned long end);
void ptl_unlock_range(struct ptl_table *t, unsigned long start, unsigned long end);
/* The stripes of two ranges, each stripe once, in ascending order. */
void ptl_lock_two_ranges(struct ptl_table *t, unsigned long s1, unsigned long e1,
			 unsigned long s2, unsigned long e2);
void ptl_unlock_two_ranges(struct ptl_table *t, unsigned long s1, unsigned long e1,
			   unsigned long s2, unsigned long e2);

#endif
