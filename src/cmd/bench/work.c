/* SPDX-License-Identifier: MIT */
/*
 * cmd/bench/work.c - the harness of the field's other workloads (page_fault1,
 * malloc1, spf_test, execl, random; each in its own bench_<name>.c).
 *
 * An address space (struct bench_as) is one of three things the workloads
 * map in and fault on, through the same two calls: native memory
 * (mmap(2)/munmap(2): the kernel's faults), the naive handler
 * (cmd/bench/naive.c: mmap + UFFDIO_REGISTER, one poll/read/copy thread), or a
 * uspf runtime (uspf_mmap()/uspf_munmap(): the policy under test).  A
 * workload is written once and measured on all three.
 *
 * One iteration of a row:
 *   1. the address spaces: one shared by every worker, or (own_mm, as
 *      Execl's processes) one per worker - for uspf a runtime per worker
 *      thread, all in this process so that they share the one file object
 *      and its i_mmap_rwsem; for the references a process per worker
 *      (fork(2)), since the kernel's mm is per process;
 *   2. the workload's setup() in the shared space (e.g. pft's region);
 *   3. the workers (threads, or forked processes) run prepare(), then wait
 *      at a start gate (a pipe whose write end is closed to open it);
 *   4. each faulting worker runs the body, timing every touch into its own
 *      histogram; extra workers (malloc1's churn) loop until every
 *      faulting worker is done;
 *   5. the counters: uspf_stats() of every runtime once they hold still,
 *      the naive handlers' own, or the kernel's minor faults (getrusage).
 * faults/s = pages touched by the faulting workers / (last faulting
 * worker's end - first one's start).  The workers' results live in a
 * MAP_SHARED area so that forked workers can hand them back.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cmd/bench/bench.h"

/* Shared with the workers (and forked ones): the first page of the shared area. */
struct bench_ctl {
	_Atomic unsigned int faulting;	/* faulting workers not done yet */
	_Atomic int abort;		/* the gate opened on a failed start: leave */
};

const struct bench_wl *bench_wl_of(enum bench_workload id)
{
	switch (id) {
	case BENCH_PAGE_FAULT1:
		return &bench_wl_page_fault1;
	case BENCH_MALLOC1:
		return &bench_wl_malloc1;
	case BENCH_SPF_TEST:
		return &bench_wl_spf_test;
	case BENCH_EXECL:
		return &bench_wl_execl;
	case BENCH_RANDOM:
		return &bench_wl_random;
	case BENCH_EBIZZY:
		return &bench_wl_ebizzy;
	default:
		return NULL;
	}
}

/* ---- address spaces ---- */

int bench_as_map(struct bench_as *as, size_t len, int fd, void **out)
{
	struct uspf_backing b = { .kind = USPF_BACKING_ZERO };
	void *p;
	int ret;

	switch (as->kind) {
	case BENCH_AS_NATIVE:
		p = mmap(NULL, len, PROT_READ | PROT_WRITE,
			 fd < 0 ? MAP_PRIVATE | MAP_ANONYMOUS : MAP_PRIVATE, fd, 0);
		if (p == MAP_FAILED)
			return -errno;
		/* As on a registered range: every 4 KiB page one fault. */
		if (fd < 0 && madvise(p, len, MADV_NOHUGEPAGE) && errno != EINVAL) {
			ret = -errno;
			munmap(p, len);
			return ret;
		}
		*out = p;
		return 0;
	case BENCH_AS_NAIVE:
		return bench_naive_map(as->naive, len, fd, out);
	case BENCH_AS_USPF:
		if (fd >= 0) {
			b.kind = USPF_BACKING_FILE;
			b.file.fd = fd;
			b.file.offset = 0;
		}
		return uspf_mmap(as->u, NULL, len, PROT_READ | PROT_WRITE,
				 MAP_PRIVATE | MAP_ANONYMOUS, &b, out);
	}
	return -EINVAL;
}

int bench_as_unmap(struct bench_as *as, void *addr, size_t len)
{
	switch (as->kind) {
	case BENCH_AS_NATIVE:
		return munmap(addr, len) ? -errno : 0;
	case BENCH_AS_NAIVE:
		return bench_naive_unmap(as->naive, addr, len);
	case BENCH_AS_USPF:
		return uspf_munmap(as->u, addr, len);
	}
	return -EINVAL;
}

int bench_region_setup(struct bench_run *r)
{
	void *p;
	int ret;

	ret = bench_as_map(&r->as, r->o->size, -1, &p);
	if (ret)
		return ret;
	r->region = p;
	r->region_size = r->o->size;
	return 0;
}

void bench_region_teardown(struct bench_run *r)
{
	int ret;

	if (!r->region)
		return;
	ret = bench_as_unmap(&r->as, r->region, r->region_size);
	if (ret)
		fprintf(stderr, "uspf bench: %s: unmap: %s\n", r->wl->name, strerror(-ret));
	r->region = NULL;
}

/* ---- workers ---- */

bool bench_faulting_done(const struct bench_worker *w)
{
	return atomic_load_explicit(&w->run->ctl->faulting, memory_order_acquire) == 0;
}

bool bench_more_loops(const struct bench_worker *w, uint64_t loops_done)
{
	if (w->run->o->loops)
		return loops_done < w->run->o->loops;
	return !bench_expired(w, bench_now_ns());
}

struct gate {
	int ready[2];	/* workers write a byte each when prepared */
	int go[2];	/* the write end is closed to release them */
};

static bool worker_is_faulting(const struct bench_worker *w)
{
	return w->id < w->run->threads;
}

/* Prepared, at the gate, the body: in a thread or in a forked child. */
static void worker_main(struct bench_worker *w, struct gate *g, bool forked)
{
	const struct bench_wl *wl = w->run->wl;
	struct bench_ctl *ctl = w->run->ctl;
	bool faulting = worker_is_faulting(w);
	char c = 1;
	int ret = 0;

	if (wl->prepare)
		ret = wl->prepare(w);
	if (write(g->ready[1], &c, 1) != 1 && !ret)
		ret = -errno;
	if (forked)	/* a child that dies before this byte ends the parent's wait */
		close(g->ready[1]);
	while (read(g->go[0], &c, 1) < 0 && errno == EINTR)
		;
	if (ret || atomic_load(&ctl->abort)) {
		w->error = ret;
		goto out;
	}
	w->t_start = bench_now_ns();
	if (wl->timed && !w->run->o->loops)
		w->deadline_ns = w->t_start + w->run->o->duration_ns;
	ret = faulting ? wl->fault(w) : wl->extra(w);
	w->t_end = bench_now_ns();
	w->error = ret;
out:
	if (faulting)
		atomic_fetch_sub_explicit(&ctl->faulting, 1, memory_order_release);
	if (wl->finish)
		wl->finish(w);
}

struct thread_start {
	struct bench_worker *w;
	struct gate *g;
};

static void *worker_thread_start(void *arg)
{
	struct thread_start *s = arg;

	worker_main(s->w, s->g, false);
	return NULL;
}

/* A forked worker: its own address space, its own naive handler. */
static void worker_child(struct bench_worker *w, struct gate *g, enum bench_as_kind kind)
{
	struct bench_as as = { .kind = kind };
	int ret = 0;
	char c = 1;

	close(g->go[1]);	/* or the gate could never open */
	close(g->ready[0]);
	if (kind == BENCH_AS_NAIVE)
		ret = bench_naive_open(&as.naive);
	if (ret) {
		w->error = ret;
		atomic_fetch_sub(&w->run->ctl->faulting, 1);
		_exit(write(g->ready[1], &c, 1) == 1 ? 1 : 2);
	}
	w->as = &as;
	worker_main(w, g, true);
	if (as.naive) {
		ret = bench_naive_close(as.naive, &w->naive);
		if (ret && !w->error)
			w->error = ret;
	}
	_exit(w->error ? 1 : 0);
}

static void gate_close_fds(struct gate *g)
{
	int *fds[] = { &g->ready[0], &g->ready[1], &g->go[0], &g->go[1] };
	unsigned int i;

	for (i = 0; i < 4; i++) {
		if (*fds[i] >= 0)
			close(*fds[i]);
		*fds[i] = -1;
	}
}

/*
 * Wait for n workers' ready bytes.  Forked: the parent's write end goes,
 * and each child closes its own after its byte, so a child that died
 * before writing cannot hang the wait.
 */
static void gate_wait_ready(struct gate *g, unsigned int n, bool forked)
{
	unsigned int got = 0;
	char buf[64];
	ssize_t r;

	if (forked) {
		close(g->ready[1]);
		g->ready[1] = -1;
	}
	while (got < n) {
		r = read(g->ready[0], buf, n - got < sizeof(buf) ? n - got : sizeof(buf));
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		got += (unsigned int)r;
	}
}

/*
 * Start the workers in threads (or forked children), open the gate, wait
 * for them.  Returns 0 or the first start failure.
 */
static int run_workers(struct bench_run *r, struct bench_worker *w, unsigned int nr,
		       enum bench_as_kind kind, bool fork_each)
{
	struct gate g = { { -1, -1 }, { -1, -1 } };
	struct thread_start *starts = NULL;
	pthread_t *tids = NULL;
	pid_t *pids = NULL;
	unsigned int i, started = 0;
	int ret = 0, status;

	if (pipe2(g.ready, O_CLOEXEC) || pipe2(g.go, O_CLOEXEC)) {
		ret = -errno;
		fprintf(stderr, "uspf bench: %s: pipe: %s\n", r->wl->name, strerror(-ret));
		gate_close_fds(&g);
		return ret;
	}
	if (fork_each)
		pids = calloc(nr, sizeof(*pids));
	else {
		tids = calloc(nr, sizeof(*tids));
		starts = calloc(nr, sizeof(*starts));
	}
	if (fork_each ? !pids : !tids || !starts) {
		ret = -ENOMEM;
		goto out;
	}
	atomic_store(&r->ctl->faulting, r->threads);
	for (started = 0; started < nr; started++) {
		if (fork_each) {
			fflush(NULL);
			pids[started] = fork();
			if (pids[started] == 0)
				worker_child(&w[started], &g, kind);
			if (pids[started] < 0)
				ret = -errno;
		} else {
			starts[started] = (struct thread_start){ &w[started], &g };
			ret = -pthread_create(&tids[started], NULL, worker_thread_start,
					      &starts[started]);
		}
		if (ret) {
			fprintf(stderr, "uspf bench: %s: starting worker %u: %s\n",
				r->wl->name, started, strerror(-ret));
			break;
		}
	}
	if (ret) {
		atomic_store(&r->ctl->abort, 1);
		/* The faulting ones that never started will never count down. */
		atomic_fetch_sub(&r->ctl->faulting,
				 r->threads > started ? r->threads - started : 0);
	}
	if (fork_each || !ret)
		gate_wait_ready(&g, started, fork_each);
	close(g.go[1]);		/* open the gate */
	g.go[1] = -1;
	for (i = 0; i < started; i++) {
		if (!fork_each) {
			pthread_join(tids[i], NULL);
			continue;
		}
		while (waitpid(pids[i], &status, 0) < 0 && errno == EINTR)
			;
		if (w[i].error || (WIFEXITED(status) && !WEXITSTATUS(status)))
			continue;
		/* Died without saying why. */
		if (WIFSIGNALED(status))
			fprintf(stderr, "uspf bench: %s: worker %u (pid %d) killed by signal %d\n",
				r->wl->name, i, (int)pids[i], WTERMSIG(status));
		else
			fprintf(stderr, "uspf bench: %s: worker %u (pid %d) exited with status %d\n",
				r->wl->name, i, (int)pids[i], WEXITSTATUS(status));
		w[i].error = -ECHILD;
	}
out:
	free(starts);
	free(tids);
	free(pids);
	gate_close_fds(&g);
	return ret;
}

/* ---- one iteration ---- */

struct iter_result {
	uint64_t pages;		/* by the faulting workers */
	uint64_t ops;		/* the ones ops_per_sec counts */
	uint64_t wall_ns;
};

struct row_acc {
	struct bench_hist lat;
	struct uspf_stats st, acc;
	struct bench_naive_counts naive;
	uint64_t minflt;
	bool have_stats;
};

static uint64_t minflt_now(int who)
{
	struct rusage ru;

	if (getrusage(who, &ru))
		return 0;
	return (uint64_t)ru.ru_minflt;
}

static int create_runtime(const struct uspf_config *cfg, bool own_mm, struct uspf **u)
{
	struct uspf_config c = *cfg;
	int ret;

	/* A process image served by one handler, unless told otherwise. */
	if (own_mm && !c.handlers)
		c.handlers = 1;
	ret = uspf_create(u, &c);
	if (ret)
		fprintf(stderr, "uspf bench: uspf_create (%s): %s\n",
			uspf_policy_name(c.policy), strerror(-ret));
	return ret;
}

static void collect(const struct bench_run *r, const struct bench_worker *w,
		    unsigned int nr, struct iter_result *res, struct row_acc *acc)
{
	uint64_t first = UINT64_MAX, last = 0;
	unsigned int i;

	memset(res, 0, sizeof(*res));
	for (i = 0; i < nr; i++) {
		if (i < r->threads) {
			if (w[i].t_start < first)
				first = w[i].t_start;
			if (w[i].t_end > last)
				last = w[i].t_end;
			res->pages += w[i].pages;
			bench_hist_merge(&acc->lat, &w[i].hist);
		}
		if ((i >= r->threads) == r->wl->ops_from_extra)
			res->ops += w[i].ops;
		acc->naive.faults += w[i].naive.faults;
		acc->naive.pages += w[i].naive.pages;
		acc->naive.eexist += w[i].naive.eexist;
		acc->naive.wakes += w[i].naive.wakes;
		acc->naive.copy_errors += w[i].naive.copy_errors;
	}
	res->wall_ns = last > first ? last - first : 1;
}

static int first_error(const struct bench_worker *w, unsigned int nr, const char *name)
{
	unsigned int i;

	for (i = 0; i < nr; i++) {
		if (w[i].error) {
			fprintf(stderr, "uspf bench: %s: worker %u: %s\n", name, i,
				strerror(-w[i].error));
			return w[i].error;
		}
	}
	return 0;
}

static int iteration(const struct bench_opts *o, const struct bench_wl *wl,
		     enum bench_as_kind kind, const struct uspf_config *cfg,
		     unsigned int threads, struct iter_result *res, struct row_acc *acc)
{
	struct bench_run r = { .o = o, .wl = wl, .threads = threads, .fd = -1 };
	bool fork_each = wl->own_mm && kind != BENCH_AS_USPF;
	struct bench_as *own = NULL;
	struct bench_worker *w;
	unsigned int nr, i;
	size_t area_len;
	void *area;
	uint64_t before;
	int ret = 0, ret2;

	r.nr_extra = wl->nr_extra ? wl->nr_extra(o) : 0;
	nr = threads + r.nr_extra;
	area_len = 4096 + sizeof(*w) * nr;
	area = mmap(NULL, area_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (area == MAP_FAILED) {
		ret = -errno;
		fprintf(stderr, "uspf bench: %s: mmap: %s\n", wl->name, strerror(-ret));
		return ret;
	}
	r.ctl = area;
	w = (struct bench_worker *)((char *)area + 4096);
	r.as.kind = kind;
	if (wl->own_mm && kind == BENCH_AS_USPF) {
		own = calloc(threads, sizeof(*own));
		if (!own) {
			ret = -ENOMEM;
			goto out_area;
		}
	}
	/* 1. address spaces */
	for (i = 0; own && i < threads && !ret; i++) {
		own[i].kind = kind;
		ret = create_runtime(cfg, true, &own[i].u);
	}
	if (!ret && !wl->own_mm && kind == BENCH_AS_USPF)
		ret = create_runtime(cfg, false, &r.as.u);
	if (!ret && !wl->own_mm && kind == BENCH_AS_NAIVE)
		ret = bench_naive_open(&r.as.naive);
	/* 2. the shared part */
	if (!ret && wl->setup) {
		ret = wl->setup(&r);
		if (ret)
			fprintf(stderr, "uspf bench: %s: setup: %s\n", wl->name, strerror(-ret));
	}
	if (ret)
		goto out_spaces;
	for (i = 0; i < nr; i++) {
		w[i].run = &r;
		w[i].id = i;
		w[i].as = own ? &own[i] : &r.as;
	}
	/* 3.-4. the workers */
	before = minflt_now(fork_each ? RUSAGE_CHILDREN : RUSAGE_SELF);
	ret = run_workers(&r, w, nr, kind, fork_each);
	acc->minflt += minflt_now(fork_each ? RUSAGE_CHILDREN : RUSAGE_SELF) - before;
	if (!ret)
		ret = first_error(w, nr, wl->name);
	if (!ret)
		collect(&r, w, nr, res, acc);
	/* 5. the counters, once every fault has ended */
	if (!ret && kind == BENCH_AS_USPF) {
		for (i = 0; i < (own ? threads : 1) && !ret; i++) {
			ret = bench_settled_stats(own ? own[i].u : r.as.u,
						  own ? w[i].pages : res->pages, &acc->st);
			if (!ret)
				bench_stats_accumulate(&acc->acc, &acc->st);
		}
		acc->have_stats = !ret;
	}
	if (wl->teardown)
		wl->teardown(&r);
out_spaces:
	if (r.as.naive) {
		ret2 = bench_naive_close(r.as.naive, &acc->naive);
		ret = ret ? ret : ret2;
	}
	if (r.as.u)
		uspf_destroy(r.as.u);
	for (i = 0; own && i < threads; i++) {
		if (own[i].u)
			uspf_destroy(own[i].u);
	}
	free(own);
out_area:
	munmap(area, area_len);
	return ret;
}

/* ---- one row ---- */

int bench_work_row(const struct bench_opts *o, const struct bench_wl *wl,
		   enum bench_as_kind kind, const struct uspf_config *cfg,
		   unsigned int threads, struct bench_pft_row *row)
{
	struct iter_result res;
	struct row_acc *acc;
	double *rates, *ops;
	uint64_t pages = 0;
	unsigned int it;
	int ret = -ENOMEM;

	acc = calloc(1, sizeof(*acc));
	rates = calloc(o->iterations, sizeof(*rates));
	ops = calloc(o->iterations, sizeof(*ops));
	if (!acc || !rates || !ops) {
		fprintf(stderr, "uspf bench: %s: %s\n", wl->name, strerror(ENOMEM));
		goto out;
	}
	row->workload = wl->name;
	row->threads = threads;
	row->policy = kind == BENCH_AS_NATIVE ? "native" :
		      kind == BENCH_AS_NAIVE ? "naive" : uspf_policy_name(cfg->policy);
	if (kind == BENCH_AS_NAIVE) {
		row->handlers = 1;
		row->intake = "poll";
	}
	for (it = 0; it < o->iterations; it++) {
		bench_progress_iteration(it, o->iterations);
		ret = iteration(o, wl, kind, cfg, threads, &res, acc);
		if (ret)
			goto out;
		if (!res.pages) {
			fprintf(stderr, "uspf bench: %s (%s, %u threads): no page touched\n",
				wl->name, row->policy, threads);
			ret = -EIO;
			goto out;
		}
		pages += res.pages;
		rates[it] = (double)res.pages * 1e9 / (double)res.wall_ns;
		ops[it] = (double)res.ops * 1e9 / (double)res.wall_ns;
	}
	row->faults = (pages + o->iterations / 2) / o->iterations;
	bench_rates_fold(rates, o->iterations, row);
	if (wl->ops_name) {
		struct bench_pft_row tmp;

		bench_rates_fold(ops, o->iterations, &tmp);
		row->ops_name = wl->ops_name;
		/* Hmean is 0-safe only if no iteration had 0 ops. */
		row->ops_per_sec = tmp.hmean > 0 && tmp.min > 0 ? tmp.hmean : 0;
	}
	if (kind == BENCH_AS_USPF && acc->have_stats) {
		bench_pft_fill_row(row, &acc->acc, &acc->lat);
	} else {
		bench_row_latency(row, &acc->lat);
	}
	if (kind == BENCH_AS_NAIVE)
		bench_naive_row_counters(row, &acc->naive);
	if (kind == BENCH_AS_NATIVE)
		bench_pft_row_counter(row, "minflt", acc->minflt);
	ret = 0;
out:
	free(ops);
	free(rates);
	free(acc);
	return ret;
}
