/* SPDX-License-Identifier: MIT */
/*
 * mm.c - struct uspf_mm set-up and find_vma().
 */
#include <errno.h>
#include <string.h>
#include <time.h>

#include "mm.h"
#include "vma.h"

int mm_init(struct uspf_mm *mm, struct uffd *uffd, unsigned int hz, bool anon_vma_at_mmap,
	    unsigned int backoff_aborts, unsigned int backoff_jiffies)
{
	struct timespec ts;
	int ret;

	memset(mm, 0, sizeof(*mm));
	init_rwsem(&mm->mmap_lock);
	seqcount_init(&mm->mm_lock_seq);
	clock_gettime(CLOCK_MONOTONIC, &ts);
	ret = vma_index_init(&mm->index, (uint64_t)ts.tv_nsec ^ (uint64_t)(uintptr_t)mm);
	if (ret)
		return ret;
	pthread_spin_init(&mm->page_table_lock, PTHREAD_PROCESS_PRIVATE);
	mm->uffd = uffd;
	mm->hz = hz;
	mm->anon_vma_at_mmap = anon_vma_at_mmap;
	mm->spf_backoff_aborts = backoff_aborts;
	mm->spf_backoff_jiffies = backoff_jiffies;
	ptl_init(&mm->ptl);
	return 0;
}

void mm_destroy(struct uspf_mm *mm)
{
	vma_index_destroy(&mm->index);
	pthread_spin_destroy(&mm->page_table_lock);
}

struct uspf_vma *vma_lookup(struct uspf_mm *mm, unsigned long addr)
{
	return vma_index_lookup(&mm->index, addr);
}
