/* SPDX-License-Identifier: MIT */
/*
 * test_kernel_agrees.c - the model never disagrees with the kernel
 * (issue 12): VMA boundaries are the kernel's, a real call that fails
 * fails the API call and changes nothing, a move re-registers whatever
 * the kernel unregistered, partial application over holes is the
 * kernel's.  Each test checks the model against /proc/self/maps, read
 * here independently of the library's own kernel_maps.c, and checks the
 * bytes through real faults.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "tests/helpers.h"
#include "mm/vma.h"
#include "kernel_maps.h"
#include "runtime.h"

TestSuite(kernel, .timeout = 120);

#define RW (PROT_READ | PROT_WRITE)
#define ANON (MAP_PRIVATE | MAP_ANONYMOUS)

/* A reserved, inaccessible area for MAP_FIXED work; the caller unmaps it. */
static char *reserve(size_t pages)
{
	char *p = mmap(NULL, pages * T_PAGE, PROT_NONE, ANON, -1, 0);

	cr_assert_neq(p, MAP_FAILED);
	return p;
}

static sigjmp_buf segv_jmp;

static void on_segv(int sig)
{
	(void)sig;
	siglongjmp(segv_jmp, 1);
}

/* Does a write to p fault? */
static bool write_faults(volatile char *p)
{
	struct sigaction sa = { .sa_handler = on_segv }, old;
	bool faulted = false;

	sigaction(SIGSEGV, &sa, &old);
	if (sigsetjmp(segv_jmp, 1))
		faulted = true;
	else
		*p = *p;
	sigaction(SIGSEGV, &old, NULL);
	return faulted;
}

/* ---- kernel_maps.c: the PROCMAP_QUERY ioctl and the text say the same ---- */

Test(kernel, maps_query_and_text_agree)
{
	struct kernel_maps q, t;
	struct kernel_vma a, b;
	char *p = reserve(6);
	unsigned long addr;
	int i;

	cr_assert_eq(mprotect(p + 2 * T_PAGE, T_PAGE, PROT_READ | PROT_EXEC), 0);
	cr_assert_eq(munmap(p + 4 * T_PAGE, T_PAGE), 0);
	cr_assert_eq(kernel_maps_open(&q), 0);
	cr_assert_eq(kernel_maps_open(&t), 0);
	t.text = true;		/* what a kernel before 6.11 gets */
	for (i = 0; i < 6; i++) {
		addr = (unsigned long)p + (unsigned long)i * T_PAGE + 5;
		cr_assert_eq(kernel_vma_find(&q, addr, &a), 0);
		cr_assert_eq(kernel_vma_find(&t, addr, &b), 0);
		cr_assert(a.start == b.start && a.end == b.end && a.prot == b.prot,
			  "page %d: query %#lx-%#lx %d, text %#lx-%#lx %d", i, a.start, a.end,
			  a.prot, b.start, b.end, b.prot);
	}
	cr_assert_eq(kernel_vma_find(&q, (unsigned long)p + 2 * T_PAGE, &a), 0);
	cr_assert_eq(a.start, (unsigned long)p + 2 * T_PAGE);
	cr_assert_eq(a.end, (unsigned long)p + 3 * T_PAGE);
	cr_assert_eq(a.prot, PROT_READ | PROT_EXEC);
	/* In the hole: the next VMA above it. */
	cr_assert_eq(kernel_vma_find(&q, (unsigned long)p + 4 * T_PAGE, &a), 0);
	cr_assert_eq(a.start, (unsigned long)p + 5 * T_PAGE);
	/* Above every VMA: none. */
	cr_assert_eq(kernel_vma_find(&q, ~0ul - T_PAGE, &a), -ENOENT);
	cr_assert_eq(kernel_vma_find(&t, ~0ul - T_PAGE, &b), -ENOENT);
	kernel_maps_close(&q);
	kernel_maps_close(&t);
	munmap(p, 6 * T_PAGE);
}

/* ---- item 2: a move within one mapping keeps every piece registered ---- */

static int fill_fn(void *arg, void *dst, uint64_t offset, size_t len)
{
	(void)arg;
	for (size_t i = 0; i < len; i += T_PAGE)
		uspf_pattern_fill(3, (offset + i) / T_PAGE, (char *)dst + i);
	return 0;
}

ParameterizedTestParameters(kernel, mremap_fixed_within_one_mapping)
{
	static enum uspf_backing_kind kinds[] = { USPF_BACKING_PATTERN, USPF_BACKING_FILL };

	return cr_make_param_array(enum uspf_backing_kind, kinds, 2);
}

/*
 *   before:  [ 0 | 1 | 2 | 3 | 4 | 5 ]   one VMA, PROT_NONE, never touched
 *   move 2 onto 0 (MREMAP_FIXED): the kernel unmaps 0, copy_vma() merges
 *   the new page 0 with [1, 6) (an untouched range takes the page offset
 *   of its new address), mremap_userfaultfd_prep() unregisters the merged
 *   VMA, then page 2 leaves it:
 *   after:   [ 2'| 1 ]   [ 3 | 4 | 5 ]   both pieces unregistered
 *   uspf must register both again, or pages 3-5 read kernel zeros.
 */
ParameterizedTest(enum uspf_backing_kind *kind, kernel, mremap_fixed_within_one_mapping)
{
	struct uspf_backing b = { .kind = *kind };
	uint64_t gen = 3;
	struct uspf *u = t_runtime(USPF_POLICY_SPF, 1);
	char *base = reserve(6);
	void *p, *q;

	if (*kind == USPF_BACKING_PATTERN)
		b.pattern.generation = gen;
	else
		b.fill.fn = fill_fn;
	cr_assert_eq(uspf_mmap(u, base, 6 * T_PAGE, PROT_NONE, ANON | MAP_FIXED, &b, &p), 0);
	cr_assert_eq(uspf_mremap(u, base + 2 * T_PAGE, T_PAGE, T_PAGE, MREMAP_MAYMOVE | MREMAP_FIXED,
				 base, &q), 0);
	cr_assert_eq(q, base);
	cr_assert_eq(uspf_mprotect(u, base, 2 * T_PAGE, RW), 0);
	cr_assert_eq(uspf_mprotect(u, base + 3 * T_PAGE, 3 * T_PAGE, RW), 0);
	t_assert_pattern(base, T_PAGE, gen, 2);
	t_assert_pattern(base + T_PAGE, T_PAGE, gen, 1);
	t_assert_pattern(base + 3 * T_PAGE, 3 * T_PAGE, gen, 3);
	/* The kernel joined pages 2' and 1; the model keeps their offsets apart. */
	t_assert_boundaries(u, base, 6 * T_PAGE, false);
	uspf_destroy(u);
	munmap(base, 6 * T_PAGE);
}

/* ---- item 3: vm.max_map_count ---- */

/*
 * Fill this process's map count: a real mapping protected every other
 * page until the kernel refuses.  mprotect() refuses the split that would
 * pass the limit, so afterwards map_count == vm.max_map_count exactly.
 */
static char *fill_map_count(size_t *len)
{
	long max = 65530;
	FILE *f = fopen("/proc/sys/vm/max_map_count", "r");
	char *filler;
	size_t i;

	if (f) {
		cr_assert_eq(fscanf(f, "%ld", &max), 1);
		fclose(f);
	}
	*len = (size_t)(2 * max + 8) * T_PAGE;
	filler = mmap(NULL, *len, PROT_READ, ANON | MAP_NORESERVE, -1, 0);
	cr_assert_neq(filler, MAP_FAILED);
	for (i = 1; i < *len / T_PAGE; i += 2)
		if (mprotect(filler + i * T_PAGE, T_PAGE, PROT_NONE))
			break;
	cr_assert_eq(errno, ENOMEM, "the map count never filled (%zu splits)", i / 2);
	return filler;
}

/*
 * At vm.max_map_count every call that would cut a VMA in three is refused
 * by the kernel: uspf must return the kernel's ENOMEM and change nothing -
 * the data stays readable where uspf says it is mapped, and a page never
 * touched is still served.
 */
Test(kernel, max_map_count)
{
	struct uspf *u = t_runtime(USPF_POLICY_SPF, 1);
	char *p = t_map_pattern(u, 8 * T_PAGE, 7), *filler;
	struct uspf_vma *vma;
	size_t flen;
	void *q;

	t_assert_pattern(p, T_PAGE, 7, 0);		/* page 0 touched; the rest never */
	/* Warm the VMA cache: a split needs no new memory from the kernel later. */
	cr_assert_eq(uspf_mprotect(u, p + 2 * T_PAGE, T_PAGE, PROT_READ), 0);
	cr_assert_eq(uspf_mprotect(u, p + 2 * T_PAGE, T_PAGE, RW), 0);
	vma = t_vma_of(u, p);
	cr_assert_eq(vma->vm_end, (unsigned long)p + 8 * T_PAGE, "the mapping is one VMA again");

	filler = fill_map_count(&flen);
	cr_assert_eq(uspf_munmap(u, p + 3 * T_PAGE, T_PAGE), -ENOMEM);
	cr_assert_eq(uspf_mremap(u, p + 3 * T_PAGE, 2 * T_PAGE, T_PAGE, 0, NULL, &q), -ENOMEM);
	cr_assert_eq(uspf_mprotect(u, p + 3 * T_PAGE, T_PAGE, PROT_READ), -ENOMEM);
	cr_assert_eq(uspf_mmap(u, p + 3 * T_PAGE, T_PAGE, RW, ANON | MAP_FIXED, NULL, &q), -ENOMEM);
	/* Nothing changed: one VMA, every page there with its data. */
	vma = t_vma_of(u, p + 3 * T_PAGE);
	cr_assert_eq(vma->vm_start, (unsigned long)p);
	cr_assert_eq(vma->vm_end, (unsigned long)p + 8 * T_PAGE);
	cr_assert_eq(vma->vm_prot, RW);
	t_assert_pattern(p, 8 * T_PAGE, 7, 0);
	cr_assert(!write_faults(p + 3 * T_PAGE));
	/* Unmapping whole VMAs, or a VMA's tail, needs no new VMA: allowed at the limit. */
	cr_assert_eq(uspf_munmap(u, p + 7 * T_PAGE, T_PAGE), 0);
	cr_assert_eq(uspf_mremap(u, p, 7 * T_PAGE, 6 * T_PAGE, 0, NULL, &q), 0);
	munmap(filler, flen);
	/* With room again the refused calls succeed. */
	cr_assert_eq(uspf_munmap(u, p + 3 * T_PAGE, T_PAGE), 0);
	cr_assert(write_faults(p + 3 * T_PAGE));
	t_assert_boundaries(u, p, 6 * T_PAGE, true);
	uspf_destroy(u);
}

/* ---- item 6: a no-op or failed mremap leaves no split ---- */

Test(kernel, mremap_noop_or_failed_leaves_no_split)
{
	struct uspf *u = t_runtime(USPF_POLICY_PERVMA_RWSEM, 1);
	char *p = t_map_pattern(u, 8 * T_PAGE, 4);
	struct uspf_vma *vma;
	void *q;

	/* The same size: nothing to do, as mremap(2). */
	cr_assert_eq(uspf_mremap(u, p + T_PAGE, 2 * T_PAGE, 2 * T_PAGE, 0, NULL, &q), 0);
	cr_assert_eq(q, p + T_PAGE);
	/* Growing in place inside a VMA cannot be done without a move: ENOMEM. */
	cr_assert_eq(uspf_mremap(u, p + 2 * T_PAGE, 2 * T_PAGE, 3 * T_PAGE, 0, NULL, &q), -ENOMEM);
	vma = t_vma_of(u, p);
	cr_assert_eq(vma->vm_end, (unsigned long)p + 8 * T_PAGE, "the model kept a split");
	t_assert_boundaries(u, p, 8 * T_PAGE, true);
	/* And the whole mapping can still be moved in one call. */
	cr_assert_eq(uspf_mremap(u, p, 8 * T_PAGE, 9 * T_PAGE, MREMAP_MAYMOVE, NULL, &q), 0);
	t_assert_pattern(q, 8 * T_PAGE, 4, 0);
	uspf_destroy(u);
}

/* ---- item 7: the kernel's merges, both ways ---- */

/*
 * [ A: 2 pages | B: 3 pages, MAP_NORESERVE ]: the kernel keeps two VMAs
 * (VM_NORESERVE differs), so must the model; mprotect of both to
 * PROT_READ and back cannot join them either (nor VM_ACCOUNT, which A
 * keeps once it was writable).
 */
Test(kernel, noreserve_and_account_keep_vmas_apart)
{
	struct uspf *u = t_runtime(USPF_POLICY_SPF, 1);
	char *base = reserve(5);
	void *a, *b, *q;

	cr_assert_eq(uspf_mmap(u, base, 2 * T_PAGE, RW, ANON | MAP_FIXED, NULL, &a), 0);
	cr_assert_eq(uspf_mmap(u, base + 2 * T_PAGE, 3 * T_PAGE, RW,
			       ANON | MAP_FIXED | MAP_NORESERVE, NULL, &b), 0);
	cr_assert_eq(t_vma_of(u, base)->vm_end, (unsigned long)base + 2 * T_PAGE);
	t_assert_boundaries(u, base, 5 * T_PAGE, true);
	cr_assert_eq(uspf_mprotect(u, base, 5 * T_PAGE, PROT_READ), 0);
	t_assert_boundaries(u, base, 5 * T_PAGE, true);
	/* mremap(2) refuses a range across two VMAs: so does uspf. */
	cr_assert_eq(uspf_mremap(u, base, 5 * T_PAGE, 6 * T_PAGE, MREMAP_MAYMOVE, NULL, &q), -EFAULT);
	uspf_destroy(u);
	munmap(base, 5 * T_PAGE);
}

/*
 * An untouched anonymous mapping moved next to another one takes the
 * page offset of its new address (copy_vma()), so the kernel merges the
 * two: the model must too, and a mremap across both then succeeds.
 */
Test(kernel, moved_untouched_mapping_merges)
{
	struct uspf *u = t_runtime(USPF_POLICY_PERVMA_REFCNT, 1);
	char *base = reserve(8);
	void *a, *b, *q;

	cr_assert_eq(uspf_mmap(u, base, 2 * T_PAGE, RW, ANON | MAP_FIXED, NULL, &a), 0);
	cr_assert_eq(uspf_mmap(u, base + 5 * T_PAGE, 2 * T_PAGE, RW, ANON | MAP_FIXED, NULL, &b), 0);
	cr_assert_eq(uspf_mremap(u, b, 2 * T_PAGE, 2 * T_PAGE, MREMAP_MAYMOVE | MREMAP_FIXED,
				 base + 2 * T_PAGE, &q), 0);
	t_assert_boundaries(u, base, 4 * T_PAGE, true);
	cr_assert_eq(uspf_mremap(u, base, 4 * T_PAGE, 4 * T_PAGE, MREMAP_MAYMOVE | MREMAP_FIXED,
				 base + 4 * T_PAGE, &q), 0, "one VMA in the kernel: the move must work");
	base[4 * T_PAGE] = 1;
	cr_assert_eq(base[7 * T_PAGE], 0);
	uspf_destroy(u);
	munmap(base, 8 * T_PAGE);
}

/*
 *   Y = [2, 4): mapped, written (it gets an anon_vma), made read-only
 *   X = [0, 2): mapped beside it, read-write, then written: the kernel's
 *       anon_vma_prepare() reuses Y's anon_vma (find_mergeable_anon_vma()
 *       looks past the protections), the model gives X its own
 *   Y made read-write again: the kernel joins X and Y (one anon_vma);
 *   the model must join them too, or a mremap over both fails.
 */
Test(kernel, anon_vma_reused_across_protections)
{
	struct uspf *u = t_runtime(USPF_POLICY_SPF_ADAPTIVE, 1);
	char *base = reserve(8);
	void *x, *y, *q;

	cr_assert_eq(uspf_mmap(u, base + 2 * T_PAGE, 2 * T_PAGE, RW, ANON | MAP_FIXED, NULL, &y), 0);
	base[2 * T_PAGE] = 2;
	cr_assert_eq(uspf_mprotect(u, y, 2 * T_PAGE, PROT_READ), 0);
	cr_assert_eq(uspf_mmap(u, base, 2 * T_PAGE, RW, ANON | MAP_FIXED, NULL, &x), 0);
	base[0] = 1;
	t_assert_boundaries(u, base, 4 * T_PAGE, true);
	cr_assert_eq(uspf_mprotect(u, y, 2 * T_PAGE, RW), 0);
	t_assert_boundaries(u, base, 4 * T_PAGE, true);
	cr_assert_eq(uspf_mremap(u, base, 4 * T_PAGE, 4 * T_PAGE, MREMAP_MAYMOVE | MREMAP_FIXED,
				 base + 4 * T_PAGE, &q), 0, "one VMA in the kernel: the move must work");
	cr_assert_eq(base[4 * T_PAGE], 1);
	cr_assert_eq(base[6 * T_PAGE], 2);
	uspf_destroy(u);
	munmap(base, 8 * T_PAGE);
}

/* ---- item 8: partial application over holes, as the kernel ---- */

Test(kernel, mprotect_over_a_hole_changes_what_precedes_it)
{
	struct uspf *u = t_runtime(USPF_POLICY_MMAP_LOCK, 1);
	char *p = t_map_pattern(u, 4 * T_PAGE, 2);

	cr_assert_eq(uspf_munmap(u, p + 2 * T_PAGE, T_PAGE), 0);
	cr_assert_eq(uspf_mprotect(u, p, 4 * T_PAGE, PROT_READ), -ENOMEM);
	cr_assert_eq(t_vma_of(u, p)->vm_prot, PROT_READ, "pages before the hole change");
	cr_assert(write_faults(p + T_PAGE));
	cr_assert_eq(t_vma_of(u, p + 3 * T_PAGE)->vm_prot, RW, "pages after it do not");
	cr_assert(!write_faults(p + 3 * T_PAGE));
	/* Nothing mapped at the start: nothing changes. */
	cr_assert_eq(uspf_mprotect(u, p + 2 * T_PAGE, 2 * T_PAGE, PROT_READ), -ENOMEM);
	cr_assert_eq(t_vma_of(u, p + 3 * T_PAGE)->vm_prot, RW);
	t_assert_boundaries(u, p, 4 * T_PAGE, true);
	t_assert_pattern(p, 2 * T_PAGE, 2, 0);
	uspf_destroy(u);
}

Test(kernel, madvise_over_a_hole_applies_to_every_vma)
{
	struct uspf *u = t_runtime(USPF_POLICY_SPF, 1);
	char *p = t_map_pattern(u, 4 * T_PAGE, 5);

	cr_assert_eq(uspf_munmap(u, p + T_PAGE, T_PAGE), 0);
	p[0] = 1;
	p[3 * T_PAGE] = 1;
	cr_assert_eq(uspf_madvise(u, p, 4 * T_PAGE, MADV_DONTNEED), -ENOMEM);
	/* Both sides of the hole dropped their pages: they refill from the backing. */
	t_assert_pattern(p, T_PAGE, 5, 0);
	t_assert_pattern(p + 2 * T_PAGE, 2 * T_PAGE, 5, 2);
	uspf_destroy(u);
}

Test(kernel, mremap_shrink_across_vmas)
{
	struct uspf *u = t_runtime(USPF_POLICY_SPF, 1);
	char *p = t_map_pattern(u, 4 * T_PAGE, 6);
	void *q;

	cr_assert_eq(uspf_mprotect(u, p + T_PAGE, T_PAGE, PROT_READ), 0);
	cr_assert_eq(uspf_mremap(u, p, 4 * T_PAGE, T_PAGE, 0, NULL, &q), 0);
	cr_assert_eq(q, p);
	cr_assert(write_faults(p + T_PAGE));
	cr_assert(write_faults(p + 3 * T_PAGE));
	t_assert_pattern(p, T_PAGE, 6, 0);
	/* Nothing of uspf's at the old address: EFAULT, as mremap(2). */
	cr_assert_eq(uspf_mremap(u, p + T_PAGE, 2 * T_PAGE, T_PAGE, 0, NULL, &q), -EFAULT);
	uspf_destroy(u);
}

/*
 * Without /proc (a container that does not mount it), the writers cannot
 * ask: the model goes by its own merge rules, and a move still registers
 * every piece of the source again.
 */
Test(kernel, without_proc_the_model_rules)
{
	struct uspf_backing b = { .kind = USPF_BACKING_PATTERN, .pattern.generation = 8 };
	struct uspf *u = t_runtime(USPF_POLICY_SPF, 1);
	char *base = reserve(6), *p;
	void *q;

	kernel_maps_close(&u->kmaps);		/* what a failed open leaves */
	cr_assert_eq(uspf_mmap(u, base, 6 * T_PAGE, PROT_NONE, ANON | MAP_FIXED, &b, &q), 0);
	cr_assert_eq(uspf_mremap(u, base + 2 * T_PAGE, T_PAGE, T_PAGE, MREMAP_MAYMOVE | MREMAP_FIXED,
				 base, &q), 0);
	cr_assert_eq(uspf_mprotect(u, base, 2 * T_PAGE, RW), 0);
	cr_assert_eq(uspf_mprotect(u, base + 3 * T_PAGE, 3 * T_PAGE, RW), 0);
	t_assert_pattern(base, T_PAGE, 8, 2);
	t_assert_pattern(base + 3 * T_PAGE, 3 * T_PAGE, 8, 3);
	p = t_map_pattern(u, 4 * T_PAGE, 1);
	cr_assert_eq(uspf_mprotect(u, p + T_PAGE, T_PAGE, PROT_READ), 0);
	cr_assert_eq(uspf_mprotect(u, p + T_PAGE, T_PAGE, RW), 0);
	cr_assert_eq(t_vma_of(u, p)->vm_end, (unsigned long)p + 4 * T_PAGE, "the rules join them");
	t_assert_boundaries(u, p, 4 * T_PAGE, false);	/* the kernel may join a neighbour too */
	uspf_destroy(u);
	munmap(base, 6 * T_PAGE);
}
