/* SPDX-License-Identifier: MIT */
/*
 * tests/mm/test_vma.c - VMA states (src/vma.c, the model side of src/mapping.c),
 * in the manner of the kernel's tools/testing/vma: one scenario per test,
 * the address space drawn before each step, the states asserted directly
 * (vm_sequence, detached, anon_vma sharing, the index, lifetimes).
 */
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <sys/mman.h>

#include "mm/call_rcu.h"
#include "tests/helpers.h"
#include "runtime.h"
#include "mm/vma.h"

TestSuite(vma, .timeout = 30);

static struct uspf_vma *vma_at(struct uspf *u, void *addr)
{
	return vma_lookup(&u->mm, (unsigned long)addr);
}

Test(vma, alloc_is_detached_and_even)
{
	struct uspf_mm mm;
	struct uspf_vma *vma;

	cr_assert_eq(vma_cache_init(), 0);
	cr_assert_eq(mm_init(&mm, NULL, 250, false, 8, 1), 0);
	vma = vm_area_alloc(&mm);
	cr_assert(vma);
	cr_assert(vma_is_detached(vma), "a new VMA is detached until inserted");
	cr_assert_eq(raw_read_seqcount(&vma->vm_sequence), 0);
	cr_assert_eq(vma->vm_mm, &mm);
	cr_assert_null(vma->anon_vma);
	vm_area_free(vma);
	mm_destroy(&mm);
}

Test(vma, write_section_makes_sequence_odd)
{
	struct uspf_mm mm;
	struct uspf_vma *vma;

	cr_assert_eq(vma_cache_init(), 0);
	cr_assert_eq(mm_init(&mm, NULL, 250, false, 8, 1), 0);
	mm.vm_sequence = true;		/* spf's writers keep it */
	vma = vm_area_alloc(&mm);
	mmap_write_lock(&mm);
	cr_assert(raw_read_seqcount(&mm.mm_lock_seq) & 1, "mm_lock_seq odd under the write lock");
	vm_write_begin(vma);
	cr_assert_eq(raw_read_seqcount(&vma->vm_sequence), 1);
	vm_write_end(vma);
	cr_assert_eq(raw_read_seqcount(&vma->vm_sequence), 2);
	mmap_write_unlock(&mm);
	cr_assert_not(raw_read_seqcount(&mm.mm_lock_seq) & 1);
	cr_assert_eq(atomic_load(&mm.vma_writes), 1);
	vm_area_free(vma);
	mm_destroy(&mm);
}

/* A policy without vm_sequence: its writers never touch it. */
Test(vma, no_sequence_no_write_section)
{
	struct uspf_mm mm;
	struct uspf_vma *vma;

	cr_assert_eq(vma_cache_init(), 0);
	cr_assert_eq(mm_init(&mm, NULL, 250, false, 8, 1), 0);
	vma = vm_area_alloc(&mm);
	mmap_write_lock(&mm);
	vm_write_begin(vma);
	cr_assert_eq(raw_read_seqcount(&vma->vm_sequence), 0);
	vm_write_end(vma);
	mmap_write_unlock(&mm);
	cr_assert_eq(raw_read_seqcount(&vma->vm_sequence), 0);
	cr_assert_eq(atomic_load(&mm.vma_writes), 0);
	vm_area_free(vma);
	mm_destroy(&mm);
}

/* vm_write_begin() without the mmap write lock is a bug: it traps. */
Test(vma, write_section_needs_mmap_write_lock, .signal = SIGILL)
{
	struct uspf_mm mm;
	struct uspf_vma *vma;

	cr_assert_eq(vma_cache_init(), 0);
	cr_assert_eq(mm_init(&mm, NULL, 250, false, 8, 1), 0);
	vma = vm_area_alloc(&mm);
	vm_write_begin(vma);
}

struct prep {
	struct uspf_mm *mm;
	struct uspf_vma *vma;
};

static void *prepare_racer(void *arg)
{
	struct prep *p = arg;

	mmap_read_lock(p->mm);
	cr_assert_eq(anon_vma_prepare(p->vma), 0);
	mmap_read_unlock(p->mm);
	return NULL;
}

/* Faults racing to prepare one VMA's anon_vma install exactly one. */
Test(vma, anon_vma_prepare_races_install_one)
{
	struct uspf_mm mm;
	struct prep p[8];
	size_t before;
	int i;

	cr_assert_eq(vma_cache_init(), 0);
	cr_assert_eq(mm_init(&mm, NULL, 250, false, 8, 1), 0);
	p[0].mm = &mm;
	p[0].vma = vm_area_alloc(&mm);
	for (i = 1; i < 8; i++)
		p[i] = p[0];
	before = anon_vma_in_use();
	t_run_threads(8, prepare_racer, p, sizeof(p[0]));
	cr_assert_not_null(p[0].vma->anon_vma);
	cr_assert_eq(anon_vma_in_use(), before + 1);
	cr_assert_eq(atomic_load(&p[0].vma->anon_vma->refcount), 1);
	vm_area_free(p[0].vma);
	mm_rcu_barrier();
	cr_assert_eq(anon_vma_in_use(), before);
	mm_destroy(&mm);
}

/*
 * 01234567
 * AAAAAAAA     one VMA, anon_vma prepared
 * AABBCCCC     mprotect of 2-3: split into three sharing one anon_vma,
 *              each page at its own pgoff; A's sequence moved
 * AAAAAAAA     mprotect back: merged into A, B and C detached
 */
Test(vma, split_and_merge_states)
{
	struct uspf *u = t_runtime(USPF_POLICY_SPF, 1);
	char *p = t_map_pattern(u, 8 * T_PAGE, 1);
	struct uspf_vma *a, *b, *c;
	unsigned int seq;

	p[0] = 1;	/* a write fault prepares the anon_vma */
	rcu_read_lock();
	a = vma_at(u, p);
	cr_assert_not_null(a->anon_vma);
	seq = raw_read_seqcount(&a->vm_sequence);
	rcu_read_unlock();

	cr_assert_eq(uspf_mprotect(u, p + 2 * T_PAGE, 2 * T_PAGE, PROT_READ), 0);
	rcu_read_lock();
	cr_assert_eq(vma_at(u, p), a);
	b = vma_at(u, p + 2 * T_PAGE);
	c = vma_at(u, p + 4 * T_PAGE);
	cr_assert(a != b && b != c && a != c);
	cr_assert_eq(a->vm_end, (unsigned long)p + 2 * T_PAGE);
	cr_assert_eq(b->vm_start, (unsigned long)p + 2 * T_PAGE);
	cr_assert_eq(b->vm_end, (unsigned long)p + 4 * T_PAGE);
	cr_assert_eq(c->vm_end, (unsigned long)p + 8 * T_PAGE);
	cr_assert_eq(b->vm_pgoff, 2);
	cr_assert_eq(c->vm_pgoff, 4);
	cr_assert_eq(b->vm_prot, PROT_READ);
	cr_assert_eq(c->vm_prot, PROT_READ | PROT_WRITE);
	cr_assert(a->anon_vma == b->anon_vma && b->anon_vma == c->anon_vma);
	cr_assert_eq(atomic_load(&a->anon_vma->refcount), 3);
	cr_assert_gt(raw_read_seqcount(&a->vm_sequence), seq, "the split moved A's sequence");
	cr_assert_not(raw_read_seqcount(&a->vm_sequence) & 1);
	cr_assert_not(vma_is_detached(a) || vma_is_detached(b) || vma_is_detached(c));
	rcu_read_unlock();

	rcu_read_lock();	/* b and c stay readable until a grace period after detach */
	cr_assert_eq(uspf_mprotect(u, p + 2 * T_PAGE, 2 * T_PAGE, PROT_READ | PROT_WRITE), 0);
	cr_assert_eq(vma_at(u, p + 5 * T_PAGE), a);
	cr_assert_eq(a->vm_end, (unsigned long)p + 8 * T_PAGE);
	cr_assert(vma_is_detached(b) && vma_is_detached(c));
	cr_assert_eq(atomic_load(&a->anon_vma->refcount), 3, "freed VMAs drop theirs later");
	rcu_read_unlock();
	mm_rcu_barrier();
	rcu_read_lock();
	cr_assert_eq(atomic_load(&vma_at(u, p)->anon_vma->refcount), 1);
	rcu_read_unlock();
	t_assert_pattern(p + T_PAGE, 7 * T_PAGE, 1, 1);
	uspf_destroy(u);
}

/*
 * 0123
 * AAAA    munmap: A erased from the index, then marked detached, then
 *         freed after a grace period - not before
 */
Test(vma, munmap_detaches_then_frees_after_grace_period)
{
	struct uspf *u = t_runtime(USPF_POLICY_SPF, 1);
	char *p = t_map_pattern(u, 4 * T_PAGE, 1);
	struct uspf_vma *a;
	size_t in_use;

	mm_rcu_barrier();
	in_use = vm_area_in_use();
	rcu_read_lock();
	a = vma_at(u, p);
	cr_assert_not(vma_is_detached(a));
	cr_assert_eq(uspf_munmap(u, p, 4 * T_PAGE), 0);
	cr_assert_null(vma_at(u, p));
	cr_assert(vma_is_detached(a));
	cr_assert_eq(a->vm_start, (unsigned long)p, "still a VMA inside the read section");
	cr_assert_eq(vm_area_in_use(), in_use);
	rcu_read_unlock();
	mm_rcu_barrier();
	cr_assert_eq(vm_area_in_use(), in_use - 1);
	uspf_destroy(u);
}

/* No VMA or anon_vma outlives its runtime. */
Test(vma, destroy_leaks_nothing)
{
	struct uspf *u;
	size_t vmas, avs;
	char *p;

	cr_assert_eq(vma_cache_init(), 0);
	mm_rcu_barrier();
	vmas = vm_area_in_use();
	avs = anon_vma_in_use();
	u = t_runtime(USPF_POLICY_MMAP_LOCK, 1);
	p = t_map_pattern(u, 16 * T_PAGE, 1);
	p[0] = 1;
	cr_assert_eq(uspf_mprotect(u, p + 4 * T_PAGE, 4 * T_PAGE, PROT_READ), 0);
	(void)t_map_pattern(u, 16 * T_PAGE, 2);
	uspf_destroy(u);
	cr_assert_eq(vm_area_in_use(), vmas);
	cr_assert_eq(anon_vma_in_use(), avs);
}
