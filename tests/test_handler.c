/* SPDX-License-Identifier: MIT */
/*
 * test_handler.c - the handler threads (src/handler.c): every intake serves
 * real faults, batches end in wakes, and the error paths of a resolve -
 * EEXIST and ENOENT - are provoked and seen to wake the faulting thread.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <semaphore.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "tests/as_nobody.h"
#include "tests/helpers.h"
#include "hooks.h"
#include "runtime.h"

TestSuite(handler, .timeout = 30);

struct slice {
	char *base;
	size_t pages;
	uint64_t first;
};

static void *check_slice(void *arg)
{
	struct slice *s = arg;

	t_assert_pattern(s->base, s->pages * T_PAGE, 3, s->first);
	return NULL;
}

/* Every intake: the parameters of the tests that run once per intake. */
static struct criterion_test_params every_intake_params(void)
{
	static enum uspf_intake in[] = { USPF_INTAKE_URING, USPF_INTAKE_POLL, USPF_INTAKE_BUSY };

	return cr_make_param_array(enum uspf_intake, in, 3);
}

ParameterizedTestParameters(handler, every_intake)
{
	return every_intake_params();
}

ParameterizedTest(enum uspf_intake *intake, handler, every_intake)
{
	struct uspf_config cfg;
	struct uspf_stats st;
	struct slice s[4];
	struct uspf *u;
	char *p;
	int i;

	uspf_config_init(&cfg);
	cfg.intake = *intake;
	cfg.handlers = 2;
	u = t_runtime_cfg(&cfg);
	p = t_map_pattern(u, 4 * 128 * T_PAGE, 3);
	for (i = 0; i < 4; i++)
		s[i] = (struct slice){ p + i * 128 * T_PAGE, 128, (uint64_t)i * 128 };
	t_run_threads(4, check_slice, s, sizeof(s[0]));
	t_quiesce(u);
	cr_assert_eq(uspf_stats(u, &st), 0);
	cr_assert_eq(st.intake, *intake, "intake %s in use, %s asked for",
		     uspf_intake_name(st.intake), uspf_intake_name(*intake));
	cr_assert_eq(st.handlers, 2);
	cr_assert_not(st.user_mode_only, "root gets a full userfaultfd");
	cr_assert_eq(st.counters[USPF_C_PAGES], 512);
	cr_assert_geq(st.counters[USPF_C_INTAKE_READS], 1);
	cr_assert_leq(st.counters[USPF_C_INTAKE_READS], st.counters[USPF_C_FAULTS]);
	/* Every fault got a handling time. */
	{
		uint64_t n = 0;

		for (i = 0; i < USPF_HIST_BUCKETS; i++)
			n += st.hist[i];
		cr_assert_eq(n, st.counters[USPF_C_FAULTS]);
		cr_assert_gt(uspf_stats_percentile(&st, 99), 0);
	}
	uspf_destroy(u);
}

/* Without batched wakes every resolve wakes by itself: no UFFDIO_WAKE at all. */
Test(handler, unbatched_wakes_come_from_the_copy)
{
	struct uspf_config cfg;
	struct slice s[4];
	struct uspf *u;
	char *p;
	int i;

	uspf_config_init(&cfg);
	cfg.batch_wake = false;
	cfg.handlers = 2;
	cfg.anon_vma_at_mmap = true;
	u = t_runtime_cfg(&cfg);
	p = t_map_pattern(u, 4 * 64 * T_PAGE, 3);
	for (i = 0; i < 4; i++)
		s[i] = (struct slice){ p + i * 64 * T_PAGE, 64, (uint64_t)i * 64 };
	t_run_threads(4, check_slice, s, sizeof(s[0]));
	t_quiesce(u);
	cr_assert_eq(t_counter(u, USPF_C_PAGES), 256);
	cr_assert_eq(t_counter(u, USPF_C_WAKE), t_counter(u, USPF_C_EEXIST));
	uspf_destroy(u);
}

/*
 * wake_after_unlock: one thread faulting page after page, so every batch
 * is one message.  By default its copy wakes it (no UFFDIO_WAKE at all);
 * with wake_after_unlock every fault is resolved with DONTWAKE and woken
 * by its own UFFDIO_WAKE once the policy has returned - on every policy,
 * with the right bytes.
 */
static void one_thread_faults(enum uspf_policy_id pol, bool after_unlock,
			      uint64_t *faults, uint64_t *wakes)
{
	struct uspf_config cfg;
	struct uspf *u;
	char *p;

	uspf_config_init(&cfg);
	cfg.policy = pol;
	cfg.wake_after_unlock = after_unlock;
	cfg.handlers = 1;
	u = t_runtime_cfg(&cfg);
	p = t_map_pattern(u, 64 * T_PAGE, 3);
	t_assert_pattern(p, 64 * T_PAGE, 3, 0);
	t_quiesce(u);
	*faults = t_counter(u, USPF_C_FAULTS);
	*wakes = t_counter(u, USPF_C_WAKE);
	cr_assert_eq(t_counter(u, USPF_C_PAGES), 64);
	uspf_destroy(u);
}

Test(handler, wake_after_unlock_wakes_every_fault)
{
	uint64_t faults, wakes;

	for (int pol = 0; pol < USPF_NR_POLICIES; pol++) {
		one_thread_faults((enum uspf_policy_id)pol, false, &faults, &wakes);
		cr_assert_eq(wakes, 0, "%s: the copy wakes a lone fault",
			     uspf_policy_name((enum uspf_policy_id)pol));
		one_thread_faults((enum uspf_policy_id)pol, true, &faults, &wakes);
		cr_assert_eq(wakes, faults, "%s: %lu wakes for %lu faults",
			     uspf_policy_name((enum uspf_policy_id)pol),
			     (unsigned long)wakes, (unsigned long)faults);
	}
}

/*
 * A fill that waits while something else happens to its page.  POLL
 * intake: a handler blocked in a fill holds no unread message, so the
 * other handler serves the other faults.
 */
struct hold {
	struct uspf *u;
	char *p;
	sem_t in_fill, go;
	int fills;
};

static int holding_fill(void *arg, void *dst, uint64_t offset, size_t len)
{
	struct hold *h = arg;
	size_t i;

	for (i = 0; i < len / T_PAGE; i++)
		uspf_pattern_fill(8, offset / T_PAGE + i, (char *)dst + i * T_PAGE);
	if (offset == T_PAGE && !__atomic_fetch_add(&h->fills, 1, __ATOMIC_RELAXED)) {
		sem_post(&h->in_fill);
		sem_wait(&h->go);
	}
	return 0;
}

static struct uspf *hold_runtime(enum uspf_policy_id policy, unsigned int fault_around)
{
	struct uspf_config cfg;

	uspf_config_init(&cfg);
	cfg.policy = policy;
	cfg.handlers = 2;
	cfg.intake = USPF_INTAKE_POLL;
	cfg.folio_pages = fault_around;
	cfg.anon_vma_at_mmap = true;
	return t_runtime_cfg(&cfg);
}

static void *touch_page1(void *arg)
{
	struct hold *h = arg;
	char page[T_PAGE];

	if (t_copy_page_safe(h->p + T_PAGE, page))
		cr_assert(uspf_pattern_check(8, 1, page));
	return NULL;
}

/*
 * EEXIST: the fault on page 1 fills slowly; meanwhile a fault on page 0
 * with fault-around installs pages 0-3, page 1 included.  The slow
 * fault's copy then finds its page present: EEXIST, and a wake.
 *
 *   0123
 *   aAaa    A: the slow fault, a: installed around the fault on 0
 */
T_POLICY_PARAMS(handler, eexist_wakes)
ParameterizedTest(enum uspf_policy_id *policy, handler, eexist_wakes)
{
	struct hold h = { 0 };
	struct uspf_backing b = { .kind = USPF_BACKING_FILL, .fill = { holding_fill, &h } };
	pthread_t t;

	sem_init(&h.in_fill, 0, 0);
	sem_init(&h.go, 0, 0);
	h.u = hold_runtime(*policy, 4);
	h.p = t_map(h.u, 4 * T_PAGE, &b);
	cr_assert_eq(pthread_create(&t, NULL, touch_page1, &h), 0);
	sem_wait(&h.in_fill);
	t_assert_pattern(h.p, 4 * T_PAGE, 8, 0);
	sem_post(&h.go);
	pthread_join(t, NULL);
	t_quiesce(h.u);
	cr_assert_eq(t_counter(h.u, USPF_C_EEXIST), 1);
	cr_assert_eq(t_counter(h.u, USPF_C_PAGES), 4);
	uspf_destroy(h.u);
}

/*
 * ENOENT: the program unmaps the page with the raw munmap(2) - behind the
 * model's back, as an unmodified program might - while its fault fills.
 * The copy finds no VMA (ENOENT); the thread is woken and its refault is
 * a SIGSEGV, not a hang.
 */
T_POLICY_PARAMS(handler, enoent_wakes)
ParameterizedTest(enum uspf_policy_id *policy, handler, enoent_wakes)
{
	struct hold h = { 0 };
	struct uspf_backing b = { .kind = USPF_BACKING_FILL, .fill = { holding_fill, &h } };
	pthread_t t;

	t_segv_setup();
	sem_init(&h.in_fill, 0, 0);
	sem_init(&h.go, 0, 0);
	h.u = hold_runtime(*policy, 1);
	h.p = t_map(h.u, 4 * T_PAGE, &b);
	cr_assert_eq(pthread_create(&t, NULL, touch_page1, &h), 0);
	sem_wait(&h.in_fill);
	cr_assert_eq(munmap(h.p, 4 * T_PAGE), 0);
	sem_post(&h.go);
	pthread_join(t, NULL);
	t_quiesce(h.u);
	cr_assert_eq(t_counter(h.u, USPF_C_ENOENT), 1);
	cr_assert_eq(t_counter(h.u, USPF_C_PAGES), 0);
	/*
	 * The model still has the VMA (uspf(7), LIMITS): hold its place with
	 * memory of our own before anything else can be mapped there, for
	 * uspf_destroy() to unmap.
	 */
	cr_assert_eq(mmap(h.p, 4 * T_PAGE, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE,
			  -1, 0), h.p);
	uspf_destroy(h.u);
}

/*
 * The user-mode-only userfaultfd, as an unprivileged user gets it
 * (vm.unprivileged_userfaultfd=0): the runtime says so in its stats and
 * serves the program's own faults all the same; a fault the kernel takes
 * (read(2) into a fresh page) fails with EFAULT - the mode's cost.
 * Runs in a child dropped to nobody (as_nobody.h).
 */
static int serve_as_nobody(void)
{
	struct uspf_backing b = { .kind = USPF_BACKING_PATTERN, .pattern.generation = 5 };
	struct uspf_stats st;
	struct uspf *u;
	char *p;
	int fds[2], i;

	if (uspf_create(&u, NULL))
		return 10;
	if (uspf_stats(u, &st) || !st.user_mode_only)
		return 77;	/* this machine lets anyone have a full one */
	if (uspf_mmap(u, NULL, 64 * T_PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
		      &b, (void **)&p))
		return 11;
	for (i = 0; i < 64; i++)
		if (!uspf_pattern_check(5, (uint64_t)i, p + i * T_PAGE))
			return 12;
	if (pipe(fds) || write(fds[1], "x", 1) != 1)
		return 13;
	/* mmap'ed after the checks: its first page is fresh */
	if (uspf_mmap(u, NULL, T_PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, &b,
		      (void **)&p))
		return 14;
	if (read(fds[0], p, 1) != -1 || errno != EFAULT)
		return 15;
	for (i = 0; i < 5000; i++) {
		if (uspf_stats(u, &st))
			return 16;
		if (st.counters[USPF_C_FAULTS_ENDED] == st.counters[USPF_C_FAULTS])
			break;
		usleep(1000);
	}
	if (st.counters[USPF_C_FAULTS] < 1 || st.counters[USPF_C_PAGES] < 64)
		return 17;
	uspf_destroy(u);
	return 0;
}

Test(handler, user_mode_only_serves_user_faults)
{
	t_run_as_nobody(serve_as_nobody);
}

/*
 * The bench's raw reference: faults in the raw range are resolved with
 * the same intake and copy but no model - no policy counter moves - and
 * the memory reads and writes like any zero-filled memory.
 */
Test(handler, raw_range_skips_the_model)
{
	struct uspf_backing zero = { .kind = USPF_BACKING_ZERO };
	struct uspf_config cfg;
	struct uspf_stats st;
	struct uspf *u;
	char *p, *q;
	int i;

	uspf_config_init(&cfg);
	cfg.folio_pages = 4;
	u = t_runtime_cfg(&cfg);
	p = t_map(u, 64 * T_PAGE, &zero);
	q = t_map(u, 8 * T_PAGE, &zero);
	runtime_set_raw(u, (unsigned long)p, (unsigned long)p + 64 * T_PAGE);
	for (i = 0; i < 64; i++) {
		cr_assert_eq(p[i * T_PAGE + 7], 0);
		p[i * T_PAGE + 7] = (char)i;
	}
	for (i = 0; i < 64; i++)
		cr_assert_eq(p[i * T_PAGE + 7], (char)i);
	t_quiesce(u);
	cr_assert_eq(uspf_stats(u, &st), 0);
	cr_assert_eq(st.counters[USPF_C_PAGES], 64);
	/*
	 * 16 faults of 4 pages, or a few more: the kernel may install part of
	 * a window (partial progress), and the rest faults again.
	 */
	cr_assert_geq(st.counters[USPF_C_FAULTS], 16);
	cr_assert_lt(st.counters[USPF_C_FAULTS], 64, "no fault-around");
	cr_assert_eq(st.counters[USPF_C_FOLIO_EXTRA_PAGES], 64 - st.counters[USPF_C_FAULTS]);
	cr_assert_eq(st.counters[USPF_C_SPF_ATTEMPT], 0, "the model was used");
	/* Outside the raw range the policy serves as usual. */
	q[0] = 1;
	t_quiesce(u);
	cr_assert_eq(uspf_stats(u, &st), 0);
	cr_assert_eq(st.counters[USPF_C_SPF_ATTEMPT], 1);
	uspf_destroy(u);
}

/*
 * The runtime's descriptors are high and known (uffd/fd.c): after
 * uspf_create() every descriptor it opened is above the program's range,
 * so a program's next open() still gets the lowest free number.
 */
static int highest_below(int limit, bool *kept_low)
{
	int fd, n = 0;

	*kept_low = false;
	for (fd = 0; fd < limit; fd++)
		if (fcntl(fd, F_GETFD) >= 0) {
			n++;
			if (uffd_fd_kept(fd))
				*kept_low = true;
		}
	return n;
}

ParameterizedTestParameters(handler, descriptors_are_high)
{
	return every_intake_params();
}

ParameterizedTest(enum uspf_intake *intake, handler, descriptors_are_high)
{
	struct uspf_config cfg;
	struct uspf *u;
	bool kept_low;
	int before, after, fd, kept = 0;

	before = highest_below(64, &kept_low);
	uspf_config_init(&cfg);
	cfg.intake = *intake;
	cfg.handlers = 2;
	u = t_runtime_cfg(&cfg);
	after = highest_below(64, &kept_low);
	cr_assert_eq(after, before, "the runtime took %d of the lowest 64 numbers", after - before);
	cr_assert_not(kept_low);
	for (fd = 64; fd < UFFD_FD_MAX; fd++)
		if (uffd_fd_kept(fd)) {
			cr_assert(fcntl(fd, F_GETFD) & FD_CLOEXEC, "fd %d not close-on-exec", fd);
			kept++;
		}
	/* uffd + stop eventfd, and a ring or an epoll per handler (busy: none). */
	cr_assert_geq(kept, *intake == USPF_INTAKE_BUSY ? 2 : 4);
	t_assert_pattern(t_map_pattern(u, 16 * T_PAGE, 3), 16 * T_PAGE, 3, 0);
	uspf_destroy(u);
}

/*
 * What the preload does when the program dup2()s onto one of the
 * runtime's numbers: pause the handlers, move the userfaultfd, resume -
 * over and over while four threads fault.  No fault is lost (a lost one
 * hangs its thread: the suite's timeout), every byte is right.
 */
static void *fault_slices(void *arg)
{
	check_slice(arg);
	return NULL;
}

ParameterizedTestParameters(handler, pause_and_move_lose_no_fault)
{
	return every_intake_params();
}

ParameterizedTest(enum uspf_intake *intake, handler, pause_and_move_lose_no_fault)
{
	struct uspf_config cfg;
	struct slice s[4];
	pthread_t t[4];
	struct uspf *u;
	int i, rounds = 0, old;
	char *p;

	uspf_config_init(&cfg);
	cfg.intake = *intake;
	cfg.handlers = 2;
	u = t_runtime_cfg(&cfg);
	p = t_map_pattern(u, 4 * 512 * T_PAGE, 3);
	for (i = 0; i < 4; i++) {
		s[i] = (struct slice){ p + i * 512 * T_PAGE, 512, (uint64_t)i * 512 };
		cr_assert_eq(pthread_create(&t[i], NULL, fault_slices, &s[i]), 0);
	}
	for (rounds = 0; rounds < 50; rounds++) {
		runtime_pause(u);
		old = u->uffd.fd;
		cr_assert_eq(runtime_move_uffd(u), 0);
		cr_assert_neq(u->uffd.fd, old);
		cr_assert(uffd_fd_kept(u->uffd.fd));
		cr_assert_not(uffd_fd_kept(old));
		cr_assert_eq(runtime_resume(u), 0);
		usleep(200);
	}
	for (i = 0; i < 4; i++)
		pthread_join(t[i], NULL);
	t_quiesce(u);
	cr_assert_eq(t_counter(u, USPF_C_PAGES), 4 * 512);
	uspf_destroy(u);
}

/*
 * Issue 12, item 5: a forked child creates, uses and destroys a runtime of
 * its own after its parent made one.  With liburcu's call_rcu the child had
 * no callback worker and uspf_destroy()'s barrier hung there; the model's
 * own worker (mm/call_rcu.c) starts in the child with its runtime.
 */
static int child_runtime_round_trip(void)
{
	struct uspf *u;
	char *p;
	void *out;
	int i;

	if (uspf_create(&u, NULL))
		return 1;
	if (uspf_mmap(u, NULL, 64 * T_PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
		      NULL, &out))
		return 2;
	p = out;
	for (i = 0; i < 64; i++)
		p[i * T_PAGE] = (char)i;
	for (i = 0; i < 64; i++)
		if (p[i * T_PAGE] != (char)i)
			return 3;
	if (uspf_munmap(u, p, 64 * T_PAGE))	/* frees VMAs through the callback worker */
		return 4;
	uspf_destroy(u);
	return 0;
}

Test(handler, fork_child_creates_and_destroys_its_own_runtime)
{
	struct uspf *u = t_runtime(USPF_POLICY_SPF, 1);
	char *p = t_map_pattern(u, 16 * T_PAGE, 3);
	int status;
	pid_t pid;

	t_assert_pattern(p, 16 * T_PAGE, 3, 0);
	pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		alarm(20);	/* a hang is a failure, not a stuck suite */
		_exit(child_runtime_round_trip());
	}
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	cr_assert(WIFEXITED(status), "child killed by signal %d (a hang ends by SIGALRM)",
		  WIFSIGNALED(status) ? WTERMSIG(status) : 0);
	cr_assert_eq(WEXITSTATUS(status), 0, "child step %d failed", WEXITSTATUS(status));
	t_assert_pattern(p, 16 * T_PAGE, 3, 0);
	uspf_destroy(u);
}

struct churn {
	struct uspf *u;
	atomic_bool stop;
};

/* Map and unmap without pause: every munmap queues callbacks, so the
 * callback worker is inside synchronize_rcu() much of the time. */
static void *churn_thread(void *arg)
{
	struct churn *c = arg;
	void *p;

	while (!atomic_load(&c->stop)) {
		if (uspf_mmap(c->u, NULL, 4 * T_PAGE, PROT_READ | PROT_WRITE,
			      MAP_PRIVATE | MAP_ANONYMOUS, NULL, &p) == 0)
			uspf_munmap(c->u, p, 4 * T_PAGE);
	}
	return NULL;
}

/*
 * Parent and children each create, use and destroy runtimes while the
 * parent's grace periods run: a fork that lands while the callback worker
 * is inside synchronize_rcu() copies urcu-bp's grace-period lock held,
 * and without urcu-bp's fork handlers the child's first grace period (its
 * own munmap, its uspf_destroy()) never ends.
 */
Test(handler, fork_during_grace_periods)
{
	struct churn c = { .u = t_runtime(USPF_POLICY_PERVMA_RWSEM, 1) };
	struct uspf *mine;
	pthread_t t;
	int i, status;
	pid_t pid;

	cr_assert_eq(pthread_create(&t, NULL, churn_thread, &c), 0);
	for (i = 0; i < 40; i++) {
		pid = fork();
		cr_assert_geq(pid, 0);
		if (pid == 0) {
			alarm(10);	/* a hang is a failure, not a stuck suite */
			_exit(child_runtime_round_trip());
		}
		cr_assert_eq(waitpid(pid, &status, 0), pid);
		cr_assert(WIFEXITED(status), "fork %d: child killed by signal %d (a hang ends by SIGALRM)",
			  i, WIFSIGNALED(status) ? WTERMSIG(status) : 0);
		cr_assert_eq(WEXITSTATUS(status), 0, "fork %d: child step %d failed", i,
			     WEXITSTATUS(status));
	}
	atomic_store(&c.stop, true);
	pthread_join(t, NULL);
	/* And the parent makes and ends one of its own beside the first. */
	cr_assert_eq(uspf_create(&mine, NULL), 0);
	uspf_destroy(mine);
	uspf_destroy(c.u);
}

/*
 * A batch's wakes: faults whose ranges can merge are resolved with
 * DONTWAKE and woken by one UFFDIO_WAKE; a fault alone in its part of the
 * address space is woken by its own copy - no extra system call.  The
 * faults are queued while the handlers are paused, so that one read takes
 * them all as one batch.
 */
struct toucher_arg {
	volatile char *addr;
};

static void *touch_one(void *arg)
{
	struct toucher_arg *t = arg;

	(void)*t->addr;
	return NULL;
}

static uint64_t batch_wakes(const size_t *pages, int n)
{
	struct toucher_arg args[8];
	struct uspf_config cfg;
	pthread_t th[8];
	struct uspf *u;
	uint64_t wakes;
	char *p;
	int i;

	uspf_config_init(&cfg);
	cfg.handlers = 1;
	cfg.spin_us = 0;
	u = t_runtime_cfg(&cfg);
	p = t_map_pattern(u, 64 * T_PAGE, 9);
	runtime_pause(u);
	for (i = 0; i < n; i++) {
		args[i].addr = p + pages[i] * T_PAGE;
		cr_assert_eq(pthread_create(&th[i], NULL, touch_one, &args[i]), 0);
	}
	t_sleep_ms(100);		/* every thread faulted and waits */
	cr_assert_eq(runtime_resume(u), 0);
	for (i = 0; i < n; i++)
		pthread_join(th[i], NULL);
	t_quiesce(u);
	cr_assert_eq(t_counter(u, USPF_C_PAGES), (uint64_t)n);
	for (i = 0; i < n; i++)
		t_assert_pattern(p + pages[i] * T_PAGE, T_PAGE, 9, pages[i]);
	wakes = t_counter(u, USPF_C_WAKE);
	uspf_destroy(u);
	return wakes;
}

Test(handler, batch_wakes_only_where_ranges_merge)
{
	static const size_t apart[] = { 0, 16, 32, 48 }, together[] = { 20, 21, 22, 23 };

	cr_assert_eq(batch_wakes(apart, 4), 0, "faults far apart are woken by their copies");
	cr_assert_eq(batch_wakes(together, 4), 1, "four adjacent faults share one UFFDIO_WAKE");
}

/*
 * The probe (cfg.probe_ms): while a thread faults, a fault of the
 * runtime's own is timed every probe_ms; it is not counted as a fault of
 * the program's, and uspf_destroy() ends it promptly.  While nothing
 * faults it does not probe.
 */
Test(handler, probe_times_round_trips_while_the_program_faults)
{
	struct uspf_config cfg;
	uint64_t t0, trips, idle_trips;
	size_t touched = 0, i;
	struct uspf *u;
	char *p;

	uspf_config_init(&cfg);
	cfg.probe_ms = 5;
	u = t_runtime_cfg(&cfg);
	p = t_map_pattern(u, 4096 * T_PAGE, 12);
	for (t0 = t_now_ns(), i = 0; i < 4096 && t_now_ns() - t0 < 300000000ull; i++, touched++) {
		t_assert_pattern(p + i * T_PAGE, T_PAGE, 12, i);
		if (i % 64 == 63)
			t_sleep_ms(2);	/* a few probes per run of faults */
	}
	t_quiesce(u);
	cr_assert_eq(t_counter(u, USPF_C_FAULTS), touched, "the probe's faults are not the program's");
	trips = t_counter(u, USPF_C_ROUND_TRIPS);
	cr_assert_geq(trips, 3, "%lu probes", (unsigned long)trips);
	cr_assert_gt(t_counter(u, USPF_C_ROUND_TRIP_NS) / trips, 0);
	cr_assert_gt(t_counter(u, USPF_C_HANDLE_NS), 0);
	t_sleep_ms(20);			/* one more look may still see the last faults */
	idle_trips = t_counter(u, USPF_C_ROUND_TRIPS);
	t_sleep_ms(100);
	cr_assert_eq(t_counter(u, USPF_C_ROUND_TRIPS), idle_trips, "it probed an idle program");
	t0 = t_now_ns();
	uspf_destroy(u);
	cr_assert_lt(t_now_ns() - t0, 500000000ull, "destroy took %lu ms",
		     (unsigned long)((t_now_ns() - t0) / 1000000));
}
