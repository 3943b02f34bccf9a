/* SPDX-License-Identifier: MIT */
/*
 * runtime.c - create and destroy a runtime; statistics.
 */
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "mm/call_rcu.h"
#include "mm/kmem.h"
#include "hooks.h"
#include "runtime.h"
#include "mm/vma.h"

/* What uspf asks of the kernel: the faulting thread's id (for SIGBUS). */
#define USPF_UFFD_FEATURES UFFD_FEATURE_THREAD_ID

static unsigned int online_cpus(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);

	if (n < 1)
		return 1;
	return n > USPF_MAX_HANDLERS ? USPF_MAX_HANDLERS : (unsigned int)n;
}

static void stop_handlers(struct uspf *u)
{
	uint64_t one = 1;
	unsigned int i;

	atomic_store(&u->stop, true);
	if (u->stop_fd >= 0 && write(u->stop_fd, &one, sizeof(one)) < 0)
		(void)0;	/* an eventfd write only fails on overflow */
	for (i = 0; i < u->nr_handlers; i++)
		handler_join(&u->handlers[i]);
}

/* A fresh stop eventfd: the old one stays readable once written. */
static int new_stop_fd(struct uspf *u)
{
	uffd_fd_close(u->stop_fd);
	u->stop_fd = uffd_fd_keep(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
	return u->stop_fd < 0 ? -errno : 0;
}

static int start_handlers(struct uspf *u)
{
	unsigned int i;
	int ret;

	for (i = 0; i < u->nr_handlers; i++) {
		ret = handler_start(u, &u->handlers[i], i);
		if (ret)
			return ret;
	}
	/* Wait until each handler has its intake, so a failure shows here. */
	for (i = 0; i < u->nr_handlers; i++) {
		while (__atomic_load_n(&u->handlers[i].intake_kind, __ATOMIC_ACQUIRE) < 0 &&
		       !__atomic_load_n(&u->handlers[i].error, __ATOMIC_ACQUIRE))
			sched_yield();
		if (u->handlers[i].error)
			return u->handlers[i].error;
	}
	return 0;
}

static void runtime_free(struct uspf *u)
{
	if (u->handlers)
		kmem_unmap(u->handlers, u->nr_handlers * sizeof(*u->handlers));
	if (u->zero_area)
		kmem_unmap((void *)u->zero_area, (size_t)u->cfg.folio_pages * PAGE_SIZE);
	uffd_fd_close(u->stop_fd);
	kernel_maps_close(&u->kmaps);
	kmem_unmap(u, sizeof(*u));
}

bool runtime_quiet;

void runtime_set_raw(struct uspf *u, unsigned long start, unsigned long end)
{
	__atomic_store_n(&u->raw_start, start, __ATOMIC_RELAXED);
	__atomic_store_n(&u->raw_end, end, __ATOMIC_RELEASE);
}

/*
 * liburcu maps memory the first time a thread reads (its registry), and
 * the callback worker's stack is mapped when it starts.  Let that happen
 * now, not in the middle of a writer, where it could take the hole an
 * munmap just left and be wiped by the program's next MAP_FIXED there.
 */
static int rcu_warm_up(void)
{
	rcu_read_lock();
	rcu_read_unlock();
	return mm_call_rcu_start();
}

int uspf_create(struct uspf **out, const struct uspf_config *cfg)
{
	struct uspf_config def;
	struct uspf *u;
	int ret;

	if (!out)
		return -EINVAL;
	if (!cfg) {
		uspf_config_init(&def);
		cfg = &def;
	}
	ret = uspf_config_validate(cfg, NULL, 0);
	if (ret)
		return ret;
	ret = vma_cache_init();
	if (ret)
		return ret;
	kmem_atfork_register();	/* a child may create a runtime of its own */
	u = kmem_map(sizeof(*u));
	if (!u)
		return -ENOMEM;
	u->cfg = *cfg;
	u->stop_fd = -1;
	u->kmaps.fd = -1;
	u->policy = policy_get(cfg->policy);
	/*
	 * One handler per two CPUs: a handler that spins holds a CPU, and the
	 * faulting threads need the others (BENCHMARKS.md, "Where the
	 * microseconds go": on 2 vCPUs one handler is 1.9x two at one
	 * faulting thread, 1.2x at two).
	 */
	u->nr_handlers = cfg->handlers ? cfg->handlers : online_cpus() / 2 ? online_cpus() / 2 : 1;
	u->handlers = kmem_map(u->nr_handlers * sizeof(*u->handlers));
	u->spin.budget_ns = (uint64_t)cfg->spin_us * 1000;
	u->spin.cpus = online_cpus();
	u->spin.max_spinners = u->nr_handlers;
	/* Never written: UFFDIO_COPY from it installs zeroed writable pages. */
	u->zero_area = kmem_map((size_t)cfg->folio_pages * PAGE_SIZE);
	ret = new_stop_fd(u);
	/* Without /proc (a container, a sandbox) the writers go by the model's rules. */
	if (!ret)
		kernel_maps_open(&u->kmaps);
	if (!u->handlers || !u->zero_area || ret) {
		ret = ret ? ret : -ENOMEM;
		runtime_free(u);
		return ret;
	}
	ret = uffd_open(&u->uffd, USPF_UFFD_FEATURES, runtime_quiet ? NULL : stderr);
	if (ret) {
		runtime_free(u);
		return ret;
	}
	ret = mm_init(&u->mm, &u->uffd, cfg->hz, cfg->anon_vma_at_mmap,
		      cfg->spf_backoff_aborts, cfg->spf_backoff_jiffies);
	u->mm.vma_lock = u->policy->vma_lock;
	u->mm.vm_sequence = u->policy->vm_sequence;
	if (u->policy->no_backoff)
		u->mm.spf_backoff_jiffies = 0;
	u->mm.adaptive_window = cfg->adaptive_window;
	u->mm.immap_reorder = cfg->immap_reorder;
	if (ret) {
		uffd_close(&u->uffd);
		runtime_free(u);
		return ret;
	}
	/*
	 * Threads last: the first high descriptor grows the kernel's fd
	 * table, which costs a synchronize_rcu() (milliseconds) once the
	 * table is shared with another thread (expand_fdtable()).
	 */
	ret = rcu_warm_up();
	if (!ret)
		ret = start_handlers(u);
	if (!ret)
		ret = probe_start(u);
	if (ret) {
		stop_handlers(u);
		mm_destroy(&u->mm);
		uffd_close(&u->uffd);
		runtime_free(u);
		return ret;
	}
	*out = u;
	return 0;
}

/*
 * The handlers stop between batches (every message read is handled), the
 * intakes close their descriptors; faults wait in the userfaultfd's queue
 * until runtime_resume().
 */
void runtime_pause(struct uspf *u)
{
	stop_handlers(u);
	uffd_fd_close(u->stop_fd);
	u->stop_fd = -1;
}

int runtime_resume(struct uspf *u)
{
	unsigned int i;
	int ret;

	atomic_store(&u->stop, false);
	for (i = 0; i < u->nr_handlers; i++)
		u->handlers[i].error = 0;
	ret = new_stop_fd(u);
	if (!ret)
		ret = start_handlers(u);
	return ret;
}

/* Paused: no handler holds the number; writers register under the mmap lock. */
int runtime_move_uffd(struct uspf *u)
{
	int ret;

	mmap_write_lock(&u->mm);
	ret = uffd_move(&u->uffd);
	mmap_write_unlock(&u->mm);
	return ret;
}

int runtime_move_kmaps(struct uspf *u)
{
	int ret;

	mmap_write_lock(&u->mm);
	ret = kernel_maps_move(&u->kmaps);
	mmap_write_unlock(&u->mm);
	return ret;
}

/* exit_mmap(): unmap every VMA left (munmap unregisters), then free the model. */
static void unmap_all(struct uspf *u)
{
	unsigned long start, end;

	for (;;) {
		mmap_read_lock(&u->mm);
		if (!vma_index_find(&u->mm.index, 0, &start, &end)) {
			mmap_read_unlock(&u->mm);
			return;
		}
		mmap_read_unlock(&u->mm);
		uspf_munmap(u, (void *)start, end - start);
	}
}

void uspf_destroy(struct uspf *u)
{
	if (!u)
		return;
	probe_stop(u);		/* it may be inside a fault: handlers still up */
	stop_handlers(u);
	unmap_all(u);
	mm_rcu_barrier();		/* every call_rcu() of this mm has run */
	mm_destroy(&u->mm);
	uffd_close(&u->uffd);
	runtime_free(u);
}

int uspf_stats(struct uspf *u, struct uspf_stats *st)
{
	unsigned int i, c, b;

	if (!u || !st)
		return -EINVAL;
	memset(st, 0, sizeof(*st));
	for (i = 0; i < u->nr_handlers; i++) {
		struct uspf_handler *h = &u->handlers[i];

		for (c = 0; c < USPF_NR_COUNTERS; c++)
			st->counters[c] += __atomic_load_n(&h->counters[c], __ATOMIC_RELAXED);
		for (b = 0; b < USPF_HIST_BUCKETS; b++)
			st->hist[b] += __atomic_load_n(&h->hist[b], __ATOMIC_RELAXED);
	}
	st->counters[USPF_C_ROUND_TRIPS] =
		atomic_load_explicit(&u->probe.trips, memory_order_relaxed);
	st->counters[USPF_C_ROUND_TRIP_NS] =
		atomic_load_explicit(&u->probe.trip_ns, memory_order_relaxed);
	st->counters[USPF_C_MMAP_LOCK_SPUN] =
		atomic_load_explicit(&u->mm.mmap_lock.spun, memory_order_relaxed);
	st->counters[USPF_C_MMAP_LOCK_CONTENDED] =
		atomic_load_explicit(&u->mm.mmap_lock.contended, memory_order_relaxed);
	st->counters[USPF_C_VMA_WRITES] =
		atomic_load_explicit(&u->mm.vma_writes, memory_order_relaxed);
	st->counters[USPF_C_VMA_WRITE_WAITS] =
		atomic_load_explicit(&u->mm.vma_write_waits, memory_order_relaxed);
	st->counters[USPF_C_I_MMAP_LOCKS] = atomic_load(&u->mm.i_mmap_holds);
	st->counters[USPF_C_I_MMAP_HOLD_NS] = atomic_load(&u->mm.i_mmap_hold_ns);
	st->counters[USPF_C_I_MMAP_CONTENDED] = atomic_load(&u->mm.i_mmap_contended);
	st->policy = u->cfg.policy;
	st->intake = u->handlers[0].intake_kind >= 0 ?
		     (enum uspf_intake)u->handlers[0].intake_kind : u->cfg.intake;
	st->handlers = u->nr_handlers;
	st->user_mode_only = u->uffd.how == UFFD_VIA_SYSCALL_USER_ONLY;
	mmap_read_lock(&u->mm);
	st->vmas = vma_index_count(&u->mm.index);
	mmap_read_unlock(&u->mm);
	return 0;
}
