/* SPDX-License-Identifier: MIT */
/*
 * tests/policy/test_spf_adaptive.c - Arcangeli's contention-triggered
 * speculation (src/policy_spf_adaptive.c) on real faults: the classic path
 * while mmap_lock is free, speculation when it is found held and for the
 * window after, and the by-hand revalidation at the commit point.
 *
 * The tests make contention themselves by holding the model's mmap_lock
 * for read while another thread faults: a fault that completes while the
 * lock is held cannot have waited for it.
 */
#include <errno.h>
#include <pthread.h>
#include <semaphore.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "tests/helpers.h"
#include "hooks.h"
#include "runtime.h"

TestSuite(spf_adaptive, .timeout = 30);

/* How long a fault may take before we call it blocked (never reached when right). */
#define T_BLOCKED_NS 10000000000ull

static struct uspf *adaptive_runtime(unsigned int hz, unsigned int window)
{
	struct uspf_config cfg;

	uspf_config_init(&cfg);
	cfg.policy = USPF_POLICY_SPF_ADAPTIVE;
	cfg.handlers = 1;
	cfg.folio_pages = 1;		/* one fault per page: counts are exact */
	cfg.anon_vma_at_mmap = true;	/* no NO_ANON_VMA fallbacks */
	cfg.intake = USPF_INTAKE_POLL;
	if (hz)
		cfg.hz = hz;
	cfg.adaptive_window = window;
	return t_runtime_cfg(&cfg);
}

/* A thread that reads pages and says when it is done. */
struct toucher {
	const char *p;
	size_t pages;
	uint64_t gen;
	bool ok;
	atomic_bool done;
};

static void *touch_pages(void *arg)
{
	struct toucher *t = arg;
	size_t i;

	t->ok = true;
	for (i = 0; i < t->pages; i++)
		if (!uspf_pattern_check(t->gen, i, t->p + i * T_PAGE))
			t->ok = false;
	atomic_store(&t->done, true);
	return NULL;
}

static bool wait_done(struct toucher *t)
{
	struct timespec ts = { 0, 1000 * 1000 };
	uint64_t start = t_now_ns();

	while (!atomic_load(&t->done)) {
		if (t_now_ns() - start > T_BLOCKED_NS)
			return false;
		nanosleep(&ts, NULL);
	}
	return true;
}

/*
 * Fault `pages` pages of p (pattern gen) from another thread while this
 * one holds mmap_lock, for read or for write.  True if every fault
 * finished before the lock was released; the data check is in *t.
 */
static bool fault_while_locked(struct uspf *u, struct toucher *t, const char *p,
			       size_t pages, uint64_t gen, bool write)
{
	pthread_t th;
	bool finished;

	memset(t, 0, sizeof(*t));
	t->p = p;
	t->pages = pages;
	t->gen = gen;
	if (write)
		mmap_write_lock(&u->mm);
	else
		mmap_read_lock(&u->mm);
	cr_assert_eq(pthread_create(&th, NULL, touch_pages, t), 0);
	finished = wait_done(t);
	if (write)
		mmap_write_unlock(&u->mm);
	else
		mmap_read_unlock(&u->mm);
	pthread_join(th, NULL);
	return finished;
}

/* No contention: every fault takes the lock with the exclusive trylock. */
Test(spf_adaptive, uncontended_faults_take_the_classic_path)
{
	struct uspf *u = adaptive_runtime(0, 2);
	char *p = t_map_pattern(u, 16 * T_PAGE, 1);

	t_assert_pattern(p, 16 * T_PAGE, 1, 0);
	t_quiesce(u);
	cr_assert_eq(t_counter(u, USPF_C_FAULTS), 16);
	cr_assert_eq(t_counter(u, USPF_C_MMAP_LOCK_FAULT), 16);
	cr_assert_eq(t_counter(u, USPF_C_SPF_CONTENDED), 0);
	cr_assert_eq(t_counter(u, USPF_C_SPF_WINDOW), 0);
	cr_assert_eq(t_counter(u, USPF_C_ADAPTIVE_ATTEMPT), 0);
	cr_assert_eq(t_counter(u, USPF_C_ADAPTIVE_SUCCESS), 0);
	cr_assert_eq(t_counter(u, USPF_C_MMAP_LOCK_FALLBACK), 0);
	uspf_destroy(u);
}

/*
 * mmap_lock held: the exclusive trylock fails, contention is noted, the
 * faults speculate.  Held for read (a plain read trylock would succeed:
 * Arcangeli's primitive fails on readers too), then for write (a fault
 * that took the lock could not finish while it is held).
 */
Test(spf_adaptive, contention_triggers_speculation)
{
	struct uspf *u = adaptive_runtime(0, 2);
	char *p = t_map_pattern(u, 16 * T_PAGE, 2);
	struct toucher t;

	cr_assert(fault_while_locked(u, &t, p, 8, 2, false),
		  "a fault waited for mmap_lock: no speculation under contention");
	cr_assert(t.ok, "wrong data from a speculative fault");
	t_quiesce(u);
	cr_assert_geq(t_counter(u, USPF_C_SPF_CONTENDED), 1);
	cr_assert_eq(t_counter(u, USPF_C_ADAPTIVE_SUCCESS), 8);
	cr_assert_eq(t_counter(u, USPF_C_MMAP_LOCK_FAULT), 0);

	cr_assert(fault_while_locked(u, &t, p, 16, 2, true),
		  "a fault waited for the mmap write lock: no speculation under contention");
	cr_assert(t.ok, "wrong data from a speculative fault");
	t_quiesce(u);
	cr_assert_eq(t_counter(u, USPF_C_ADAPTIVE_SUCCESS), 16);
	cr_assert_eq(t_counter(u, USPF_C_MMAP_LOCK_FAULT), 0);
	cr_assert_eq(t_counter(u, USPF_C_SPF_CONTENDED) + t_counter(u, USPF_C_SPF_WINDOW), 16);
	cr_assert_eq(t_counter(u, USPF_C_ADAPTIVE_ATTEMPT), 16);
	uspf_destroy(u);
}

/*
 * After contention, faults in the window speculate without the trylock,
 * even with the lock free.  hz = 10 and a window of 5 jiffies: at least
 * half a second, far longer than eight faults take.
 */
Test(spf_adaptive, window_after_contention)
{
	struct uspf *u = adaptive_runtime(10, 5);
	char *p = t_map_pattern(u, 16 * T_PAGE, 3);
	struct toucher t;

	cr_assert(fault_while_locked(u, &t, p, 1, 3, false));
	cr_assert(t.ok);
	t_quiesce(u);
	cr_assert_eq(t_counter(u, USPF_C_SPF_CONTENDED), 1);

	/* The lock is free now; the window is still open. */
	t_assert_pattern(p + 8 * T_PAGE, 8 * T_PAGE, 3, 8);
	t_quiesce(u);
	cr_assert_gt(t_counter(u, USPF_C_SPF_WINDOW), 0);
	cr_assert_eq(t_counter(u, USPF_C_SPF_CONTENDED), 1);
	/* A fault past the window (a stalled machine) would take the classic path. */
	cr_assert_eq(t_counter(u, USPF_C_ADAPTIVE_SUCCESS) + t_counter(u, USPF_C_MMAP_LOCK_FAULT), 9);
	uspf_destroy(u);
}

/*
 * A writer between the snapshot and the commit, with no vm_sequence to
 * tell: only the by-hand revalidation can see it.  The fault speculates in a (long) window, so it holds no
 * lock and the writer can take mmap_lock for write.  The fill callback of
 * the first fault lets the writer MAP_FIXED a new mapping (pattern
 * generation 5) over the faulting page and waits for it:
 *
 *   0123
 *   FRRR    before: F (faulting page) and R, one VMA filled with gen 4
 *   NRRR    after:  N, a new VMA with gen 5; R, the old VMA's tail
 *
 * The snapshot's VMA is gone from the index: with the revalidation the
 * fault aborts and the classic path installs generation 5; without it the
 * fault installs generation 4's bytes into the new mapping.
 */
struct race {
	struct uspf *u;
	char *p;
	sem_t in_fill;
	sem_t writer_done;
	int fills;
	int writer_ret;
	bool fill_waited_out;	/* the writer never came: the fill held mmap_lock */
};

static int racing_fill(void *arg, void *dst, uint64_t offset, size_t len)
{
	struct race *r = arg;
	struct timespec until;
	size_t i;

	for (i = 0; i < len / T_PAGE; i++)
		uspf_pattern_fill(4, offset / T_PAGE + i, (char *)dst + i * T_PAGE);
	if (__atomic_fetch_add(&r->fills, 1, __ATOMIC_RELAXED) == 0) {
		sem_post(&r->in_fill);
		/* Bounded: a fault holding mmap_lock here would keep the writer out. */
		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_sec += 10;
		while (sem_timedwait(&r->writer_done, &until)) {
			if (errno != EINTR) {
				r->fill_waited_out = true;
				break;
			}
		}
	}
	return 0;
}

static void *race_remapper(void *arg)
{
	struct race *r = arg;
	struct uspf_backing b = { .kind = USPF_BACKING_PATTERN, .pattern.generation = 5 };
	void *out = NULL;

	sem_wait(&r->in_fill);
	r->writer_ret = uspf_mmap(r->u, r->p, T_PAGE, PROT_READ | PROT_WRITE,
				  MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, &b, &out);
	if (!r->writer_ret && out != r->p)
		r->writer_ret = -EFAULT;
	sem_post(&r->writer_done);
	return NULL;
}

/*
 * Run the race with `writer` on another thread; returns the pattern
 * generation seen in page 0 (4, 5, or 0 for neither).
 */
static uint64_t race_run(uint64_t inject_mask, struct race *r, void *(*writer)(void *))
{
	struct uspf_backing b = { .kind = USPF_BACKING_FILL, .fill = { racing_fill, r } };
	struct toucher t;
	char *trigger;
	pthread_t w;
	uint64_t seen = 0;

	memset(r, 0, sizeof(*r));
	r->u = adaptive_runtime(10, 1000);	/* 100 s: the whole test is in the window */
	runtime_set_debug(r->u, inject_mask, true);	/* debug checks at the commit */
	sem_init(&r->in_fill, 0, 0);
	sem_init(&r->writer_done, 0, 0);
	r->p = t_map(r->u, 4 * T_PAGE, &b);
	trigger = t_map_pattern(r->u, T_PAGE, 6);

	/* Open the window: one contended fault elsewhere. */
	cr_assert(fault_while_locked(r->u, &t, trigger, 1, 6, false));
	cr_assert(t.ok);

	cr_assert_eq(pthread_create(&w, NULL, writer, r), 0);
	if (uspf_pattern_check(5, 0, r->p))
		seen = 5;
	else if (uspf_pattern_check(4, 0, r->p))
		seen = 4;
	pthread_join(w, NULL);
	cr_assert_not(r->fill_waited_out, "the writer waited for the fill: it was not speculative");
	cr_assert_eq(r->writer_ret, 0, "writer: %s", strerror(-r->writer_ret));
	t_quiesce(r->u);
	cr_assert_eq(t_counter(r->u, USPF_C_SPF_CONTENDED), 1);
	cr_assert_geq(t_counter(r->u, USPF_C_SPF_WINDOW), 1);
	return seen;
}

Test(spf_adaptive, revalidation_catches_writer)
{
	char msg[256];
	struct race r;
	uint64_t seen = race_run(0, &r, race_remapper);

	cr_assert_eq(seen, 5, "page 0 holds generation %lu, not the new mapping's 5",
		     (unsigned long)seen);
	cr_assert_eq(t_counter(r.u, USPF_C_ADAPTIVE_ABORT_VMA_CHANGED), 1);
	cr_assert_eq(t_counter(r.u, USPF_C_MMAP_LOCK_FALLBACK), 1);
	cr_assert_eq(r.fills, 1, "the new mapping is not the fill's: %d fills", r.fills);
	cr_assert_eq(runtime_violations(r.u, msg, sizeof(msg)), 0, "%s", msg);
	/* The old VMA's tail still speculates and holds the old generation. */
	t_assert_pattern(r.p + T_PAGE, 3 * T_PAGE, 4, 1);
	uspf_destroy(r.u);
}

/* The same race with the revalidation switched off: stale bytes in the new mapping. */
Test(spf_adaptive, no_revalidation_installs_stale_page)
{
	struct race r;
	uint64_t seen = race_run(1ull << INJ_ADAPTIVE_NO_REVALIDATE, &r, race_remapper);

	cr_assert_eq(seen, 4, "expected the old generation 4 in the new mapping, saw %lu",
		     (unsigned long)seen);
	cr_assert_eq(t_counter(r.u, USPF_C_ADAPTIVE_ABORT_VMA_CHANGED), 0);
	cr_assert_eq(t_counter(r.u, USPF_C_ADAPTIVE_SUCCESS), 2);
	/* The commit-point debug check sees what the missing revalidation let through. */
	cr_assert_geq(runtime_violations(r.u, NULL, 0), 1);
	uspf_destroy(r.u);
}

/*
 * A writer that changes the VMA in place: mprotect of the whole mapping
 * keeps the VMA object, attached and in the index, and changes only
 * vm_flags.  Only the field-by-field comparison sees it; the fault aborts
 * and the classic path fills again.
 */
static void *race_protector(void *arg)
{
	struct race *r = arg;

	sem_wait(&r->in_fill);
	r->writer_ret = uspf_mprotect(r->u, r->p, 4 * T_PAGE, PROT_READ);
	sem_post(&r->writer_done);
	return NULL;
}

Test(spf_adaptive, revalidation_compares_fields)
{
	char msg[256];
	struct race r;
	uint64_t seen = race_run(0, &r, race_protector);

	cr_assert_eq(seen, 4);
	cr_assert_eq(t_counter(r.u, USPF_C_ADAPTIVE_ABORT_VMA_CHANGED), 1);
	cr_assert_eq(t_counter(r.u, USPF_C_MMAP_LOCK_FALLBACK), 1);
	cr_assert_eq(r.fills, 2, "the fallback fills again: %d fills", r.fills);
	cr_assert_eq(runtime_violations(r.u, msg, sizeof(msg)), 0, "%s", msg);
	uspf_destroy(r.u);
}

/* ---- mprotect: vm_flags before the page-table walk ---- */

struct prot_race {
	struct uspf *u;
	char *p;
	sem_t fault_at, fault_go, writer_at, writer_go;
	bool fault_armed, writer_armed;
	bool read_ok;
	int writer_ret;
};

static void prot_race_hook(struct uspf_mm *mm, enum stall_point p, void *arg)
{
	struct prot_race *r = arg;

	(void)mm;
	if (p == STALL_FILLED && __atomic_exchange_n(&r->fault_armed, false, __ATOMIC_ACQ_REL)) {
		sem_post(&r->fault_at);
		sem_wait(&r->fault_go);
	} else if (p == STALL_PROT_CHANGED &&
		   __atomic_exchange_n(&r->writer_armed, false, __ATOMIC_ACQ_REL)) {
		sem_post(&r->writer_at);
		sem_wait(&r->writer_go);
	}
}

static void *prot_race_reader(void *arg)
{
	struct prot_race *r = arg;
	char buf[T_PAGE];

	r->read_ok = t_copy_page_safe(r->p, buf);	/* SIGSEGV once PROT_NONE */
	return NULL;
}

static void *prot_race_writer(void *arg)
{
	struct prot_race *r = arg;

	r->writer_ret = uspf_mprotect(r->u, r->p, 4 * T_PAGE, PROT_NONE);
	return NULL;
}

ParameterizedTestParameters(spf_adaptive, mprotect_sets_flags_before_the_page_tables)
{
	static bool inject_bug[] = { false, true };

	return cr_make_param_array(bool, inject_bug, 2);
}

/*
 *   A = [0, 4) read-write, never touched
 *   fault (a handler)                       writer
 *   read fault on A+0 while mmap_lock is
 *   held: speculate; snapshot (rw), fill
 *     [held before the PTL]
 *                                           uspf_mprotect(A, PROT_NONE):
 *                                             vm_flags = none (kernel order)
 *                                             PTLs: the page tables -> none
 *                                             [held after the PTLs]
 *   PTL; revalidate by hand: vm_flags
 *   rw == snapshot?  commit
 *                                             (injection: vm_flags = none here)
 *
 * mprotect_fixup() sets vm_flags before change_protection(): the by-hand
 * revalidation then sees the change and the fault goes to the classic
 * path.  With the flags set after the page-table section the fault
 * commits with the old protection into page tables that have the new one
 * (in the kernel: a writable PTE in a read-only VMA) - the commit-point
 * debug check says so.
 */
ParameterizedTest(bool *inject_bug, spf_adaptive, mprotect_sets_flags_before_the_page_tables)
{
	struct prot_race r = { .u = adaptive_runtime(0, 0), .fault_armed = true,
			       .writer_armed = true };
	pthread_t reader, writer;
	char msg[256];

	r.p = t_map_pattern(r.u, 4 * T_PAGE, 2);
	sem_init(&r.fault_at, 0, 0);
	sem_init(&r.fault_go, 0, 0);
	sem_init(&r.writer_at, 0, 0);
	sem_init(&r.writer_go, 0, 0);
	runtime_set_debug(r.u, *inject_bug ? 1ull << INJ_MPROTECT_FLAGS_AFTER_PTL : 0, true);
	runtime_set_stall_hook(r.u, prot_race_hook, &r);
	t_segv_setup();
	mmap_read_lock(&r.u->mm);		/* contention: the fault speculates */
	cr_assert_eq(pthread_create(&reader, NULL, prot_race_reader, &r), 0);
	sem_wait(&r.fault_at);
	mmap_read_unlock(&r.u->mm);
	cr_assert_eq(pthread_create(&writer, NULL, prot_race_writer, &r), 0);
	sem_wait(&r.writer_at);
	sem_post(&r.fault_go);			/* the fault takes the PTL, revalidates */
	t_sleep_ms(100);			/* commits, or waits for mmap_lock */
	sem_post(&r.writer_go);
	pthread_join(writer, NULL);
	pthread_join(reader, NULL);
	cr_assert_eq(r.writer_ret, 0);
	cr_assert_not(r.read_ok, "a read of a PROT_NONE page succeeded");
	if (*inject_bug) {
		cr_assert_geq(runtime_violations(r.u, msg, sizeof(msg)), 1,
			      "the fault did not commit with the old flags");
		cr_assert_eq(t_counter(r.u, USPF_C_ADAPTIVE_ABORT_VMA_CHANGED), 0);
	} else {
		cr_assert_eq(runtime_violations(r.u, msg, sizeof(msg)), 0, "%s", msg);
		cr_assert_eq(t_counter(r.u, USPF_C_ADAPTIVE_ABORT_VMA_CHANGED), 1,
			     "the revalidation did not see the new flags");
	}
	runtime_set_stall_hook(r.u, NULL, NULL);
	runtime_set_debug(r.u, 0, false);
	uspf_destroy(r.u);
}
