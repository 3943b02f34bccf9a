/* SPDX-License-Identifier: MIT */
/*
 * tests/policy/test_pervma_rwsem.c - per-VMA locks as merged in 6.4
 * (src/policy_pervma_rwsem.c): the lock states of PROTOCOLS.md section 7
 * driven step by step, then the fault path on real faults.
 */
#include <pthread.h>
#include <signal.h>
#include <semaphore.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#include "tests/helpers.h"
#include "hooks.h"
#include "runtime.h"
#include "mm/vma.h"
#include "mm/call_rcu.h"
#include "mm/file.h"
#include "policy/vma_lock.h"

TestSuite(pervma_rwsem, .timeout = 30);

static struct uspf *rwsem_runtime(void)
{
	struct uspf_config cfg;

	uspf_config_init(&cfg);
	cfg.policy = USPF_POLICY_PERVMA_RWSEM;
	cfg.handlers = 2;
	return t_runtime_cfg(&cfg);
}

static unsigned int mm_seq(struct uspf *u)
{
	return raw_read_seqcount(&u->mm.mm_lock_seq);
}

/*
 * 0123
 * AAAA    mapped: attached, not write-locked once mmap_write_unlock() ran
 */
Test(pervma_rwsem, new_vma_is_readable_after_unlock)
{
	struct uspf *u = rwsem_runtime();
	char *p = t_map_pattern(u, 4 * T_PAGE, 1);
	struct uspf_vma *a = t_vma_of(u, p);

	cr_assert_not(mm_seq(u) & 1);
	cr_assert_not(vma_is_write_locked(a, mm_seq(u)));
	cr_assert(vma_rwsem_start_read(&u->mm, a));
	cr_assert_eq(rwsem_readers(&a->vm_lock), 1);
	vma_rwsem_end_read(&u->mm, a);
	cr_assert_eq(rwsem_readers(&a->vm_lock), 0);
	uspf_destroy(u);
}

/* vma_start_write() stamps vm_lock_seq; mmap_write_unlock() releases it (vma_end_write_all). */
Test(pervma_rwsem, write_lock_until_mmap_write_unlock)
{
	struct uspf *u = rwsem_runtime();
	char *p = t_map_pattern(u, 4 * T_PAGE, 1);
	struct uspf_vma *a = t_vma_of(u, p);

	mmap_write_lock(&u->mm);
	cr_assert(mm_seq(u) & 1);
	cr_assert(vma_rwsem_start_read(&u->mm, a), "not write-locked yet: readers still welcome");
	vma_rwsem_end_read(&u->mm, a);
	vma_start_write(a);
	cr_assert_eq(atomic_load(&a->vm_lock_seq), mm_seq(u));
	cr_assert_not(vma_rwsem_start_read(&u->mm, a), "write-locked: a reader must fail");
	cr_assert_not(rwsem_is_locked(&a->vm_lock), "the rwsem itself is free again");
	vma_start_write(a);	/* again: a no-op */
	mmap_write_unlock(&u->mm);
	cr_assert_not(vma_is_write_locked(a, mm_seq(u)));
	cr_assert(vma_rwsem_start_read(&u->mm, a));
	vma_rwsem_end_read(&u->mm, a);
	uspf_destroy(u);
}

Test(pervma_rwsem, downgrade_releases_vma_write_locks)
{
	struct uspf *u = rwsem_runtime();
	char *p = t_map_pattern(u, 4 * T_PAGE, 1);
	struct uspf_vma *a = t_vma_of(u, p);

	mmap_write_lock(&u->mm);
	vma_start_write(a);
	cr_assert_not(vma_rwsem_start_read(&u->mm, a));
	mmap_write_downgrade(&u->mm);
	cr_assert(rwsem_readers(&u->mm.mmap_lock) == 1);
	cr_assert(vma_rwsem_start_read(&u->mm, a), "downgrade must release VMA write locks");
	vma_rwsem_end_read(&u->mm, a);
	mmap_read_unlock(&u->mm);
	uspf_destroy(u);
}

struct writer {
	struct uspf *u;
	struct uspf_vma *vma;
	sem_t started;
	int done;
};

static void *start_write_thread(void *arg)
{
	struct writer *w = arg;

	mmap_write_lock(&w->u->mm);
	sem_post(&w->started);
	vma_start_write(w->vma);
	__atomic_store_n(&w->done, 1, __ATOMIC_RELEASE);
	mmap_write_unlock(&w->u->mm);
	return NULL;
}

/*
 * A reader holds the VMA: the writer's vma_start_write() waits for it,
 * and meanwhile a new reader fails at once (trylock) instead of queueing
 * behind the writer: the fault path never waits for a writer.
 */
Test(pervma_rwsem, writer_waits_for_readers_new_readers_fail)
{
	struct uspf *u = rwsem_runtime();
	char *p = t_map_pattern(u, 4 * T_PAGE, 1);
	struct writer w = { .u = u, .vma = t_vma_of(u, p) };
	pthread_t t;

	sem_init(&w.started, 0, 0);
	cr_assert(vma_rwsem_start_read(&u->mm, w.vma));
	cr_assert_eq(pthread_create(&t, NULL, start_write_thread, &w), 0);
	sem_wait(&w.started);
	t_sleep_ms(100);
	cr_assert_not(__atomic_load_n(&w.done, __ATOMIC_ACQUIRE), "the writer did not wait");
	cr_assert_not(vma_rwsem_start_read(&u->mm, w.vma), "a new reader queued behind the writer");
	vma_rwsem_end_read(&u->mm, w.vma);
	pthread_join(t, NULL);
	cr_assert(w.done);
	t_quiesce(u);
	cr_assert_eq(t_counter(u, USPF_C_VMA_WRITE_WAITS), 1);
	uspf_destroy(u);
}

/*
 * 0123
 * AAAA -> ....   munmap: a reader that found A before can still read-lock
 *                it (6.4's vma_start_read() does not look at detached), so
 *                lock_vma_under_rcu() must check detached and walk again.
 */
Test(pervma_rwsem, detached_vma_still_read_locks)
{
	struct uspf *u = rwsem_runtime();
	char *p = t_map_pattern(u, 4 * T_PAGE, 1);
	struct uspf_vma *a;

	rcu_read_lock();
	a = vma_lookup(&u->mm, (unsigned long)p);
	cr_assert_eq(uspf_munmap(u, p, 4 * T_PAGE), 0);
	cr_assert(vma_is_detached(a));
	cr_assert(vma_rwsem_start_read(&u->mm, a));
	vma_rwsem_end_read(&u->mm, a);
	rcu_read_unlock();
	uspf_destroy(u);
}

/* On real faults: aborts until the anon_vma exists, then faults under the VMA lock. */
Test(pervma_rwsem, faults_under_the_vma_lock)
{
	struct uspf *u = rwsem_runtime();
	char *p = t_map_pattern(u, 64 * T_PAGE, 7);

	t_assert_pattern(p, 4 * T_PAGE, 7, 0);
	t_quiesce(u);
	cr_assert_eq(t_counter(u, USPF_C_VMA_LOCK_ABORT), 4, "no anon_vma: abort");
	p[4 * T_PAGE] = 1;	/* prepares the anon_vma under mmap_lock */
	t_assert_pattern(p + 5 * T_PAGE, 59 * T_PAGE, 7, 5);
	t_quiesce(u);
	cr_assert_eq(t_counter(u, USPF_C_VMA_LOCK_SUCCESS), 59);
	cr_assert_eq(t_counter(u, USPF_C_VMA_LOCK_ABORT), 5);
	cr_assert_eq(t_counter(u, USPF_C_MMAP_LOCK_FAULT), 5);
	uspf_destroy(u);
}

/* A slow fill holds only its VMA: a writer on another VMA goes ahead. */
Test(pervma_rwsem, slow_fill_does_not_block_other_vmas)
{
	cr_assert_not(t_writer_blocked_by_fill(USPF_POLICY_PERVMA_RWSEM));
}

/*
 * The 6.4 per-VMA lock writes the VMA on every fault (its rwsem): with the
 * model read-only, the handler dies at vma_start_read()'s trylock.  The
 * cost Lespinasse measured; the refcount rework writes one too (vm_refcnt).
 */
Test(pervma_rwsem, fast_path_writes_the_vma, .signal = SIGSEGV)
{
	struct uspf_config cfg;
	struct uspf *u;
	char *p;

	uspf_config_init(&cfg);
	cfg.policy = USPF_POLICY_PERVMA_RWSEM;
	cfg.handlers = 1;
	cfg.anon_vma_at_mmap = true;
	u = t_runtime_cfg(&cfg);
	p = t_map_pattern(u, 64 * T_PAGE, 12);
	t_assert_pattern(p, T_PAGE, 12, 0);
	t_quiesce(u);
	cr_assert_eq(runtime_protect_model(u, true), 0);
	t_assert_pattern(p + T_PAGE, T_PAGE, 12, 1);
	cr_assert_fail("a per-VMA read lock that writes nothing?");
}

/* ---- vma_end_read() keeps the VMA alive till the end of up_read() ---- */

struct end_read_hold {
	struct uspf *u;
	struct uspf_vma *vma;
	sem_t at, go, barrier_done;
	bool armed;
};

static void hold_in_up_read(struct uspf_mm *mm, enum stall_point p, void *arg)
{
	struct end_read_hold *h = arg;

	(void)mm;
	if (p != STALL_END_READ || !__atomic_exchange_n(&h->armed, false, __ATOMIC_ACQ_REL))
		return;
	sem_post(&h->at);
	sem_wait(&h->go);
}

static void *end_read_reader(void *arg)
{
	struct end_read_hold *h = arg;
	bool locked;

	rcu_read_lock();
	locked = vma_rwsem_start_read(&h->u->mm, h->vma);	/* lock_vma_under_rcu() */
	rcu_read_unlock();
	if (locked)
		vma_rwsem_end_read(&h->u->mm, h->vma);		/* held inside up_read() */
	return (void *)(uintptr_t)locked;
}

static void *rcu_barrier_thread(void *arg)
{
	struct end_read_hold *h = arg;

	mm_rcu_barrier();	/* the VMA's free callback has run */
	sem_post(&h->barrier_done);
	return NULL;
}

ParameterizedTestParameters(pervma_rwsem, end_read_keeps_the_vma_alive)
{
	static bool inject_bug[] = { false, true };

	return cr_make_param_array(bool, inject_bug, 2);
}

/*
 *   reader (a handler)                     writer (the test)
 *   lock_vma_under_rcu(): A read-locked
 *   vma_end_read(): up_read() releases
 *     the lock word                   -->  uspf_munmap(A): vma_start_write() takes
 *     [held here, inside up_read()]        the lock at once, A detached, erased,
 *                                          vm_area_free_rcu(A)
 *                                          rcu_barrier(): A's grace period ends -
 *                                          only if the reader already left RCU
 *     up_read() clears SLEEPERS, wakes,
 *     returns: touches A                   A freed?  (debug check: a reader inside)
 *
 * In 6.4 vma_end_read() wraps up_read() in rcu_read_lock(): the grace
 * period cannot end before it returns.  The injection restores the old
 * order, and the free callback finds the reader still inside.
 */
ParameterizedTest(bool *inject_bug, pervma_rwsem, end_read_keeps_the_vma_alive)
{
	struct end_read_hold h = { .u = rwsem_runtime(), .armed = true };
	char *p = t_map_pattern(h.u, 4 * T_PAGE, 1);
	struct timespec until;
	pthread_t r, b;
	void *locked;
	bool ended_early;

	h.vma = t_vma_of(h.u, p);
	sem_init(&h.at, 0, 0);
	sem_init(&h.go, 0, 0);
	sem_init(&h.barrier_done, 0, 0);
	runtime_set_debug(h.u, *inject_bug ? 1ull << INJ_RWSEM_END_READ_OUTSIDE_RCU : 0, true);
	runtime_set_stall_hook(h.u, hold_in_up_read, &h);
	cr_assert_eq(pthread_create(&r, NULL, end_read_reader, &h), 0);
	sem_wait(&h.at);
	cr_assert_eq(uspf_munmap(h.u, p, 4 * T_PAGE), 0, "the writer took the released lock");
	cr_assert_eq(pthread_create(&b, NULL, rcu_barrier_thread, &h), 0);
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_nsec += 300 * 1000000L;
	if (until.tv_nsec >= 1000000000L) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000L;
	}
	ended_early = sem_timedwait(&h.barrier_done, &until) == 0;
	sem_post(&h.go);
	pthread_join(r, &locked);
	pthread_join(b, NULL);
	cr_assert(locked, "the reader read-locked A");
	if (*inject_bug) {
		cr_assert(ended_early, "outside RCU, the grace period ends under the reader");
		cr_assert_gt(runtime_violations(h.u, NULL, 0), 0, "the free found no reader inside");
	} else {
		cr_assert_not(ended_early, "the grace period ended with a reader inside up_read()");
		cr_assert_eq(runtime_violations(h.u, NULL, 0), 0);
	}
	runtime_set_stall_hook(h.u, NULL, NULL);
	runtime_set_debug(h.u, 0, false);
	uspf_destroy(h.u);
}

/* ---- split and merge: VMA write lock before i_mmap_rwsem ---- */

struct split_writer {
	struct uspf *u;
	char *p;
	int ret;
};

static void *split_thread(void *arg)
{
	struct split_writer *w = arg;

	w->ret = uspf_mprotect(w->u, w->p + T_PAGE, T_PAGE, PROT_READ);	/* splits A */
	return NULL;
}

ParameterizedTestParameters(pervma_rwsem, split_waits_for_readers_before_i_mmap)
{
	static bool inject_bug[] = { false, true };

	return cr_make_param_array(bool, inject_bug, 2);
}

/*
 *   A = [0, 4) file-backed (a memfd), one VMA on the file's i_mmap
 *   reader (the test)            writer (a thread)
 *   vma_start_read(A)
 *                                uspf_mprotect(A + 1, 1 page): __split_vma(A)
 *                                  vma_start_write(A): waits for the reader
 *   is the file's i_mmap_rwsem free?
 *
 * In the kernel's order (mmap_lock -> VMA write lock -> i_mmap_rwsem) the
 * writer waits for the VMA reader holding nothing of the file's: anyone
 * else mapping, unmapping or walking the file goes on.  The injection
 * takes i_mmap_rwsem first, and the whole file waits behind one VMA
 * reader of one mm.
 */
ParameterizedTest(bool *inject_bug, pervma_rwsem, split_waits_for_readers_before_i_mmap)
{
	struct uspf *u = rwsem_runtime();
	struct uspf_backing b = { .kind = USPF_BACKING_FILE };
	struct split_writer w = { .u = u };
	struct uspf_vma *a;
	struct uspf_file *f;
	char page[T_PAGE];
	bool file_free;
	pthread_t t;
	int i;

	b.file.fd = memfd_create("split", MFD_CLOEXEC);
	cr_assert_geq(b.file.fd, 0);
	for (i = 0; i < 4; i++) {
		uspf_pattern_fill(5, (uint64_t)i, page);
		cr_assert_eq(pwrite(b.file.fd, page, T_PAGE, (off_t)i * (off_t)T_PAGE), (ssize_t)T_PAGE);
	}
	w.p = t_map(u, 4 * T_PAGE, &b);
	a = t_vma_of(u, w.p);
	f = a->vm_file;
	runtime_set_debug(u, *inject_bug ? 1ull << INJ_IMMAP_BEFORE_VMA_LOCK : 0, true);
	runtime_set_stall_hook(u, NULL, NULL);
	cr_assert(vma_rwsem_start_read(&u->mm, a));
	cr_assert_eq(pthread_create(&t, NULL, split_thread, &w), 0);
	t_sleep_ms(100);			/* the writer is waiting for us */
	file_free = down_write_trylock(&f->i_mmap_rwsem);
	if (file_free)
		up_write(&f->i_mmap_rwsem);
	vma_rwsem_end_read(&u->mm, a);
	pthread_join(t, NULL);
	cr_assert_eq(w.ret, 0);
	if (*inject_bug) {
		cr_assert_not(file_free, "the writer waited for a VMA reader holding nothing");
		cr_assert_gt(runtime_violations(u, NULL, 0), 0, "the order check saw nothing");
	} else {
		cr_assert(file_free, "the writer held i_mmap_rwsem while it waited for a VMA reader");
		cr_assert_eq(runtime_violations(u, NULL, 0), 0);
	}
	runtime_set_debug(u, 0, false);
	t_assert_pattern(w.p, 4 * T_PAGE, 5, 0);
	uspf_destroy(u);
	close(b.file.fd);
}

/* ---- lock_vma_under_rcu(): anon_vma checked under the VMA lock ---- */

struct anon_race {
	struct uspf *u;
	char *p;
	sem_t at, go;
	bool armed;
	char page[T_PAGE];
};

static void hold_before_start_read(struct uspf_mm *mm, enum stall_point p, void *arg)
{
	struct anon_race *r = arg;

	(void)mm;
	if (p != STALL_LOOKUP || !__atomic_exchange_n(&r->armed, false, __ATOMIC_ACQ_REL))
		return;
	sem_post(&r->at);
	sem_wait(&r->go);
}

static void *anon_race_reader(void *arg)
{
	struct anon_race *r = arg;

	memcpy(r->page, r->p + T_PAGE, T_PAGE);		/* a read fault on page 1 */
	return NULL;
}

ParameterizedTestParameters(pervma_rwsem, anon_vma_checked_under_the_vma_lock)
{
	static bool inject_bug[] = { false, true };

	return cr_make_param_array(bool, inject_bug, 2);
}

/*
 *   A = [0, 4), page 0 written (A has an anon_vma)
 *   fault on A+1 (a handler)                writer (the test)
 *   lock_vma_under_rcu(): finds A
 *     (injection: A->anon_vma checked here)
 *     [held before vma_start_read()]
 *                                           uspf_mremap(A, whole, MAYMOVE | FIXED |
 *                                           DONTUNMAP, B): A stays, emptied, and
 *                                           gives up its anon_vma (it went with
 *                                           the pages to B: dontunmap_complete())
 *   vma_start_read(A): no writer any more
 *   (kernel order: A->anon_vma checked here: none -> the mmap_lock path)
 *   fill and commit under A's read lock?
 *
 * The check must come after the lock (fixed in 6.5): before it, the fault
 * serves a VMA without an anon_vma on a path that cannot prepare one.
 */
ParameterizedTest(bool *inject_bug, pervma_rwsem, anon_vma_checked_under_the_vma_lock)
{
	struct anon_race r = { .u = rwsem_runtime() };
	char *b = mmap(NULL, 4 * T_PAGE, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	char msg[256];
	pthread_t t;
	void *moved;

	cr_assert_neq(b, MAP_FAILED);
	r.p = t_map_pattern(r.u, 4 * T_PAGE, 3);
	r.p[0] = 'x';				/* the mmap_lock path prepares A's anon_vma */
	cr_assert_not_null(t_vma_of(r.u, r.p)->anon_vma);
	sem_init(&r.at, 0, 0);
	sem_init(&r.go, 0, 0);
	runtime_set_debug(r.u, *inject_bug ? 1ull << INJ_RWSEM_ANON_VMA_BEFORE_LOCK : 0, true);
	runtime_set_stall_hook(r.u, hold_before_start_read, &r);
	r.armed = true;
	cr_assert_eq(pthread_create(&t, NULL, anon_race_reader, &r), 0);
	sem_wait(&r.at);
	cr_assert_eq(uspf_mremap(r.u, r.p, 4 * T_PAGE, 4 * T_PAGE,
				 MREMAP_MAYMOVE | MREMAP_FIXED | MREMAP_DONTUNMAP, b, &moved), 0);
	cr_assert_null(t_vma_of(r.u, r.p)->anon_vma, "the kept VMA kept its anon_vma");
	sem_post(&r.go);
	pthread_join(t, NULL);
	/* Either way the bytes are the kept range's: its backing's, refilled. */
	cr_assert(uspf_pattern_check(3, 1, r.page));
	cr_assert_eq(b[0], 'x', "the written page moved");
	if (*inject_bug)
		cr_assert_geq(runtime_violations(r.u, msg, sizeof(msg)), 1,
			      "the fault did not go on under the VMA lock without an anon_vma");
	else
		cr_assert_eq(runtime_violations(r.u, msg, sizeof(msg)), 0, "%s", msg);
	runtime_set_stall_hook(r.u, NULL, NULL);
	runtime_set_debug(r.u, 0, false);
	uspf_destroy(r.u);
}
