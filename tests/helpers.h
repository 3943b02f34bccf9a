/* SPDX-License-Identifier: MIT */
/*
 * helpers.h - shared by the real-fault tests: runtimes, pattern checks,
 * touching threads, SIGSEGV-tolerant reads.
 */
#ifndef USPF_TEST_HELPERS_H
#define USPF_TEST_HELPERS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <criterion/criterion.h>
#include <criterion/parameterized.h>

#include "uspf.h"

#define T_PAGE 4096ul

/* Every policy, for ParameterizedTest over policies. */
#define T_POLICY_PARAMS(suite, name)						\
	ParameterizedTestParameters(suite, name)				\
	{									\
		static enum uspf_policy_id p[USPF_NR_POLICIES];			\
		for (int i = 0; i < USPF_NR_POLICIES; i++)			\
			p[i] = (enum uspf_policy_id)i;				\
		return cr_make_param_array(enum uspf_policy_id, p, USPF_NR_POLICIES); \
	}

struct uspf *t_runtime(enum uspf_policy_id policy, unsigned int fault_around);
struct uspf *t_runtime_cfg(const struct uspf_config *cfg);
void *t_map(struct uspf *u, size_t len, const struct uspf_backing *b);
void *t_map_pattern(struct uspf *u, size_t len, uint64_t gen);
uint64_t t_counter(struct uspf *u, enum uspf_counter c);
/*
 * Wait until the handlers are done accounting: a faulting thread is woken
 * by the copy, before the handler counts it.  Then read a counter.
 */
void t_quiesce(struct uspf *u);
/* Assert pages [0, len) at p hold pattern(gen, pgoff0 + i). */
void t_assert_pattern(const void *p, size_t len, uint64_t gen, uint64_t pgoff0);

/* Run fn(arg_i) in n threads and join them. */
void t_run_threads(unsigned int n, void *(*fn)(void *), void *args, size_t arg_size);

/*
 * Copy one page that another thread may unmap or protect meanwhile:
 * false if it faulted (SIGSEGV/SIGBUS) instead.  Call t_segv_setup() first.
 */
void t_segv_setup(void);
bool t_copy_page_safe(const void *page, void *dst);

uint64_t t_now_ns(void);
void t_sleep_ms(long ms);

struct uspf_vma;
/* The model's VMA at addr (asserted present); valid while it stays mapped. */
struct uspf_vma *t_vma_of(struct uspf *u, void *addr);

/* A real VMA, as /proc/self/maps gives it. */
struct t_real_vma {
	unsigned long start, end;
	char perms[5];
};

/* The real VMA containing addr, from the text of /proc/self/maps. */
bool t_real_vma_at(unsigned long addr, struct t_real_vma *rv);
/*
 * Every model VMA in [start, start + len) lies inside one real VMA, and
 * with `exact`, is exactly a real VMA.
 */
void t_assert_boundaries(struct uspf *u, void *start, size_t len, bool exact);

/*
 * A fault whose fill is slow, and a writer (uspf_madvise) on another VMA
 * started while the fill runs: true if the writer had to wait for the
 * fill, i.e. the policy holds the mmap lock across it.
 */
bool t_writer_blocked_by_fill(enum uspf_policy_id policy);
/* The same with MADV_DONTNEED of the other VMA as the "writer". */
bool t_dontneed_blocked_by_fill(enum uspf_policy_id policy);

#endif
