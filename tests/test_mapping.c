/* SPDX-License-Identifier: MIT */
/*
 * test_mapping.c - the writers (src/mapping.c): uspf_mmap, uspf_munmap,
 * uspf_mprotect, uspf_mremap, uspf_madvise, alone and racing faulting
 * threads.  Every race runs for a bounded time and checks every byte it
 * reads: no stale data, no lost wake-up (the suite's timeout), no crash.
 */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "tests/helpers.h"
#include "mm/vma.h"
#include "runtime.h"

TestSuite(mapping, .timeout = 60);

Test(mapping, bad_arguments)
{
	struct uspf *u = t_runtime(USPF_POLICY_SPF, 1);
	struct uspf_backing bad = { .kind = USPF_NR_BACKINGS };
	struct uspf_backing badfd = { .kind = USPF_BACKING_FILE, .file = { 9999, 0 } };
	struct uspf_backing badoff = { .kind = USPF_BACKING_FILE, .file = { 0, 100 } };
	struct uspf_backing nofn = { .kind = USPF_BACKING_FILL };
	int pa = PROT_READ | PROT_WRITE, fl = MAP_PRIVATE | MAP_ANONYMOUS;
	void *p, *q;

	cr_assert_eq(uspf_mmap(NULL, NULL, T_PAGE, pa, fl, NULL, &p), -EINVAL);
	cr_assert_eq(uspf_mmap(u, NULL, 0, pa, fl, NULL, &p), -EINVAL);
	cr_assert_eq(uspf_mmap(u, NULL, T_PAGE, pa, MAP_SHARED | MAP_ANONYMOUS, NULL, &p), -EINVAL);
	cr_assert_eq(uspf_mmap(u, NULL, T_PAGE, pa, fl | MAP_POPULATE, NULL, &p), -EINVAL);
	cr_assert_eq(uspf_mmap(u, NULL, T_PAGE, 0x100, fl, NULL, &p), -EINVAL);
	cr_assert_eq(uspf_mmap(u, NULL, T_PAGE, pa, fl, &bad, &p), -EINVAL);
	cr_assert_eq(uspf_mmap(u, NULL, T_PAGE, pa, fl, &badfd, &p), -EBADF);
	cr_assert_eq(uspf_mmap(u, NULL, T_PAGE, pa, fl, &badoff, &p), -EINVAL);
	cr_assert_eq(uspf_mmap(u, NULL, T_PAGE, pa, fl, &nofn, &p), -EINVAL);
	cr_assert_eq(uspf_mmap(u, (void *)0x1001, T_PAGE, pa, fl | MAP_FIXED, NULL, &p), -EINVAL);
	cr_assert_eq(uspf_mmap(u, NULL, T_PAGE, pa, fl, NULL, NULL), -EINVAL);

	p = t_map_pattern(u, 4 * T_PAGE, 1);
	cr_assert_eq(uspf_munmap(u, (char *)p + 1, T_PAGE), -EINVAL);
	cr_assert_eq(uspf_munmap(u, p, 0), -EINVAL);
	cr_assert_eq(uspf_mprotect(u, p, T_PAGE, 0x100), -EINVAL);
	cr_assert_eq(uspf_mprotect(u, p, 8 * T_PAGE, PROT_READ), -ENOMEM);	/* a hole */
	cr_assert_eq(uspf_madvise(u, p, T_PAGE, MADV_WILLNEED), -EINVAL);
	cr_assert_eq(uspf_madvise(u, p, 8 * T_PAGE, MADV_DONTNEED), -ENOMEM);
	cr_assert_eq(uspf_mremap(u, p, 0, T_PAGE, 0, NULL, &q), -EINVAL);
	cr_assert_eq(uspf_mremap(u, p, T_PAGE, T_PAGE, MREMAP_FIXED, (char *)p + T_PAGE, &q), -EINVAL);
	cr_assert_eq(uspf_mremap(u, p, 2 * T_PAGE, 2 * T_PAGE, MREMAP_MAYMOVE | MREMAP_FIXED,
				 (char *)p + T_PAGE, &q), -EINVAL);	/* overlapping move */
	cr_assert_eq(uspf_mremap(u, p, 8 * T_PAGE, 9 * T_PAGE, MREMAP_MAYMOVE, NULL, &q), -EFAULT);
	cr_assert_eq(uspf_mremap(u, p, T_PAGE, T_PAGE, 0x80, NULL, &q), -EINVAL);
	/* MREMAP_DONTUNMAP is a move (MREMAP_MAYMOVE), never a resize. */
	cr_assert_eq(uspf_mremap(u, p, T_PAGE, T_PAGE, MREMAP_DONTUNMAP, NULL, &q), -EINVAL);
	cr_assert_eq(uspf_mremap(u, p, T_PAGE, 2 * T_PAGE, MREMAP_MAYMOVE | MREMAP_DONTUNMAP,
				 NULL, &q), -EINVAL);
	cr_assert_eq(uspf_mremap(u, p, 2 * T_PAGE, T_PAGE, MREMAP_MAYMOVE | MREMAP_DONTUNMAP,
				 NULL, &q), -EINVAL);
	cr_assert_eq(uspf_mremap(u, p, T_PAGE, T_PAGE, MREMAP_FIXED | MREMAP_DONTUNMAP,
				 (char *)p + 2 * T_PAGE, &q), -EINVAL);
	/* Its new address, fixed or only a hint, is checked as mremap(2) does. */
	cr_assert_eq(uspf_mremap(u, p, 2 * T_PAGE, 2 * T_PAGE,
				 MREMAP_MAYMOVE | MREMAP_FIXED | MREMAP_DONTUNMAP,
				 (char *)p + T_PAGE, &q), -EINVAL);
	cr_assert_eq(uspf_mremap(u, p, 2 * T_PAGE, 2 * T_PAGE, MREMAP_MAYMOVE | MREMAP_DONTUNMAP,
				 (char *)p + T_PAGE, &q), -EINVAL);
	cr_assert_eq(uspf_mremap(u, p, T_PAGE, T_PAGE, MREMAP_MAYMOVE | MREMAP_DONTUNMAP,
				 (void *)0x1001, &q), -EINVAL);
	cr_assert_eq(uspf_mremap(u, p, 8 * T_PAGE, 8 * T_PAGE, MREMAP_MAYMOVE | MREMAP_DONTUNMAP,
				 NULL, &q), -EFAULT);
	/* MAP_FIXED_NOREPLACE wins over MAP_FIXED, as in the kernel. */
	cr_assert_eq(uspf_mmap(u, p, T_PAGE, pa, fl | MAP_FIXED | MAP_FIXED_NOREPLACE, NULL, &q), -EEXIST);
	/* Nothing was lost on the way. */
	t_assert_pattern(p, 4 * T_PAGE, 1, 0);
	uspf_destroy(u);
}

static uint64_t vmas(struct uspf *u)
{
	struct uspf_stats st;

	cr_assert_eq(uspf_stats(u, &st), 0);
	return st.vmas;
}

T_POLICY_PARAMS(mapping, munmap_middle_splits)
ParameterizedTest(enum uspf_policy_id *policy, mapping, munmap_middle_splits)
{
	struct uspf *u = t_runtime(*policy, 1);
	char *p = t_map_pattern(u, 8 * T_PAGE, 2);
	char page[T_PAGE];

	/*
	 * 01234567
	 * AAA..BBB   a hole in the middle: two VMAs, each page keeps its offset
	 */
	cr_assert_eq(uspf_munmap(u, p + 3 * T_PAGE, 2 * T_PAGE), 0);
	cr_assert_eq(vmas(u), 2);
	t_assert_pattern(p, 3 * T_PAGE, 2, 0);
	t_assert_pattern(p + 5 * T_PAGE, 3 * T_PAGE, 2, 5);
	t_segv_setup();
	cr_assert_not(t_copy_page_safe(p + 3 * T_PAGE, page));
	/* munmap over the hole and both pieces takes both. */
	cr_assert_eq(uspf_munmap(u, p, 8 * T_PAGE), 0);
	cr_assert_eq(vmas(u), 0);
	uspf_destroy(u);
}

T_POLICY_PARAMS(mapping, map_fixed_replaces)
ParameterizedTest(enum uspf_policy_id *policy, mapping, map_fixed_replaces)
{
	struct uspf *u = t_runtime(*policy, 1);
	struct uspf_backing b = { .kind = USPF_BACKING_PATTERN, .pattern.generation = 20 };
	char *p = t_map_pattern(u, 8 * T_PAGE, 10);
	void *q;

	t_assert_pattern(p, 8 * T_PAGE, 10, 0);
	/*
	 * 01234567
	 * AABBBBAA   B replaces the middle of A: its pages start at offset 0
	 */
	cr_assert_eq(uspf_mmap(u, p + 2 * T_PAGE, 4 * T_PAGE, PROT_READ | PROT_WRITE,
			       MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, &b, &q), 0);
	cr_assert_eq(q, p + 2 * T_PAGE);
	cr_assert_eq(vmas(u), 3);
	t_assert_pattern(p, 2 * T_PAGE, 10, 0);
	t_assert_pattern(p + 2 * T_PAGE, 4 * T_PAGE, 20, 0);
	t_assert_pattern(p + 6 * T_PAGE, 2 * T_PAGE, 10, 6);
	uspf_destroy(u);
}

T_POLICY_PARAMS(mapping, mprotect_and_madvise)
ParameterizedTest(enum uspf_policy_id *policy, mapping, mprotect_and_madvise)
{
	struct uspf *u = t_runtime(*policy, 1);
	char *p = t_map_pattern(u, 8 * T_PAGE, 3);
	char page[T_PAGE];

	p[0] = 'x';
	/*
	 * 01234567
	 * AA----AA   -: PROT_NONE
	 */
	cr_assert_eq(uspf_mprotect(u, p + 2 * T_PAGE, 4 * T_PAGE, PROT_NONE), 0);
	cr_assert_eq(vmas(u), 3);
	t_segv_setup();
	cr_assert_not(t_copy_page_safe(p + 3 * T_PAGE, page));
	cr_assert_eq(uspf_mprotect(u, p + 2 * T_PAGE, 4 * T_PAGE, PROT_READ), 0);
	t_assert_pattern(p + 2 * T_PAGE, 4 * T_PAGE, 3, 2);
	/* The same protection as the neighbours again: the three merge back into one. */
	cr_assert_eq(uspf_mprotect(u, p + 2 * T_PAGE, 4 * T_PAGE, PROT_READ | PROT_WRITE), 0);
	cr_assert_eq(vmas(u), 1);
	/* DONTNEED drops the written page: the next fault refills it from the backing. */
	cr_assert_eq(p[0], 'x');
	cr_assert_eq(uspf_madvise(u, p, 2 * T_PAGE, MADV_DONTNEED), 0);
	t_assert_pattern(p, 2 * T_PAGE, 3, 0);
	uspf_destroy(u);
}

T_POLICY_PARAMS(mapping, mremap_grow_shrink_move)
ParameterizedTest(enum uspf_policy_id *policy, mapping, mremap_grow_shrink_move)
{
	struct uspf *u = t_runtime(*policy, 1);
	char *p = t_map_pattern(u, 8 * T_PAGE, 4), *q, *r;
	void *out;

	p[T_PAGE] = 'y';	/* a present page travels with the move */
	/* Shrink in place. */
	cr_assert_eq(uspf_mremap(u, p, 8 * T_PAGE, 6 * T_PAGE, 0, NULL, &out), 0);
	cr_assert_eq(out, p);
	/* Move (and grow): missing pages keep their backing offsets. */
	cr_assert_eq(uspf_mremap(u, p, 6 * T_PAGE, 64 * T_PAGE, MREMAP_MAYMOVE, NULL, &out), 0);
	q = out;
	cr_assert_eq(q[T_PAGE], 'y');
	t_assert_pattern(q + 2 * T_PAGE, 62 * T_PAGE, 4, 2);
	cr_assert_eq(vmas(u), 1);
	/* Move to a fixed place over another mapping, which goes away. */
	r = t_map_pattern(u, 16 * T_PAGE, 5);
	cr_assert_eq(uspf_mremap(u, q, 64 * T_PAGE, 16 * T_PAGE, MREMAP_MAYMOVE | MREMAP_FIXED,
				 r, &out), 0);
	cr_assert_eq(out, r);
	cr_assert_eq(r[T_PAGE], 'y');
	t_assert_pattern(r + 2 * T_PAGE, 14 * T_PAGE, 4, 2);
	cr_assert_eq(vmas(u), 1);
	uspf_destroy(u);
}

/* The kernel's protection at addr, from /proc/self/maps; -1 if nothing is mapped there. */
static int kernel_prot(const void *addr)
{
	unsigned long a = (unsigned long)addr, s, e;
	char line[4096], perms[5];
	FILE *f = fopen("/proc/self/maps", "r");
	int prot = -1;

	cr_assert_not_null(f);
	while (prot < 0 && fgets(line, sizeof(line), f)) {
		if (sscanf(line, "%lx-%lx %4s", &s, &e, perms) != 3 || a < s || a >= e)
			continue;
		prot = (perms[0] == 'r' ? PROT_READ : 0) | (perms[1] == 'w' ? PROT_WRITE : 0) |
		       (perms[2] == 'x' ? PROT_EXEC : 0);
	}
	fclose(f);
	return prot;
}

static void assert_zero(const char *p, size_t len)
{
	for (size_t i = 0; i < len; i++)
		cr_assert_eq(p[i], 0, "byte %zu of %p is %#x", i, (void *)p, p[i] & 0xff);
}

static void assert_vma(struct uspf *u, void *addr, size_t len, int prot)
{
	struct uspf_vma *vma = t_vma_of(u, addr);

	cr_assert_not(vma_is_detached(vma));
	cr_assert_eq(vma->vm_start, (unsigned long)addr);
	cr_assert_eq(vma->vm_end, (unsigned long)addr + len);
	cr_assert_eq(vma->vm_prot, prot);
	cr_assert_eq(kernel_prot(addr), prot, "the kernel's protection at %p", addr);
}

/*
 * MREMAP_DONTUNMAP (move_vma()): the pages move, the old range stays
 * mapped with its protection and its registration, empty: its next
 * touches fault, and uspf serves them from the backing as after
 * MADV_DONTNEED.  The model keeps the old VMA attached and adds one.
 *
 * 01234567
 * RRRR....   R: read (4 present), 1 written; 4-7 never touched
 */
T_POLICY_PARAMS(mapping, mremap_dontunmap)
ParameterizedTest(enum uspf_policy_id *policy, mapping, mremap_dontunmap)
{
	struct uspf *u = t_runtime(*policy, 1);
	int rw = PROT_READ | PROT_WRITE;
	char *p = t_map_pattern(u, 8 * T_PAGE, 7), *q;
	struct uspf_vma *old, *moved;
	uint64_t faults;
	void *out;

	t_assert_pattern(p, 4 * T_PAGE, 7, 0);
	p[T_PAGE] = 'y';
	old = t_vma_of(u, p);
	cr_assert_eq(uspf_mremap(u, p, 8 * T_PAGE, 8 * T_PAGE, MREMAP_MAYMOVE | MREMAP_DONTUNMAP,
				 NULL, &out), 0);
	q = out;
	cr_assert_neq(q, p);
	cr_assert_eq(vmas(u), 2);
	cr_assert_eq(t_vma_of(u, p), old, "the old VMA stays");
	assert_vma(u, p, 8 * T_PAGE, rw);
	moved = t_vma_of(u, q);
	cr_assert_neq(moved, old);
	assert_vma(u, q, 8 * T_PAGE, rw);
	cr_assert_eq(moved->vm_pgoff, old->vm_pgoff);
	cr_assert_eq(moved->backing.pattern.generation, 7);
	/* The present pages moved: reading them takes no fault. */
	t_quiesce(u);
	faults = t_counter(u, USPF_C_FAULTS);
	t_assert_pattern(q, T_PAGE, 7, 0);
	cr_assert_eq(q[T_PAGE], 'y');
	t_assert_pattern(q + 2 * T_PAGE, 2 * T_PAGE, 7, 2);
	t_quiesce(u);
	cr_assert_eq(t_counter(u, USPF_C_FAULTS), faults);
	/* The missing ones fault where they went (registered again), at their offsets. */
	t_assert_pattern(q + 4 * T_PAGE, 4 * T_PAGE, 7, 4);
	t_quiesce(u);
	cr_assert_geq(t_counter(u, USPF_C_FAULTS), faults + 4);
	/* The old range faults afresh: the backing's contents, the written byte gone. */
	faults = t_counter(u, USPF_C_FAULTS);
	t_assert_pattern(p, 8 * T_PAGE, 7, 0);
	t_quiesce(u);
	cr_assert_geq(t_counter(u, USPF_C_FAULTS), faults + 8);
	/* Both writable, and independent. */
	p[0] = 'a';
	q[0] = 'b';
	cr_assert_eq(p[0], 'a');
	cr_assert_eq(q[0], 'b');
	cr_assert_eq(q[T_PAGE], 'y');
	uspf_destroy(u);
}

/*
 * MREMAP_DONTUNMAP | MREMAP_FIXED over another mapping, zero-filled
 * memory: the target takes the moved pages and the moved VMA's backing
 * (zeros where nothing was written, not the replaced mapping's pattern);
 * the old range reads zeros again.
 */
T_POLICY_PARAMS(mapping, mremap_dontunmap_fixed)
ParameterizedTest(enum uspf_policy_id *policy, mapping, mremap_dontunmap_fixed)
{
	struct uspf *u = t_runtime(*policy, 1);
	char *p = t_map(u, 4 * T_PAGE, NULL), *r = t_map_pattern(u, 4 * T_PAGE, 9);
	struct uspf_vma *old;
	uint64_t faults;
	void *out;

	memset(p, 0x5a, 2 * T_PAGE);
	t_assert_pattern(r, 4 * T_PAGE, 9, 0);
	old = t_vma_of(u, p);
	cr_assert_eq(uspf_mremap(u, p, 4 * T_PAGE, 4 * T_PAGE,
				 MREMAP_MAYMOVE | MREMAP_FIXED | MREMAP_DONTUNMAP, r, &out), 0);
	cr_assert_eq(out, r);
	cr_assert_eq(vmas(u), 2);
	cr_assert_eq(t_vma_of(u, p), old);
	assert_vma(u, p, 4 * T_PAGE, PROT_READ | PROT_WRITE);
	assert_vma(u, r, 4 * T_PAGE, PROT_READ | PROT_WRITE);
	cr_assert_eq(t_vma_of(u, r)->backing.kind, USPF_BACKING_ZERO);
	for (size_t i = 0; i < 2 * T_PAGE; i++)
		cr_assert_eq(r[i], 0x5a);
	assert_zero(r + 2 * T_PAGE, 2 * T_PAGE);
	t_quiesce(u);
	faults = t_counter(u, USPF_C_FAULTS);
	assert_zero(p, 4 * T_PAGE);
	t_quiesce(u);
	cr_assert_geq(t_counter(u, USPF_C_FAULTS), faults + 4);
	uspf_destroy(u);
}

/*
 * Part of a VMA, read-only: the model splits it to move the middle.
 * Whether the kernel joins the emptied middle to its neighbours again
 * depends on where the move landed (the layout around the mapping): the
 * model takes the kernel's boundaries either way.  Both ranges stay
 * PROT_READ (the move travels PROT_NONE).
 *
 * 01234567
 * AA....AA   the middle moves; A is one VMA or three, as the kernel's
 */
Test(mapping, mremap_dontunmap_part_read_only)
{
	struct uspf *u = t_runtime(USPF_POLICY_SPF, 1);
	char *p = t_map_pattern(u, 8 * T_PAGE, 11), *q;
	unsigned long pgoff;
	char page[T_PAGE];
	void *out;
	int i;

	cr_assert_eq(uspf_mprotect(u, p, 8 * T_PAGE, PROT_READ), 0);
	t_assert_pattern(p, 8 * T_PAGE, 11, 0);
	pgoff = t_vma_of(u, p)->vm_pgoff;
	cr_assert_eq(uspf_mremap(u, p + 2 * T_PAGE, 4 * T_PAGE, 4 * T_PAGE,
				 MREMAP_MAYMOVE | MREMAP_DONTUNMAP, NULL, &out), 0);
	q = out;
	t_assert_boundaries(u, p, 8 * T_PAGE, true);
	t_assert_boundaries(u, q, 4 * T_PAGE, true);
	for (i = 0; i < 8; i++)
		cr_assert_eq(t_vma_of(u, p + i * T_PAGE)->vm_prot, PROT_READ);
	assert_vma(u, q, 4 * T_PAGE, PROT_READ);
	cr_assert_eq(kernel_prot(p + 2 * T_PAGE), PROT_READ);
	cr_assert_eq(t_vma_of(u, q)->vm_pgoff, pgoff + 2);
	t_segv_setup();
	cr_assert(t_copy_page_safe(p + 3 * T_PAGE, page));
	t_assert_pattern(q, 4 * T_PAGE, 11, 2);
	t_assert_pattern(p, 8 * T_PAGE, 11, 0);
	uspf_destroy(u);
}

/*
 * Grow in place where the space after the mapping is free.  The space is
 * reserved first (a hole could be taken by any mmap, the runtime's own).
 */
Test(mapping, mremap_grow_in_place)
{
	struct uspf *u = t_runtime(USPF_POLICY_SPF, 1);
	char *res = mmap(NULL, 64 * T_PAGE, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	struct uspf_backing b = { .kind = USPF_BACKING_PATTERN, .pattern.generation = 6 };
	void *p, *out;

	cr_assert_neq(res, MAP_FAILED);
	cr_assert_eq(uspf_mmap(u, res, 8 * T_PAGE, PROT_READ | PROT_WRITE,
			       MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, &b, &p), 0);
	t_assert_pattern(p, 8 * T_PAGE, 6, 0);
	munmap(res + 8 * T_PAGE, 56 * T_PAGE);
	cr_assert_eq(uspf_mremap(u, p, 8 * T_PAGE, 16 * T_PAGE, 0, NULL, &out), 0);
	cr_assert_eq(out, p);
	t_assert_pattern(p, 16 * T_PAGE, 6, 0);
	cr_assert_eq(vmas(u), 1);
	uspf_destroy(u);
}

/*
 * A move that lands next to a registered mapping: the kernel may merge the
 * two (both PROT_NONE here - the neighbour between the two halves of an
 * mprotect, the moving range hidden - and M back where its page offsets
 * line up with N's) and then drops the registration of the merged VMA.
 * The neighbour's missing pages must still come from uspf once it is
 * accessible again, not read as kernel zeros.
 *
 * 0123456789abcdef   (a reserved range)
 * NNNNMMMM....PPPP   M moves onto the placeholder P, N goes PROT_NONE,
 * NNNNMMMM           then M moves back: N and M may become one kernel VMA
 */
T_POLICY_PARAMS(mapping, mremap_next_to_a_registered_neighbour)
ParameterizedTest(enum uspf_policy_id *policy, mapping, mremap_next_to_a_registered_neighbour)
{
	struct uspf *u = t_runtime(*policy, 1);
	struct uspf_backing b = { .kind = USPF_BACKING_PATTERN, .pattern.generation = 1 };
	char *res = mmap(NULL, 16 * T_PAGE, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	int fl = MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, rw = PROT_READ | PROT_WRITE;
	void *n, *m, *pl, *out;

	cr_assert_neq(res, MAP_FAILED);
	cr_assert_eq(uspf_mmap(u, res, 4 * T_PAGE, rw, fl, &b, &n), 0);
	b.pattern.generation = 2;
	cr_assert_eq(uspf_mmap(u, res + 4 * T_PAGE, 4 * T_PAGE, rw, fl, &b, &m), 0);
	b.pattern.generation = 3;
	cr_assert_eq(uspf_mmap(u, res + 12 * T_PAGE, 4 * T_PAGE, rw, fl, &b, &pl), 0);
	cr_assert_eq(uspf_mremap(u, m, 4 * T_PAGE, 4 * T_PAGE, MREMAP_MAYMOVE | MREMAP_FIXED,
				 pl, &out), 0);
	cr_assert_eq(uspf_mprotect(u, n, 4 * T_PAGE, PROT_NONE), 0);
	cr_assert_eq(uspf_mremap(u, pl, 4 * T_PAGE, 4 * T_PAGE, MREMAP_MAYMOVE | MREMAP_FIXED,
				 m, &out), 0);
	cr_assert_eq(uspf_mprotect(u, n, 4 * T_PAGE, rw), 0);
	t_assert_pattern(n, 4 * T_PAGE, 1, 0);
	t_assert_pattern(m, 4 * T_PAGE, 2, 0);
	uspf_destroy(u);
	munmap(res, 16 * T_PAGE);
}

/* 50,000 VMAs map and unmap (the index must not go quadratic). */
Test(mapping, many_vmas)
{
	struct uspf *u = t_runtime(USPF_POLICY_SPF, 1);
	enum { N = 50000 };
	void **v = calloc(N, sizeof(*v));
	size_t i;

	for (i = 0; i < N; i++)
		v[i] = t_map_pattern(u, T_PAGE, i);
	cr_assert_eq(vmas(u), N);
	for (i = 0; i < N; i += 997)
		t_assert_pattern(v[i], T_PAGE, i, 0);
	for (i = 0; i < N; i++)
		cr_assert_eq(uspf_munmap(u, v[i], T_PAGE), 0);
	cr_assert_eq(vmas(u), 0);
	free(v);
	uspf_destroy(u);
}

/*
 * Writers against faulting threads.  A writer churns chunks of one region
 * (MAP_FIXED remaps with a new generation, mprotect, DONTNEED, mremap away
 * and back, with and without MREMAP_DONTUNMAP); readers read random pages
 * and check them against the generation the chunk had.  A chunk's
 * generation is published seqlock style: when it did not change across a
 * read, the page must be exactly that generation's - stale data from a
 * speculative commit that missed a writer shows here.  Reads that hit a
 * chunk while it is PROT_NONE or away are tolerated (SIGSEGV caught), never
 * wrong bytes.
 */
#define CHURN_CHUNKS	16
#define CHURN_CHUNK	(16 * T_PAGE)

struct churn {
	struct uspf *u;
	char *loc[CHURN_CHUNKS];	/* where the chunk lives */
	char *alt[CHURN_CHUNKS];	/* a placeholder mapping it can move onto, or NULL */
	uint64_t seq[CHURN_CHUNKS];	/* odd while the chunk changes */
	uint64_t gen[CHURN_CHUNKS];
	bool dead[CHURN_CHUNKS];	/* its place was taken: no longer used */
	uint64_t deadline;
	unsigned long reads, checked, tolerated;
	int bad;
	unsigned int seed;
};

static void *churn_reader(void *arg)
{
	struct churn *c = arg;
	unsigned int seed = __atomic_add_fetch(&c->seed, 7919, __ATOMIC_RELAXED);
	char page[T_PAGE];

	while (t_now_ns() < c->deadline && !c->bad) {
		unsigned int ch = (unsigned int)rand_r(&seed) % CHURN_CHUNKS;
		unsigned int pg = (unsigned int)rand_r(&seed) % (CHURN_CHUNK / T_PAGE);
		uint64_t s1 = __atomic_load_n(&c->seq[ch], __ATOMIC_ACQUIRE);
		uint64_t g = __atomic_load_n(&c->gen[ch], __ATOMIC_ACQUIRE);
		char *a = __atomic_load_n(&c->loc[ch], __ATOMIC_ACQUIRE);
		bool ok;
		uint64_t s2;

		if (__atomic_load_n(&c->dead[ch], __ATOMIC_ACQUIRE))
			continue;
		ok = t_copy_page_safe(a + pg * T_PAGE, page);
		s2 = __atomic_load_n(&c->seq[ch], __ATOMIC_ACQUIRE);
		__atomic_add_fetch(&c->reads, 1, __ATOMIC_RELAXED);
		if (!ok) {
			if (s1 == s2 && !(s1 & 1))
				c->bad = 2;	/* a fault on a chunk nobody was changing */
			__atomic_add_fetch(&c->tolerated, 1, __ATOMIC_RELAXED);
			continue;
		}
		if (s1 != s2 || (s1 & 1))
			continue;
		__atomic_add_fetch(&c->checked, 1, __ATOMIC_RELAXED);
		if (!uspf_pattern_check(g, pg, page))
			c->bad = 1;
	}
	return NULL;
}

static int churn_map(struct churn *c, char *a, uint64_t gen, int flags)
{
	struct uspf_backing b = { .kind = USPF_BACKING_PATTERN, .pattern.generation = gen };
	void *out;

	return uspf_mmap(c->u, a, CHURN_CHUNK, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS | flags, &b, &out);
}

/*
 * One writer step on a chunk.  A program may only reuse address space it
 * still owns: after an munmap or a move the hole may already belong to
 * someone else (the runtime's own allocations included), so refills use
 * MAP_FIXED_NOREPLACE, and a chunk whose place was taken is retired.
 */
static void churn_one(struct churn *c, unsigned int ch, unsigned int op, uint64_t *next_gen)
{
	char *a = c->loc[ch], *alt = c->alt[ch];
	int rw = PROT_READ | PROT_WRITE;
	uint64_t g;
	void *out;
	int ret;

	if (c->dead[ch])
		return;
	__atomic_add_fetch(&c->seq[ch], 1, __ATOMIC_ACQ_REL);
	switch (op) {
	case 0:	/* munmap, then map it again with a new generation */
		g = (*next_gen)++;
		cr_assert_eq(uspf_munmap(c->u, a, CHURN_CHUNK), 0);
		if (churn_map(c, a, g, MAP_FIXED_NOREPLACE))
			__atomic_store_n(&c->dead[ch], true, __ATOMIC_RELEASE);
		__atomic_store_n(&c->gen[ch], g, __ATOMIC_RELEASE);
		break;
	case 1:	/* MAP_FIXED straight over the old one */
		g = (*next_gen)++;
		cr_assert_eq(churn_map(c, a, g, MAP_FIXED), 0);
		__atomic_store_n(&c->gen[ch], g, __ATOMIC_RELEASE);
		break;
	case 2:	/* mprotect away and back */
		cr_assert_eq(uspf_mprotect(c->u, a, CHURN_CHUNK, PROT_NONE), 0);
		cr_assert_eq(uspf_mprotect(c->u, a, CHURN_CHUNK, rw), 0);
		break;
	case 3:	/* DONTNEED: the pages refill with the same contents */
		cr_assert_eq(uspf_madvise(c->u, a, CHURN_CHUNK, MADV_DONTNEED), 0);
		break;
	case 4:	/* mremap onto the placeholder; a new placeholder where it was */
		if (!alt)
			break;
		ret = uspf_mremap(c->u, a, CHURN_CHUNK, CHURN_CHUNK, MREMAP_MAYMOVE | MREMAP_FIXED,
				  alt, &out);
		/*
		 * The kernel's: the chunk's halves were faulted while split by
		 * an mprotect, got anon_vmas of their own and never merged
		 * back, and mremap moves one VMA only.  Nothing changed.
		 */
		if (ret == -EFAULT)
			break;
		cr_assert_eq(ret, 0, "mremap %p -> %p: %s", a, alt, strerror(-ret));
		__atomic_store_n(&c->loc[ch], alt, __ATOMIC_RELEASE);
		c->alt[ch] = churn_map(c, a, 0, MAP_FIXED_NOREPLACE) ? NULL : a;
		break;
	case 5:	/* mprotect half: a split, then the same protection again */
		cr_assert_eq(uspf_mprotect(c->u, a, CHURN_CHUNK / 2, PROT_READ), 0);
		cr_assert_eq(uspf_mprotect(c->u, a, CHURN_CHUNK / 2, rw), 0);
		break;
	case 6:	/* mremap DONTUNMAP onto the placeholder; the emptied place is the new one */
		if (!alt)
			break;
		ret = uspf_mremap(c->u, a, CHURN_CHUNK, CHURN_CHUNK,
				  MREMAP_MAYMOVE | MREMAP_FIXED | MREMAP_DONTUNMAP, alt, &out);
		if (ret == -EFAULT)
			break;	/* split in VMAs, as in case 4 */
		cr_assert_eq(ret, 0, "mremap dontunmap %p -> %p: %s", a, alt, strerror(-ret));
		__atomic_store_n(&c->loc[ch], alt, __ATOMIC_RELEASE);
		c->alt[ch] = a;
		break;
	}
	__atomic_add_fetch(&c->seq[ch], 1, __ATOMIC_ACQ_REL);
}

static void churn_run(enum uspf_policy_id policy, unsigned int fault_around, bool anon_at_mmap)
{
	struct uspf_config cfg;
	struct churn c = { 0 };
	pthread_t r[3];
	uint64_t next_gen = CHURN_CHUNKS + 1;
	unsigned int i, seed = 12345, ops = 0;
	char *base;

	uspf_config_init(&cfg);
	cfg.policy = policy;
	cfg.handlers = 2;
	cfg.folio_pages = fault_around;
	cfg.anon_vma_at_mmap = anon_at_mmap;
	c.u = t_runtime_cfg(&cfg);
	/* Chunks and their placeholders, interleaved, each its own VMA and generation. */
	base = t_map_pattern(c.u, 2 * CHURN_CHUNKS * CHURN_CHUNK, 0);
	for (i = 0; i < CHURN_CHUNKS; i++) {
		c.loc[i] = base + 2 * i * CHURN_CHUNK;
		c.alt[i] = c.loc[i] + CHURN_CHUNK;
		c.gen[i] = i + 1;
		cr_assert_eq(churn_map(&c, c.loc[i], i + 1, MAP_FIXED), 0);
	}
	t_segv_setup();
	c.deadline = t_now_ns() + 1000000000ull;
	for (i = 0; i < 3; i++)
		cr_assert_eq(pthread_create(&r[i], NULL, churn_reader, &c), 0);
	while (t_now_ns() < c.deadline && !c.bad) {
		churn_one(&c, (unsigned int)rand_r(&seed) % CHURN_CHUNKS,
			  (unsigned int)rand_r(&seed) % 7, &next_gen);
		ops++;
	}
	for (i = 0; i < 3; i++)
		pthread_join(r[i], NULL);
	cr_assert_eq(c.bad, 0, "%s: %s after %u writer ops, %lu reads",
		     uspf_policy_name(policy),
		     c.bad == 1 ? "wrong bytes" : "a fault on a stable chunk", ops, c.reads);
	cr_assert_gt(c.checked, 100, "only %lu reads checked", c.checked);
	cr_assert_gt(ops, 10);
	uspf_destroy(c.u);
}

T_POLICY_PARAMS(mapping, churn_against_faults)
ParameterizedTest(enum uspf_policy_id *policy, mapping, churn_against_faults)
{
	churn_run(*policy, 1, false);
}

T_POLICY_PARAMS(mapping, churn_against_faults_fault_around)
ParameterizedTest(enum uspf_policy_id *policy, mapping, churn_against_faults_fault_around)
{
	churn_run(*policy, 8, true);
}

/*
 * Issue 12, item 4: a new length that wraps to 0 when rounded up to a page
 * (SIZE_MAX) is EINVAL, as in the kernel - not a shrink that unmaps.
 */
Test(mapping, mremap_wrapping_length_is_einval)
{
	struct uspf *u = t_runtime(USPF_POLICY_SPF, 1);
	char *p = t_map_pattern(u, 2 * T_PAGE, 4);
	void *out = NULL;

	t_assert_pattern(p, T_PAGE, 4, 0);
	cr_assert_eq(uspf_mremap(u, p, T_PAGE, SIZE_MAX, MREMAP_MAYMOVE, NULL, &out), -EINVAL);
	cr_assert_eq(uspf_mremap(u, p, SIZE_MAX, T_PAGE, MREMAP_MAYMOVE, NULL, &out), -EINVAL);
	/* Nothing changed: both pages are there, with their bytes. */
	t_assert_pattern(p, 2 * T_PAGE, 4, 0);
	cr_assert_eq(t_counter(u, USPF_C_FAULTS) >= 1, true);
	uspf_destroy(u);
}

T_POLICY_PARAMS(mapping, writers_pay_their_policys_costs);

/*
 * Writer work per policy (issue 14): the same churn of mmap, partial
 * mprotect, mremap and munmap under each policy.  Only spf's writers keep
 * Dufour's vm_sequence (vma_writes counts its write sections); only the
 * per-VMA policies write-lock VMAs (their vm_lock_seq moves); mmap-lock
 * and spf-adaptive pay for neither.
 */
ParameterizedTest(enum uspf_policy_id *policy, mapping, writers_pay_their_policys_costs)
{
	struct uspf *u = t_runtime(*policy, 1);
	bool seq = *policy == USPF_POLICY_SPF || *policy == USPF_POLICY_SPF_V12;
	bool vma_locks = *policy == USPF_POLICY_PERVMA_RWSEM || *policy == USPF_POLICY_PERVMA_REFCNT;
	struct uspf_vma *vma;
	unsigned int seq_left = 0;
	void *q;
	int i;

	for (i = 0; i < 50; i++) {
		char *p = t_map_pattern(u, 8 * T_PAGE, 1);

		p[0] = 1;
		cr_assert_eq(uspf_mprotect(u, p + 2 * T_PAGE, 2 * T_PAGE, PROT_READ), 0);
		vma = t_vma_of(u, p);
		seq_left |= raw_read_seqcount(&vma->vm_sequence);
		if (vma_locks)
			cr_assert_neq(atomic_load(&vma->vm_lock_seq), UINT_MAX,
				      "%s: a changed VMA was never write-locked", uspf_policy_name(*policy));
		else
			cr_assert_eq(atomic_load(&vma->vm_lock_seq), UINT_MAX,
				     "%s: a VMA was write-locked", uspf_policy_name(*policy));
		cr_assert_eq(uspf_mremap(u, p, 2 * T_PAGE, 3 * T_PAGE, MREMAP_MAYMOVE, NULL, &q), 0);
		cr_assert_eq(uspf_munmap(u, q, 3 * T_PAGE), 0);
		cr_assert_eq(uspf_munmap(u, p + 2 * T_PAGE, 6 * T_PAGE), 0);
	}
	if (seq) {
		cr_assert_gt(t_counter(u, USPF_C_VMA_WRITES), 100);
		cr_assert_neq(seq_left, 0, "spf's writers left no trace in vm_sequence");
	} else {
		cr_assert_eq(t_counter(u, USPF_C_VMA_WRITES), 0, "%s's writers paid spf's vm_sequence",
			     uspf_policy_name(*policy));
		cr_assert_eq(seq_left, 0);
	}
	uspf_destroy(u);
}

/* ---- lock-free readers never see a hole where memory stayed mapped ---- */

struct hole_reader {
	struct uspf *u;
	char *p;
	atomic_bool stop;
	unsigned long lookups, holes;
};

static void *hole_reader_thread(void *arg)
{
	struct hole_reader *r = arg;
	unsigned long k;

	rcu_register_thread();
	while (!atomic_load(&r->stop)) {
		for (k = 0; k < 8; k++) {
			rcu_read_lock();
			if (!vma_lookup(&r->u->mm, (unsigned long)r->p + k * T_PAGE))
				r->holes++;
			rcu_read_unlock();
			r->lookups++;
		}
	}
	rcu_unregister_thread();
	return NULL;
}

/*
 *   01234567   one VMA; the writer splits it (mprotect of one page) and
 *   AAAaAAAA   merges it back, again and again, while a reader looks up
 *              every page under RCU alone, as a speculative fault does
 *
 * __split_vma() and vma_merge() replace maple tree nodes: a reader sees
 * the tree before or after, never a range with no VMA.  So must it here.
 */
Test(mapping, split_and_merge_show_readers_no_hole)
{
	struct hole_reader r = { .u = t_runtime(USPF_POLICY_SPF, 1) };
	pthread_t t;
	int i;

	r.p = t_map_pattern(r.u, 8 * T_PAGE, 1);
	cr_assert_eq(pthread_create(&t, NULL, hole_reader_thread, &r), 0);
	for (i = 0; i < 3000; i++) {
		char *page = r.p + (i % 8) * T_PAGE;

		cr_assert_eq(uspf_mprotect(r.u, page, T_PAGE, PROT_READ), 0);
		cr_assert_eq(uspf_mprotect(r.u, page, T_PAGE, PROT_READ | PROT_WRITE), 0);
	}
	atomic_store(&r.stop, true);
	pthread_join(t, NULL);
	cr_assert_gt(r.lookups, 0);
	cr_assert_eq(r.holes, 0, "%lu of %lu lookups found no VMA at a mapped address",
		     r.holes, r.lookups);
	t_assert_pattern(r.p, 8 * T_PAGE, 1, 0);
	uspf_destroy(r.u);
}

/* ---- mremap(MREMAP_FIXED) locks its two ranges' page tables, no more ---- */

struct fixed_mover {
	struct uspf *u;
	char *from, *to;
	atomic_bool done;
	int ret;
};

static void *fixed_move_thread(void *arg)
{
	struct fixed_mover *m = arg;
	void *q;

	m->ret = uspf_mremap(m->u, m->from, 4 * T_PAGE, 4 * T_PAGE, MREMAP_MAYMOVE | MREMAP_FIXED,
			     m->to, &q);
	atomic_store(&m->done, true);
	return NULL;
}

/*
 * A fault holding the PTL of some unrelated 2 MiB block (a stripe of
 * neither the source nor the target) must not hold up a FIXED move: the
 * kernel's mremap locks the page tables it moves, one PMD at a time,
 * never every page table of the process.
 */
Test(mapping, fixed_mremap_locks_only_its_ranges)
{
	struct fixed_mover m = { .u = t_runtime(USPF_POLICY_SPF, 1) };
	char *target = mmap(NULL, 4 * T_PAGE, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	unsigned int stripe, a = 0, b = 0;
	uint64_t t0;
	pthread_t t;

	cr_assert_neq(target, MAP_FAILED);
	m.from = t_map_pattern(m.u, 4 * T_PAGE, 3);
	m.to = target;
	a = ptl_index((unsigned long)m.from);
	b = ptl_index((unsigned long)m.to);
	for (stripe = 0; stripe == a || stripe == b || stripe == ptl_index((unsigned long)m.from + 3 * T_PAGE) ||
			 stripe == ptl_index((unsigned long)m.to + 3 * T_PAGE); stripe++)
		;
	ptl_lock(&m.u->mm.ptl, stripe);		/* some fault's commit, elsewhere */
	cr_assert_eq(pthread_create(&t, NULL, fixed_move_thread, &m), 0);
	for (t0 = t_now_ns(); !atomic_load(&m.done) && t_now_ns() - t0 < 2000000000ull;)
		t_sleep_ms(1);
	ptl_unlock(&m.u->mm.ptl, stripe);
	pthread_join(t, NULL);
	cr_assert_eq(m.ret, 0);
	cr_assert(t0 && atomic_load(&m.done));
	cr_assert_lt(t_now_ns() - t0, 2000000000ull, "the move waited for a PTL of neither range");
	t_assert_pattern(m.to, 4 * T_PAGE, 3, 0);
	uspf_destroy(m.u);
}

/* ---- writers hold no PTL across their real system call ---- */

struct ptl_watch {
	struct uspf *u;
	unsigned int stripe;
	atomic_bool start, running, stop;
	unsigned long tries, held;
};

static void *ptl_watch_thread(void *arg)
{
	struct ptl_watch *w = arg;

	while (!atomic_load(&w->start))
		;
	atomic_store(&w->running, true);
	while (!atomic_load(&w->stop)) {
		w->tries++;
		if (ptl_trylock(&w->u->mm.ptl, w->stripe))
			ptl_unlock(&w->u->mm.ptl, w->stripe);
		else
			w->held++;
	}
	return NULL;
}

/*
 * The kernel takes a page table's lock for its own stretch of a zap and
 * never sleeps holding one.  uspf's munmap takes the range's PTLs only as
 * a barrier (a commit that validated before has finished, every later one
 * aborts) and runs the real munmap - here of 64 MiB of touched pages,
 * milliseconds of work - with none held: a thread polling one of the
 * range's stripes finds it free nearly all that time.  (Held across the
 * call, as before, it found it taken nearly all the time.)
 */
Test(mapping, munmap_holds_no_ptl_across_the_real_call)
{
	struct uspf_config cfg;
	struct ptl_watch w = { 0 };
	size_t len = 64ul << 20, i;
	pthread_t t;
	char *p;

	uspf_config_init(&cfg);
	cfg.policy = USPF_POLICY_PERVMA_REFCNT;
	cfg.folio_pages = 16;
	w.u = t_runtime_cfg(&cfg);
	p = t_map_pattern(w.u, len, 4);
	for (i = 0; i < len; i += T_PAGE)
		p[i] = 1;
	w.stripe = ptl_index((unsigned long)p + len / 2);
	cr_assert_eq(pthread_create(&t, NULL, ptl_watch_thread, &w), 0);
	atomic_store(&w.start, true);
	while (!atomic_load(&w.running))
		sched_yield();
	cr_assert_eq(uspf_munmap(w.u, p, len), 0);
	atomic_store(&w.stop, true);
	pthread_join(t, NULL);
	cr_assert_gt(w.tries, 100, "the watcher hardly ran (%lu tries)", w.tries);
	cr_assert_lt(w.held * 2, w.tries, "the stripe was held for %lu of %lu tries", w.held, w.tries);
	uspf_destroy(w.u);
}

/*
 * The same for a move: move_page_tables() takes each page table's pair of
 * locks for its own stretch.  uspf's mremap takes the target's stripes
 * as a barrier before the call and the moved source's after it, when its
 * VMA is detached and the mmap write lock still keeps the range from
 * being mapped again; the real calls (hide, move, protection back) run
 * with none held.  A target off the PMD grid makes the kernel move each of
 * the 16,384 PTEs.  (Held across the calls, as before, a thread polling
 * one of the source's stripes found it taken 30% of the time; now under
 * 1%.)
 */
Test(mapping, mremap_holds_no_ptl_across_the_real_call)
{
	struct uspf_config cfg;
	struct ptl_watch w = { 0 };
	size_t len = 64ul << 20, i;
	unsigned long pmd = 2ul << 20;
	char *p, *res, *to, *moved;
	pthread_t t;

	uspf_config_init(&cfg);
	cfg.policy = USPF_POLICY_SPF;
	cfg.folio_pages = 16;
	w.u = t_runtime_cfg(&cfg);
	p = t_map_pattern(w.u, len, 5);
	for (i = 0; i < len; i += T_PAGE)
		p[i] = p[i];
	res = mmap(NULL, len + 2 * pmd, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	cr_assert_neq(res, MAP_FAILED);
	to = (char *)((((unsigned long)res + pmd - 1) & ~(pmd - 1)) + T_PAGE);
	w.stripe = ptl_index((unsigned long)p + len / 2);
	cr_assert_eq(pthread_create(&t, NULL, ptl_watch_thread, &w), 0);
	atomic_store(&w.start, true);
	while (!atomic_load(&w.running))
		sched_yield();
	cr_assert_eq(uspf_mremap(w.u, p, len, len, MREMAP_MAYMOVE | MREMAP_FIXED, to,
				 (void **)&moved), 0);
	atomic_store(&w.stop, true);
	pthread_join(t, NULL);
	cr_assert_eq(moved, to);
	cr_assert_gt(w.tries, 100, "the watcher hardly ran (%lu tries)", w.tries);
	cr_assert_lt(w.held * 10, w.tries, "the stripe was held for %lu of %lu tries", w.held, w.tries);
	t_assert_pattern(moved, len, 5, 0);
	uspf_destroy(w.u);
	munmap(res, len + 2 * pmd);
}
