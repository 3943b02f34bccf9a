/* SPDX-License-Identifier: MIT */
/*
 * tests/policy/test_pervma_refcnt.c - per-VMA locks as a reference count with a
 * type-safe VMA cache (src/policy_pervma_refcnt.c): vm_refcnt across every
 * transition of PROTOCOLS.md section 7 - attach, read, write lock, writer
 * waiting for readers, detach while a reader is in, the reader limit,
 * reuse by the same mm and by another mm - then real faults.
 * The answer to seed 002's "this series has exactly zero tests".
 */
#include <pthread.h>
#include <semaphore.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "tests/helpers.h"
#include "hooks.h"
#include "runtime.h"
#include "mm/vma.h"
#include "policy/vma_lock.h"

TestSuite(pervma_refcnt, .timeout = 30);

static struct uspf *refcnt_runtime(void)
{
	struct uspf_config cfg;

	uspf_config_init(&cfg);
	cfg.policy = USPF_POLICY_PERVMA_REFCNT;
	cfg.handlers = 2;
	return t_runtime_cfg(&cfg);
}

static unsigned int refs(struct uspf_vma *vma)
{
	return atomic_load(&vma->vm_refcnt);
}

/* 1 attached; 1 + n with n readers; back to 1. */
Test(pervma_refcnt, attached_is_one_readers_add)
{
	struct uspf *u = refcnt_runtime();
	char *p = t_map_pattern(u, 4 * T_PAGE, 1);
	struct uspf_vma *a = t_vma_of(u, p);

	cr_assert_eq(refs(a), 1);
	cr_assert_eq(vma_refcnt_start_read(&u->mm, a), VMA_READ_OK);
	cr_assert_eq(vma_refcnt_start_read(&u->mm, a), VMA_READ_OK);
	cr_assert_eq(refs(a), 3);
	vma_refcnt_end_read(a);
	vma_refcnt_end_read(a);
	cr_assert_eq(refs(a), 1);
	uspf_destroy(u);
}

/* Write-locked: readers abort without touching vm_refcnt; unlock releases. */
Test(pervma_refcnt, write_lock_excludes_readers)
{
	struct uspf *u = refcnt_runtime();
	char *p = t_map_pattern(u, 4 * T_PAGE, 1);
	struct uspf_vma *a = t_vma_of(u, p);

	mmap_write_lock(&u->mm);
	vma_start_write(a);
	cr_assert_eq(refs(a), 1, "the writer left: only the attach reference");
	cr_assert_eq(atomic_load(&a->vm_lock_seq), raw_read_seqcount(&u->mm.mm_lock_seq));
	cr_assert_eq(vma_refcnt_start_read(&u->mm, a), VMA_READ_ABORT);
	cr_assert_eq(refs(a), 1);
	mmap_write_unlock(&u->mm);
	cr_assert_eq(vma_refcnt_start_read(&u->mm, a), VMA_READ_OK);
	vma_refcnt_end_read(a);
	uspf_destroy(u);
}

struct writer {
	struct uspf *u;
	struct uspf_vma *vma;
	bool detach;
	sem_t started, go;
	int done;
};

static void *writer_thread(void *arg)
{
	struct writer *w = arg;

	mmap_write_lock(&w->u->mm);
	if (w->detach)
		vma_start_write(w->vma);
	sem_post(&w->started);
	if (w->detach) {
		sem_wait(&w->go);
		vma_mark_detached(w->vma);
	}
	else
		vma_start_write(w->vma);
	__atomic_store_n(&w->done, 1, __ATOMIC_RELEASE);
	mmap_write_unlock(&w->u->mm);
	return NULL;
}

/*
 * A reader holds a reference: the writer adds VMA_LOCK_OFFSET and waits
 * for VMA_LOCK_OFFSET + 1; meanwhile new readers fail (over the limit).
 */
Test(pervma_refcnt, writer_waits_for_readers)
{
	struct uspf *u = refcnt_runtime();
	char *p = t_map_pattern(u, 4 * T_PAGE, 1);
	struct writer w = { .u = u, .vma = t_vma_of(u, p) };
	pthread_t t;

	sem_init(&w.started, 0, 0);
	cr_assert_eq(vma_refcnt_start_read(&u->mm, w.vma), VMA_READ_OK);
	cr_assert_eq(pthread_create(&t, NULL, writer_thread, &w), 0);
	sem_wait(&w.started);
	t_sleep_ms(100);
	cr_assert_not(__atomic_load_n(&w.done, __ATOMIC_ACQUIRE), "the writer did not wait");
	cr_assert_eq(refs(w.vma), VMA_LOCK_OFFSET + 2);
	cr_assert_eq(vma_refcnt_start_read(&u->mm, w.vma), VMA_READ_ABORT);
	cr_assert_eq(refs(w.vma), VMA_LOCK_OFFSET + 2, "a failed reader changed nothing");
	vma_refcnt_end_read(w.vma);
	pthread_join(t, NULL);
	cr_assert_eq(refs(w.vma), 1);
	t_quiesce(u);
	cr_assert_eq(t_counter(u, USPF_C_VMA_WRITE_WAITS), 1);
	uspf_destroy(u);
}

/*
 * Detach while a reader is inside its window (it incremented, it has not
 * yet seen the write lock): vma_mark_detached() drops the attach
 * reference, waits for exactly VMA_LOCK_OFFSET, and leaves 0.
 */
Test(pervma_refcnt, detach_waits_for_a_reader_then_zero)
{
	struct uspf *u = refcnt_runtime();
	char *p = t_map_pattern(u, 4 * T_PAGE, 1);
	struct writer w = { .u = u, .vma = t_vma_of(u, p), .detach = true };
	pthread_t t;

	sem_init(&w.started, 0, 0);
	sem_init(&w.go, 0, 0);
	cr_assert_eq(pthread_create(&t, NULL, writer_thread, &w), 0);
	sem_wait(&w.started);
	atomic_fetch_add(&w.vma->vm_refcnt, 1);	/* a reader's increment, before its re-check */
	sem_post(&w.go);
	t_sleep_ms(100);
	cr_assert_not(__atomic_load_n(&w.done, __ATOMIC_ACQUIRE));
	cr_assert_eq(refs(w.vma), VMA_LOCK_OFFSET + 1);
	vma_refcnt_end_read(w.vma);	/* the reader sees the write lock and puts */
	pthread_join(t, NULL);
	cr_assert_eq(refs(w.vma), 0);
	cr_assert(vma_is_detached(w.vma));
	/* A detached VMA: a reader's increment refuses 0 - walk again. */
	cr_assert_eq(vma_refcnt_start_read(&u->mm, w.vma), VMA_READ_MISS);
	cr_assert_eq(refs(w.vma), 0);
	/* Put it back for destroy: attach under the write lock. */
	mmap_write_lock(&u->mm);
	vma_mark_attached(w.vma);
	mmap_write_unlock(&u->mm);
	uspf_destroy(u);
}

/* Readers stay under VMA_REF_LIMIT. */
Test(pervma_refcnt, reader_limit)
{
	struct uspf *u = refcnt_runtime();
	char *p = t_map_pattern(u, 4 * T_PAGE, 1);
	struct uspf_vma *a = t_vma_of(u, p);

	atomic_store(&a->vm_refcnt, VMA_REF_LIMIT);
	cr_assert_eq(vma_refcnt_start_read(&u->mm, a), VMA_READ_OK, "LIMIT - 1 readers: one more fits");
	cr_assert_eq(refs(a), VMA_REF_LIMIT + 1);
	cr_assert_eq(vma_refcnt_start_read(&u->mm, a), VMA_READ_ABORT);
	cr_assert_eq(refs(a), VMA_REF_LIMIT + 1);
	atomic_store(&a->vm_refcnt, 1);
	uspf_destroy(u);
}

/*
 * Type-safe reuse.  mm A unmaps X: X goes back to the cache at once and
 * mm B's next mapping gets the same object.  A reader of A that found X
 * before gets a reference on B's VMA: only vm_mm == mm tells it apart.
 */
Test(pervma_refcnt, reuse_by_another_mm)
{
	struct uspf *a = refcnt_runtime(), *b = refcnt_runtime();
	char *p = t_map_pattern(a, 4 * T_PAGE, 1);
	struct uspf_vma *x = t_vma_of(a, p), *y;
	char *q;

	cr_assert_eq(uspf_munmap(a, p, 4 * T_PAGE), 0);
	cr_assert_eq(refs(x), 0, "freed detached");
	cr_assert_eq(vma_refcnt_start_read(&a->mm, x), VMA_READ_MISS, "freed: a miss");
	q = t_map_pattern(b, 4 * T_PAGE, 2);
	y = t_vma_of(b, q);
	cr_assert_eq(y, x, "the cache handed the same object to the other mm");
	cr_assert_eq(refs(x), 1);
	cr_assert_eq(vma_refcnt_start_read(&a->mm, x), VMA_READ_WRONG_MM);
	cr_assert_eq(refs(x), 1, "the reference was given back");
	/* With the check injected away, A's reader would hold B's VMA. */
	runtime_set_debug(a, 1ull << INJ_REFCNT_NO_MM_CHECK, false);
	cr_assert_eq(vma_refcnt_start_read(&a->mm, x), VMA_READ_OK);
	vma_refcnt_end_read(x);
	uspf_destroy(a);
	uspf_destroy(b);
}

/*
 * 0123456789
 * XXXX          X mapped at 0
 * ....  XXXX    unmapped, its object reused by the same mm at 6: a reader
 *               that found X for address 1 gets a reference, and only
 *               the range re-check says it is the wrong VMA
 */
Test(pervma_refcnt, reuse_by_the_same_mm_needs_the_range_check)
{
	struct uspf *u = refcnt_runtime();
	struct uspf_backing b = { .kind = USPF_BACKING_PATTERN, .pattern.generation = 1 };
	char *res = mmap(NULL, 16 * T_PAGE, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	int fl = MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, rw = PROT_READ | PROT_WRITE;
	struct uspf_vma *x;
	void *p, *q;

	cr_assert_neq(res, MAP_FAILED);
	cr_assert_eq(uspf_mmap(u, res, 4 * T_PAGE, rw, fl, &b, &p), 0);
	x = t_vma_of(u, p);
	cr_assert_eq(uspf_munmap(u, p, 4 * T_PAGE), 0);
	b.pattern.generation = 2;
	cr_assert_eq(uspf_mmap(u, res + 6 * T_PAGE, 4 * T_PAGE, rw, fl, &b, &q), 0);
	cr_assert_eq(t_vma_of(u, q), x, "the cache handed the same object back");
	cr_assert_eq(vma_refcnt_start_read(&u->mm, x), VMA_READ_OK, "same mm: the reference is taken");
	cr_assert((unsigned long)p + T_PAGE < x->vm_start,
		  "the reused VMA must not contain the old address");
	vma_refcnt_end_read(x);
	uspf_destroy(u);
	munmap(res, 16 * T_PAGE);
}

/*
 * On real faults, as the kernel since 6.10: read faults are served under
 * the VMA lock with no anon_vma; the first write fault needs one
 * (vmf_anon_prepare()), which only the mmap lock can prepare: it is a
 * vma_lock_retry, finished under the mmap lock; after it, every fault
 * stays under the VMA lock.  (pervma-rwsem, 6.4's path, aborts every
 * fault until the anon_vma exists: seed 001's lazy-anon_vma question.)
 */
Test(pervma_refcnt, faults_under_the_vma_lock)
{
	struct uspf *u = refcnt_runtime();
	char *p = t_map_pattern(u, 64 * T_PAGE, 7);

	t_assert_pattern(p, 4 * T_PAGE, 7, 0);
	p[4 * T_PAGE] = 1;
	t_assert_pattern(p + 5 * T_PAGE, 59 * T_PAGE, 7, 5);
	t_quiesce(u);
	cr_assert_eq(t_counter(u, USPF_C_VMA_LOCK_SUCCESS), 63, "reads: 4 before, 59 after");
	cr_assert_eq(t_counter(u, USPF_C_VMA_LOCK_RETRY), 1, "the write that needed an anon_vma");
	cr_assert_eq(t_counter(u, USPF_C_VMA_LOCK_ABORT), 0);
	cr_assert_eq(t_counter(u, USPF_C_ANON_VMA_PREPARE), 1);
	uspf_destroy(u);
}

/* A file VMA's read faults under the VMA lock too (6.7+); pervma-rwsem sends them to mmap_lock. */
Test(pervma_refcnt, file_read_faults_under_the_vma_lock)
{
	struct uspf *u = refcnt_runtime();
	struct uspf_backing b = { .kind = USPF_BACKING_FILE };
	char page[T_PAGE];
	char *p;
	int i;

	b.file.fd = memfd_create("refcnt", MFD_CLOEXEC);
	cr_assert_geq(b.file.fd, 0);
	for (i = 0; i < 8; i++) {
		uspf_pattern_fill(9, (uint64_t)i, page);
		cr_assert_eq(pwrite(b.file.fd, page, T_PAGE, (off_t)i * (off_t)T_PAGE), (ssize_t)T_PAGE);
	}
	p = t_map(u, 8 * T_PAGE, &b);
	t_assert_pattern(p, 8 * T_PAGE, 9, 0);
	t_quiesce(u);
	cr_assert_eq(t_counter(u, USPF_C_VMA_LOCK_SUCCESS), 8);
	cr_assert_eq(t_counter(u, USPF_C_MMAP_LOCK_FAULT), 0);
	uspf_destroy(u);
	close(b.file.fd);
}

Test(pervma_refcnt, slow_fill_does_not_block_other_vmas)
{
	cr_assert_not(t_writer_blocked_by_fill(USPF_POLICY_PERVMA_REFCNT));
}
