/* SPDX-License-Identifier: MIT */
/*
 * helpers.c - see helpers.h.
 */
#include <errno.h>
#include <pthread.h>
#include <semaphore.h>
#include <setjmp.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#include "tests/helpers.h"
#include "runtime.h"
#include "mm/vma.h"

struct uspf *t_runtime_cfg(const struct uspf_config *cfg)
{
	struct uspf *u = NULL;
	int ret = uspf_create(&u, cfg);

	cr_assert_eq(ret, 0, "uspf_create: %s", strerror(-ret));
	return u;
}

struct uspf *t_runtime(enum uspf_policy_id policy, unsigned int fault_around)
{
	struct uspf_config cfg;

	uspf_config_init(&cfg);
	cfg.policy = policy;
	cfg.folio_pages = fault_around;
	cfg.handlers = 2;
	return t_runtime_cfg(&cfg);
}

void *t_map(struct uspf *u, size_t len, const struct uspf_backing *b)
{
	void *p = NULL;
	int ret = uspf_mmap(u, NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, b, &p);

	cr_assert_eq(ret, 0, "uspf_mmap: %s", strerror(-ret));
	return p;
}

void *t_map_pattern(struct uspf *u, size_t len, uint64_t gen)
{
	struct uspf_backing b = { .kind = USPF_BACKING_PATTERN, .pattern.generation = gen };

	return t_map(u, len, &b);
}

uint64_t t_counter(struct uspf *u, enum uspf_counter c)
{
	struct uspf_stats st;

	cr_assert_eq(uspf_stats(u, &st), 0);
	return st.counters[c];
}

void t_quiesce(struct uspf *u)
{
	struct uspf_stats a, b;
	struct timespec ts = { 0, 5 * 1000 * 1000 };

	cr_assert_eq(uspf_stats(u, &a), 0);
	for (;;) {
		nanosleep(&ts, NULL);
		cr_assert_eq(uspf_stats(u, &b), 0);
		/* Every fault taken in has ended, and nothing new came in. */
		if (!memcmp(a.counters, b.counters, sizeof(a.counters)) &&
		    b.counters[USPF_C_FAULTS_ENDED] == b.counters[USPF_C_FAULTS])
			return;
		a = b;
	}
}

void t_assert_pattern(const void *p, size_t len, uint64_t gen, uint64_t pgoff0)
{
	size_t i;

	for (i = 0; i < len / T_PAGE; i++)
		cr_assert(uspf_pattern_check(gen, pgoff0 + i, (const char *)p + i * T_PAGE),
			  "page %zu (pgoff %lu) does not hold generation %lu's pattern",
			  i, (unsigned long)(pgoff0 + i), (unsigned long)gen);
}

void t_run_threads(unsigned int n, void *(*fn)(void *), void *args, size_t arg_size)
{
	pthread_t *t = calloc(n, sizeof(*t));
	unsigned int i;

	cr_assert(t);
	for (i = 0; i < n; i++)
		cr_assert_eq(pthread_create(&t[i], NULL, fn, (char *)args + i * arg_size), 0);
	for (i = 0; i < n; i++)
		pthread_join(t[i], NULL);
	free(t);
}

static __thread sigjmp_buf *t_jmp;

static void t_segv(int sig, siginfo_t *si, void *uc)
{
	if (t_jmp)
		siglongjmp(*t_jmp, 1);
	signal(sig, SIG_DFL);
	raise(sig);
}

void t_segv_setup(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = t_segv;
	sa.sa_flags = SA_SIGINFO | SA_NODEFER;
	sigaction(SIGSEGV, &sa, NULL);
	sigaction(SIGBUS, &sa, NULL);
}

bool t_copy_page_safe(const void *page, void *dst)
{
	sigjmp_buf jb;

	if (sigsetjmp(jb, 1)) {
		t_jmp = NULL;
		return false;
	}
	t_jmp = &jb;
	memcpy(dst, page, T_PAGE);
	__asm__ volatile("" ::: "memory");
	t_jmp = NULL;
	return true;
}

uint64_t t_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

struct slow_fill {
	struct uspf *u;
	char *other;
	sem_t in_fill;
	sem_t writer_done;
	bool writer_waited;
	bool dontneed;		/* the writer: MADV_DONTNEED (else mprotect) */
	int fills;
};

static int slow_fill_cb(void *arg, void *dst, uint64_t offset, size_t len)
{
	struct slow_fill *sf = arg;
	struct timespec ts;

	memset(dst, 0x11, len);
	if (__atomic_fetch_add(&sf->fills, 1, __ATOMIC_RELAXED))
		return 0;
	sem_post(&sf->in_fill);
	/* Under mmap_lock the writer cannot finish: give up waiting after 300 ms. */
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_nsec += 300 * 1000 * 1000;
	if (ts.tv_nsec >= 1000000000) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000;
	}
	while (sem_timedwait(&sf->writer_done, &ts)) {
		if (errno == ETIMEDOUT) {
			sf->writer_waited = true;
			return 0;
		}
	}
	return 0;
}

static void *slow_fill_writer(void *arg)
{
	struct slow_fill *sf = arg;

	sem_wait(&sf->in_fill);
	if (sf->dontneed)
		cr_assert_eq(uspf_madvise(sf->u, sf->other, T_PAGE, MADV_DONTNEED), 0);
	else
		cr_assert_eq(uspf_mprotect(sf->u, sf->other, T_PAGE, PROT_READ), 0);
	sem_post(&sf->writer_done);
	return NULL;
}

static bool blocked_by_fill(enum uspf_policy_id policy, bool dontneed)
{
	struct slow_fill sf = { .dontneed = dontneed };
	struct uspf_backing b = { .kind = USPF_BACKING_FILL, .fill = { slow_fill_cb, &sf } };
	struct uspf_config cfg;
	volatile char *p;
	pthread_t w;

	uspf_config_init(&cfg);
	cfg.policy = policy;
	cfg.handlers = 1;
	cfg.anon_vma_at_mmap = true;
	sf.u = t_runtime_cfg(&cfg);
	sem_init(&sf.in_fill, 0, 0);
	sem_init(&sf.writer_done, 0, 0);
	p = t_map(sf.u, T_PAGE, &b);
	sf.other = t_map_pattern(sf.u, T_PAGE, 1);
	cr_assert_eq(pthread_create(&w, NULL, slow_fill_writer, &sf), 0);
	cr_assert_eq(p[0], 0x11);
	pthread_join(w, NULL);
	uspf_destroy(sf.u);
	return sf.writer_waited;
}

bool t_writer_blocked_by_fill(enum uspf_policy_id policy)
{
	return blocked_by_fill(policy, false);
}

bool t_dontneed_blocked_by_fill(enum uspf_policy_id policy)
{
	return blocked_by_fill(policy, true);
}

void t_sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000 };

	nanosleep(&ts, NULL);
}

struct uspf_vma *t_vma_of(struct uspf *u, void *addr)
{
	struct uspf_vma *vma;

	rcu_read_lock();
	vma = vma_lookup(&u->mm, (unsigned long)addr);
	rcu_read_unlock();
	cr_assert_not_null(vma);
	return vma;
}

/* The real VMA containing addr, from the text of /proc/self/maps. */
bool t_real_vma_at(unsigned long addr, struct t_real_vma *rv)
{
	FILE *f = fopen("/proc/self/maps", "r");
	char line[512];
	bool found = false;

	cr_assert_not_null(f);
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "%lx-%lx %4s", &rv->start, &rv->end, rv->perms) != 3)
			continue;
		if (rv->start <= addr && addr < rv->end) {
			found = true;
			break;
		}
	}
	fclose(f);
	return found;
}

/*
 * Every model VMA in [start, end) lies inside one real VMA, and with
 * `exact`, is exactly a real VMA.  (Only where two backings, or two runs
 * of one backing's pages that do not follow on, sit in one real VMA does
 * the model keep a boundary the kernel does not have.)
 */
void t_assert_boundaries(struct uspf *u, void *start, size_t len, bool exact)
{
	unsigned long a = (unsigned long)start, end = a + len;
	struct uspf_vma *vma;
	struct t_real_vma rv;

	while (a < end) {
		rcu_read_lock();
		vma = vma_lookup(&u->mm, a);
		rcu_read_unlock();
		if (!vma) {
			a += T_PAGE;
			continue;
		}
		cr_assert(t_real_vma_at(a, &rv), "the model maps %#lx, the kernel does not", a);
		if (exact)
			cr_assert(vma->vm_start == rv.start && vma->vm_end == rv.end,
				  "model VMA %#lx-%#lx, the kernel's %#lx-%#lx", vma->vm_start,
				  vma->vm_end, rv.start, rv.end);
		else
			cr_assert(vma->vm_end <= rv.end,
				  "model VMA %#lx-%#lx across the kernel's boundary %#lx",
				  vma->vm_start, vma->vm_end, rv.end);
		a = vma->vm_end;
	}
}

