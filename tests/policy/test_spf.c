/* SPDX-License-Identifier: MIT */
/*
 * tests/policy/test_spf.c - Dufour's speculative path (src/policy_spf.c) on real
 * faults: where it bails out, the revalidation at the commit point, the
 * fallback to mmap_lock, and the per-jiffy backoff.
 *
 * A fill callback runs between the snapshot and the commit, with no lock
 * held: that is where these tests make a writer change the VMA.
 */
#include <errno.h>
#include <pthread.h>
#include <semaphore.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "tests/helpers.h"
#include "hooks.h"
#include "runtime.h"

TestSuite(spf, .timeout = 30);

/* Read one page into a buffer: a fault, on a thread of its own. */
static void *touch_one(void *arg)
{
	struct { char *p; char buf[4096]; } *t = arg;

	memcpy(t->buf, t->p, sizeof(t->buf));
	return NULL;
}

static struct uspf *spf_runtime(bool anon_vma_at_mmap, unsigned int handlers)
{
	struct uspf_config cfg;

	uspf_config_init(&cfg);
	cfg.policy = USPF_POLICY_SPF;
	cfg.handlers = handlers;
	cfg.anon_vma_at_mmap = anon_vma_at_mmap;
	cfg.intake = USPF_INTAKE_POLL;	/* a blocked handler holds no message */
	return t_runtime_cfg(&cfg);
}

/* Read faults before any write: no anon_vma, so every one falls back (seed 001). */
Test(spf, no_anon_vma_falls_back)
{
	struct uspf *u = spf_runtime(false, 1);
	char *p = t_map_pattern(u, 16 * T_PAGE, 1);

	t_assert_pattern(p, 8 * T_PAGE, 1, 0);
	t_quiesce(u);
	cr_assert_eq(t_counter(u, USPF_C_SPF_ABORT_NO_ANON_VMA), 8);
	cr_assert_eq(t_counter(u, USPF_C_MMAP_LOCK_FALLBACK), 8);
	cr_assert_eq(t_counter(u, USPF_C_SPF_SUCCESS), 0);

	/* The first write fault prepares the anon_vma under mmap_lock ... */
	p[8 * T_PAGE] = 1;
	t_quiesce(u);
	cr_assert_eq(t_counter(u, USPF_C_ANON_VMA_PREPARE), 1);
	/* ... and from then on faults are speculative. */
	t_assert_pattern(p + 9 * T_PAGE, 7 * T_PAGE, 1, 9);
	t_quiesce(u);
	cr_assert_eq(t_counter(u, USPF_C_SPF_SUCCESS), 7);
	cr_assert_eq(t_counter(u, USPF_C_MMAP_LOCK_FALLBACK), 9);
	uspf_destroy(u);
}

/* The switch of seed 001: anon_vma at mmap time removes the first-fault fallbacks. */
Test(spf, anon_vma_at_mmap_no_fallback)
{
	struct uspf *u = spf_runtime(true, 1);
	char *p = t_map_pattern(u, 32 * T_PAGE, 2);

	t_assert_pattern(p, 32 * T_PAGE, 2, 0);
	t_quiesce(u);
	cr_assert_eq(t_counter(u, USPF_C_SPF_SUCCESS), 32);
	cr_assert_eq(t_counter(u, USPF_C_MMAP_LOCK_FALLBACK), 0);
	cr_assert_eq(t_counter(u, USPF_C_ANON_VMA_PREPARE), 0);
	uspf_destroy(u);
}

/*
 * A writer between the snapshot and the commit.  The fill callback of the
 * first fault lets a writer thread madvise(DONTNEED) another page of the
 * same VMA - vm_sequence moves - and waits for it to finish.  The commit
 * must see the change after taking the PTL, abort, and the classic path
 * must finish the fault with the right bytes.
 *
 *   0123
 *   F..W    F: the faulting page, W: the page the writer zaps
 */
struct race {
	struct uspf *u;
	char *p;
	sem_t in_fill;		/* the fill has its snapshot */
	sem_t writer_done;
	int fills;
	int writer_ret;
};

static int racing_fill(void *arg, void *dst, uint64_t offset, size_t len)
{
	struct race *r = arg;
	size_t i;

	for (i = 0; i < len / T_PAGE; i++)
		uspf_pattern_fill(3, offset / T_PAGE + i, (char *)dst + i * T_PAGE);
	if (__atomic_fetch_add(&r->fills, 1, __ATOMIC_RELAXED) == 0) {
		sem_post(&r->in_fill);
		sem_wait(&r->writer_done);
	}
	return 0;
}

static void *race_writer(void *arg)
{
	struct race *r = arg;

	sem_wait(&r->in_fill);
	r->writer_ret = uspf_madvise(r->u, r->p + 3 * T_PAGE, T_PAGE, MADV_DONTNEED);
	sem_post(&r->writer_done);
	return NULL;
}

Test(spf, writer_between_snapshot_and_commit)
{
	struct race r = { 0 };
	struct uspf_backing b = { .kind = USPF_BACKING_FILL, .fill = { racing_fill, &r } };
	pthread_t w;

	r.u = spf_runtime(true, 1);
	sem_init(&r.in_fill, 0, 0);
	sem_init(&r.writer_done, 0, 0);
	r.p = t_map(r.u, 4 * T_PAGE, &b);
	cr_assert_eq(pthread_create(&w, NULL, race_writer, &r), 0);

	t_assert_pattern(r.p, T_PAGE, 3, 0);
	pthread_join(w, NULL);
	cr_assert_eq(r.writer_ret, 0);
	t_quiesce(r.u);
	cr_assert_eq(t_counter(r.u, USPF_C_SPF_ABORT_VMA_CHANGED), 1);
	cr_assert_eq(t_counter(r.u, USPF_C_MMAP_LOCK_FALLBACK), 1);
	cr_assert_eq(t_counter(r.u, USPF_C_SPF_SUCCESS), 0);
	cr_assert_eq(r.fills, 2, "the fallback fills again: %d fills", r.fills);
	/* The next fault is speculative again. */
	t_assert_pattern(r.p + T_PAGE, T_PAGE, 3, 1);
	t_quiesce(r.u);
	cr_assert_eq(t_counter(r.u, USPF_C_SPF_SUCCESS), 1);
	uspf_destroy(r.u);
}

/*
 * A writer that removes the VMA between snapshot and commit: the
 * revalidation sees it detached, the fallback finds no VMA (bad area) and
 * wakes the thread, whose refault is a SIGSEGV - never a page installed
 * into memory that was unmapped.
 */
static void *race_unmapper(void *arg)
{
	struct race *r = arg;

	sem_wait(&r->in_fill);
	r->writer_ret = uspf_munmap(r->u, r->p, 4 * T_PAGE);
	sem_post(&r->writer_done);
	return NULL;
}

Test(spf, vma_removed_between_snapshot_and_commit)
{
	struct race r = { 0 };
	struct uspf_backing b = { .kind = USPF_BACKING_FILL, .fill = { racing_fill, &r } };
	char page[T_PAGE];
	pthread_t w;

	t_segv_setup();
	r.u = spf_runtime(true, 1);
	sem_init(&r.in_fill, 0, 0);
	sem_init(&r.writer_done, 0, 0);
	r.p = t_map(r.u, 4 * T_PAGE, &b);
	cr_assert_eq(pthread_create(&w, NULL, race_unmapper, &r), 0);

	cr_assert_not(t_copy_page_safe(r.p, page), "read memory that was unmapped");
	pthread_join(w, NULL);
	cr_assert_eq(r.writer_ret, 0);
	t_quiesce(r.u);
	cr_assert_eq(t_counter(r.u, USPF_C_SPF_ABORT_VMA_CHANGED), 1);
	cr_assert_eq(t_counter(r.u, USPF_C_BAD_AREA), 1);
	cr_assert_eq(t_counter(r.u, USPF_C_PAGES), 0);
	uspf_destroy(r.u);
}

/*
 * The speculative path holds no mm lock while it fills: a writer on
 * another VMA is not held up by a slow fill.  (tests/policy/test_mmap_lock.c
 * shows the opposite for the classic path.)
 */
Test(spf, slow_fill_does_not_block_writers)
{
	cr_assert_not(t_writer_blocked_by_fill(USPF_POLICY_SPF));
}

/*
 * A speculative fault that meets a held PTL (the holder preempted, on a
 * machine with fewer CPUs than threads) yields the CPU every PTL_SPINS
 * rounds instead of spinning out its quantum, then commits once the
 * holder lets go.
 */
Test(spf, held_ptl_makes_the_handler_yield)
{
	struct uspf *u = spf_runtime(true, 1);
	char *p = t_map_pattern(u, 4 * T_PAGE, 6);
	unsigned int idx = ptl_index((unsigned long)p);
	uint64_t before = ptl_yields();
	struct toucher_arg { char *p; char buf[T_PAGE]; } t = { .p = p };
	pthread_t r;

	ptl_lock(&u->mm.ptl, idx);		/* a holder that does not run */
	cr_assert_eq(pthread_create(&r, NULL, touch_one, &t), 0);
	t_sleep_ms(50);
	cr_assert_gt(ptl_yields(), before, "the handler spun without yielding");
	ptl_unlock(&u->mm.ptl, idx);
	pthread_join(r, NULL);
	cr_assert(uspf_pattern_check(6, 0, t.buf));
	t_quiesce(u);
	cr_assert_eq(t_counter(u, USPF_C_SPF_SUCCESS), 1, "it committed speculatively after all");
	uspf_destroy(u);
}

/* Writers making speculation fail again and again: a backoff, not a retry storm. */
struct storm {
	struct uspf *u;
	char *p;
	volatile int stop;
};

static void *storm_writer(void *arg)
{
	struct storm *s = arg;

	while (!s->stop)
		uspf_madvise(s->u, s->p + 255 * T_PAGE, T_PAGE, MADV_DONTNEED);
	return NULL;
}

Test(spf, writer_storm_backs_off)
{
	struct uspf_config cfg;
	struct storm s = { 0 };
	pthread_t w;
	uint64_t start = t_now_ns(), backoff = 0;
	size_t off = 0;

	uspf_config_init(&cfg);
	cfg.policy = USPF_POLICY_SPF;
	cfg.handlers = 1;
	cfg.anon_vma_at_mmap = true;
	cfg.hz = 100;
	cfg.spf_backoff_aborts = 2;
	cfg.spf_backoff_jiffies = 2;
	s.u = t_runtime_cfg(&cfg);
	s.p = t_map_pattern(s.u, 256 * T_PAGE, 4);
	cr_assert_eq(pthread_create(&w, NULL, storm_writer, &s), 0);
	/* Fault until the storm has tripped the backoff (bounded: 5 s). */
	while (t_now_ns() - start < 5000000000ull) {
		uspf_madvise(s.u, s.p, 255 * T_PAGE, MADV_DONTNEED);
		for (off = 0; off < 255; off++)
			cr_assert(uspf_pattern_check(4, off, s.p + off * T_PAGE));
		backoff = t_counter(s.u, USPF_C_SPF_BACKOFF);
		if (backoff)
			break;
	}
	s.stop = 1;
	pthread_join(w, NULL);
	cr_assert_gt(backoff, 0, "no backoff after %lu writer aborts",
		     (unsigned long)(t_counter(s.u, USPF_C_SPF_ABORT_VMA_CHANGED) +
				     t_counter(s.u, USPF_C_SPF_ABORT_SEQ_ODD) +
				     t_counter(s.u, USPF_C_SPF_ABORT_SNAPSHOT)));
	uspf_destroy(s.u);
}

/*
 * spf-v12, the series as published: the same storm, the same backoff
 * settings, and never a backoff - every fault speculates, each abort
 * finishes under the mmap lock.
 */
Test(spf, v12_never_backs_off)
{
	struct uspf_config cfg;
	struct storm s = { 0 };
	pthread_t w;
	uint64_t start = t_now_ns(), aborts = 0;
	size_t off;

	uspf_config_init(&cfg);
	cfg.policy = USPF_POLICY_SPF_V12;
	cfg.handlers = 1;
	cfg.anon_vma_at_mmap = true;
	cfg.hz = 100;
	cfg.spf_backoff_aborts = 2;
	cfg.spf_backoff_jiffies = 2;
	s.u = t_runtime_cfg(&cfg);
	s.p = t_map_pattern(s.u, 256 * T_PAGE, 4);
	cr_assert_eq(pthread_create(&w, NULL, storm_writer, &s), 0);
	/* Until the storm has made ten times the aborts that trip spf's backoff (bounded: 5 s). */
	while (t_now_ns() - start < 5000000000ull && aborts < 20) {
		uspf_madvise(s.u, s.p, 255 * T_PAGE, MADV_DONTNEED);
		for (off = 0; off < 255; off++)
			cr_assert(uspf_pattern_check(4, off, s.p + off * T_PAGE));
		aborts = t_counter(s.u, USPF_C_SPF_ABORT_VMA_CHANGED) +
			 t_counter(s.u, USPF_C_SPF_ABORT_SEQ_ODD) +
			 t_counter(s.u, USPF_C_SPF_ABORT_SNAPSHOT);
	}
	s.stop = 1;
	pthread_join(w, NULL);
	cr_assert_geq(aborts, 20, "the storm made only %lu aborts", (unsigned long)aborts);
	cr_assert_eq(t_counter(s.u, USPF_C_SPF_BACKOFF), 0, "spf-v12 backed off");
	cr_assert_str_eq(uspf_policy_name(USPF_POLICY_SPF_V12), "spf-v12");
	uspf_destroy(s.u);
}

/*
 * The speculative fast path writes no shared cacheline but the PTL: with
 * the whole model read-only (runtime, mm, VMAs, anon_vmas, index nodes),
 * speculative faults still complete.  Lespinasse (2021): "adding a single
 * atomic variable per vma would decrease the 48-threads throughput by
 * 62%".  (tests/policy/test_pervma_rwsem.c shows the per-VMA lock writing one.)
 */
Test(spf, fast_path_writes_no_shared_cacheline)
{
	struct uspf *u = spf_runtime(true, 1);
	char *p = t_map_pattern(u, 64 * T_PAGE, 12);

	t_assert_pattern(p, T_PAGE, 12, 0);	/* the handler's first RCU read registers it */
	t_quiesce(u);
	cr_assert_eq(runtime_protect_model(u, true), 0);
	t_assert_pattern(p + T_PAGE, 63 * T_PAGE, 12, 1);
	cr_assert_eq(runtime_protect_model(u, false), 0);
	t_quiesce(u);
	cr_assert_eq(t_counter(u, USPF_C_SPF_SUCCESS), 64);
	uspf_destroy(u);
}

/* spf's DONTNEED enters vm_write_begin(), whose writers are serialised: the write lock. */
Test(spf, dontneed_is_a_writer_under_spf)
{
	cr_assert_not(t_dontneed_blocked_by_fill(USPF_POLICY_SPF), "spf's fault holds no mmap lock");
}
