/* SPDX-License-Identifier: MIT */
/*
 * tests/policy/test_mmap_lock.c - the classic path (src/policy_mmap_lock.c) on
 * real faults: anon_vma prepared once at the first write fault, the mmap
 * lock held across the whole fault, contention recorded.
 */
#include <string.h>
#include <sys/mman.h>

#include "tests/helpers.h"

TestSuite(mmap_lock, .timeout = 30);


/* Read faults need no anon_vma; the first write fault prepares it, once. */
Test(mmap_lock, anon_vma_prepared_once_at_first_write)
{
	struct uspf *u = t_runtime(USPF_POLICY_MMAP_LOCK, 1);
	char *p = t_map_pattern(u, 64 * T_PAGE, 6);
	size_t i;

	t_assert_pattern(p, 16 * T_PAGE, 6, 0);
	t_quiesce(u);
	cr_assert_eq(t_counter(u, USPF_C_ANON_VMA_PREPARE), 0);
	for (i = 16; i < 64; i++)
		p[i * T_PAGE + 9] = 1;
	t_quiesce(u);
	cr_assert_eq(t_counter(u, USPF_C_ANON_VMA_PREPARE), 1);
	cr_assert_eq(t_counter(u, USPF_C_MMAP_LOCK_FAULT), 64);
	cr_assert_eq(t_counter(u, USPF_C_SPF_ATTEMPT), 0);
	uspf_destroy(u);
}

/* VMAs split from one mapping share its anon_vma (anon_vma_clone()). */
Test(mmap_lock, split_vmas_share_anon_vma)
{
	struct uspf *u = t_runtime(USPF_POLICY_MMAP_LOCK, 1);
	char *p = t_map_pattern(u, 8 * T_PAGE, 6);

	p[0] = 1;	/* prepares the anon_vma */
	/*
	 * 01234567
	 * AAaaAAAA   a: read-only after the mprotect: three VMAs, one anon_vma
	 */
	cr_assert_eq(uspf_mprotect(u, p + 2 * T_PAGE, 2 * T_PAGE, PROT_READ), 0);
	p[5 * T_PAGE] = 1;
	t_assert_pattern(p + 2 * T_PAGE, 2 * T_PAGE, 6, 2);
	t_quiesce(u);
	cr_assert_eq(t_counter(u, USPF_C_ANON_VMA_PREPARE), 1);
	uspf_destroy(u);
}

/* The classic path holds mmap_lock while it fills: a writer waits for it. */
Test(mmap_lock, slow_fill_blocks_writers)
{
	cr_assert(t_writer_blocked_by_fill(USPF_POLICY_MMAP_LOCK));
}

/*
 * MADV_DONTNEED is no writer: the kernel zaps under the mmap lock held for
 * read, ordered against faults by the PTL.  A fault holding the lock for
 * read across a slow fill does not hold up a DONTNEED of another VMA (it
 * did when uspf took the write lock for it).
 */
Test(mmap_lock, dontneed_runs_beside_a_fault)
{
	cr_assert_not(t_dontneed_blocked_by_fill(USPF_POLICY_MMAP_LOCK));
}
