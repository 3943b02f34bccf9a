/* SPDX-License-Identifier: MIT */
/*
 * tests/mm/vma_index_ref.h - the reference the VMA index tests check it against:
 * a sorted array of non-overlapping ranges with the same operations and
 * the same errors (mm/vma_index.h), obviously right and slow.
 */
#ifndef USPF_TESTS_VMA_INDEX_REF_H
#define USPF_TESTS_VMA_INDEX_REF_H

#include <criterion/criterion.h>
#include <errno.h>
#include <stddef.h>
#include <string.h>

#define REF_MAX		4096

struct ref_range {
	unsigned long start, end;
	void *entry;
};

struct ref {
	struct ref_range r[REF_MAX];
	size_t n;
};

/* Index of the first range whose end is > addr (n if none). */
static inline size_t ref_find(const struct ref *ref, unsigned long addr)
{
	size_t lo = 0, hi = ref->n;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;

		if (ref->r[mid].end <= addr)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static inline void *ref_lookup(const struct ref *ref, unsigned long addr)
{
	size_t i = ref_find(ref, addr);

	return i < ref->n && ref->r[i].start <= addr ? ref->r[i].entry : NULL;
}

/* Where [start, end) would go, or -1 if it overlaps a range. */
static inline long ref_slot(const struct ref *ref, unsigned long start, unsigned long end)
{
	size_t i = ref_find(ref, start);

	if (i < ref->n && ref->r[i].start < end)
		return -1;
	return i;
}

static inline int ref_insert(struct ref *ref, unsigned long start, unsigned long end, void *entry)
{
	long i;

	if (start >= end)
		return -EINVAL;
	i = ref_slot(ref, start, end);
	if (i < 0)
		return -EEXIST;
	cr_assert_lt(ref->n, REF_MAX);
	memmove(&ref->r[i + 1], &ref->r[i], (ref->n - i) * sizeof(ref->r[0]));
	ref->r[i] = (struct ref_range){ start, end, entry };
	ref->n++;
	return 0;
}

static inline long ref_index_of(const struct ref *ref, unsigned long start)
{
	size_t i = ref_find(ref, start);

	return i < ref->n && ref->r[i].start == start ? (long)i : -1;
}

static inline void *ref_erase(struct ref *ref, unsigned long start)
{
	long i = ref_index_of(ref, start);
	void *entry;

	if (i < 0)
		return NULL;
	entry = ref->r[i].entry;
	memmove(&ref->r[i], &ref->r[i + 1], (ref->n - i - 1) * sizeof(ref->r[0]));
	ref->n--;
	return entry;
}

static inline int ref_set_range(struct ref *ref, unsigned long old_start,
			 unsigned long start, unsigned long end)
{
	long i;

	if (start >= end)
		return -EINVAL;
	i = ref_index_of(ref, old_start);
	if (i < 0)
		return -ENOENT;
	if (i > 0 && ref->r[i - 1].end > start)
		return -EEXIST;
	if ((size_t)i + 1 < ref->n && ref->r[i + 1].start < end)
		return -EEXIST;
	ref->r[i].start = start;
	ref->r[i].end = end;
	return 0;
}

#endif
