/* SPDX-License-Identifier: MIT */
/*
 * mm.c - struct uspf_mm set-up and find_vma().
 */
#include <errno.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "mm/mm.h"
#include "mm/file.h"
#include "mm/vma.h"

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

void torture_stall(uint64_t max_ns)
{
	static __thread uint64_t rng;
	uint64_t t0, ns;

	if (!rng)
		rng = (uint64_t)(uintptr_t)&rng ^ uspf_now_ns();
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	if (rng % 8)
		return;
	/* 20 us to max_ns: long enough for a writer's syscalls to run meanwhile. */
	ns = 20000 + (rng >> 8) % (max_ns - 20000);
	if ((rng >> 40) & 1) {
		sched_yield();
		return;
	}
	for (t0 = uspf_now_ns(); uspf_now_ns() - t0 < ns; )
		__builtin_ia32_pause();
}

static const char *const stall_names[NR_STALL_POINTS] = {
	[STALL_LOOKUP] = "lookup",
	[STALL_CHECKED] = "checked",
	[STALL_LOCKED] = "locked",
	[STALL_SNAPSHOT] = "snapshot",
	[STALL_FILLED] = "filled",
	[STALL_END_READ] = "end-read",
	[STALL_PROT_CHANGED] = "prot-changed",
};

const char *stall_point_name(enum stall_point p)
{
	return (unsigned int)p < NR_STALL_POINTS ? stall_names[p] : NULL;
}

void mm_stall(struct uspf_mm *mm, enum stall_point p)
{
	stall_fn fn = atomic_load_explicit(&mm->stall_fn, memory_order_acquire);
	uint64_t armed;

	if (fn) {
		fn(mm, p, mm->stall_arg);
		return;
	}
	armed = atomic_load_explicit(&mm->stall_armed, memory_order_relaxed);
	/*
	 * Inside up_read() the window must outlast a writer, the grace period
	 * and the callback worker's turn on a CPU: up to 2 ms there.
	 */
	if (!armed || (armed & (1ull << p)))
		torture_stall(p == STALL_END_READ ? 2000000 : 200000);
}

void mm_violation(struct uspf_mm *mm, const char *fmt, ...)
{
	va_list ap;

	if (atomic_fetch_add(&mm->violations, 1) == 0) {
		va_start(ap, fmt);
		vsnprintf(mm->violation, sizeof(mm->violation), fmt, ap);
		va_end(ap);
		atomic_thread_fence(memory_order_release);
		atomic_store(&mm->violation_ready, true);
	}
}

/*
 * The model's state invariants, checked with the mmap lock held for read
 * (no writer inside): no VMA is write-locked (the last unlock or downgrade
 * released them all), every VMA in the index is attached, even (no write
 * section left open), owned by this mm, with the index's range, ordered,
 * and for the refcount lock holds the attach reference and no writer's.
 */
void mm_check_invariants(struct uspf_mm *mm)
{
	unsigned long addr = 0, start, end, prev_end = 0;
	struct uspf_vma *vma;
	unsigned int seq, refs;
	size_t n = 0;

	/*
	 * Never wait for the lock: with a bug injected a writer can stay stuck
	 * behind a VMA lock for ever, holding mmap_lock, and the watchdog that
	 * calls this must go on to report it.  Checked on a later tick.
	 */
	if (!mmap_read_trylock(mm))
		return;
	seq = raw_read_seqcount(&mm->mm_lock_seq);
	if (seq & 1)
		mm_violation(mm, "mm_lock_seq %u is odd with no writer: VMA write locks "
			     "survived the last unlock or downgrade", seq);
	while ((vma = vma_index_find(&mm->index, addr, &start, &end))) {
		n++;
		if (vma_is_detached(vma))
			mm_violation(mm, "VMA [%#lx, %#lx) in the index but detached", start, end);
		if (vma->vm_mm != mm)
			mm_violation(mm, "VMA [%#lx, %#lx) in the index belongs to another mm",
				     start, end);
		if (vma->vm_start != start || vma->vm_end != end)
			mm_violation(mm, "VMA [%#lx, %#lx) indexed as [%#lx, %#lx)",
				     vma->vm_start, vma->vm_end, start, end);
		if (start < prev_end || start >= end)
			mm_violation(mm, "VMA [%#lx, %#lx) overlaps or is empty", start, end);
		if (raw_read_seqcount(&vma->vm_sequence) & 1)
			mm_violation(mm, "VMA [%#lx, %#lx) left inside a write section", start, end);
		if (vma_is_write_locked(vma, seq))
			mm_violation(mm, "VMA [%#lx, %#lx) write-locked with no writer", start, end);
		if (vma->vm_file && !vma_in_i_mmap(vma))
			mm_violation(mm, "file VMA [%#lx, %#lx) missing from its file's i_mmap",
				     start, end);
		if (mm->vma_lock && mm->vma_lock->typesafe_by_rcu) {
			refs = atomic_load(&vma->vm_refcnt);
			if (refs < 1 || refs >= 0x40000000u)
				mm_violation(mm, "VMA [%#lx, %#lx) attached with vm_refcnt %#x",
					     start, end, refs);
		}
		prev_end = end;
		addr = end;
	}
	if (n != vma_index_count(&mm->index))
		mm_violation(mm, "%zu VMAs reachable, the index counts %zu", n,
			     vma_index_count(&mm->index));
	mmap_read_unlock(mm);
}
