/* SPDX-License-Identifier: MIT */
/*
 * probe.c - the round trip a fault costs, sampled.
 *
 * A handler sees a fault from the moment it reads the message to the
 * moment the page is in (handle_ns); the rest of the round trip - the
 * kernel queuing the message and waking a handler, the faulting thread
 * woken and back in user space - it cannot see.  So a thread of the
 * runtime's own (uspf-probe) touches a registered page of its own every
 * cfg.probe_ms and times the touch: a real fault, through the same intake
 * and handlers as the program's, under the load of the moment.  It probes
 * only while the program faults (faults were handled since its last
 * look): an idle program's handlers are asleep, and a cold round trip is
 * not what its faults cost.  The handlers install the page and do not
 * count it as the program's; the probe drops it again (MADV_DONTNEED) for
 * the next sample.
 */
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "mm/kmem.h"
#include "mm/vma.h"
#include "probe.h"
#include "runtime.h"

static uint64_t mono_ns(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000000000ull + (uint64_t)t.tv_nsec;
}

/* Wait ms or until stopped; true when stopped. */
static bool probe_sleep(struct uspf_probe *p, unsigned int ms)
{
	struct timespec until;
	bool stop;

	clock_gettime(CLOCK_MONOTONIC, &until);
	until.tv_sec += ms / 1000;
	until.tv_nsec += (long)(ms % 1000) * 1000000L;
	if (until.tv_nsec >= 1000000000L) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&p->lock);
	while (!p->stop && pthread_cond_timedwait(&p->wake, &p->lock, &until) != ETIMEDOUT)
		;
	stop = p->stop;
	pthread_mutex_unlock(&p->lock);
	return stop;
}

/* The program's faults handled so far. */
static uint64_t faults_now(struct uspf *u)
{
	uint64_t n = 0;
	unsigned int i;

	for (i = 0; i < u->nr_handlers; i++)
		n += __atomic_load_n(&u->handlers[i].counters[USPF_C_FAULTS], __ATOMIC_RELAXED);
	return n;
}

static void *probe_main(void *arg)
{
	struct uspf *u = arg;
	struct uspf_probe *p = &u->probe;
	volatile const char *page = (const char *)p->page;
	uint64_t t0, seen = 0, now;
	sigset_t all;

	uspf_runtime_thread = true;
	pthread_setname_np(pthread_self(), "uspf-probe");
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, NULL);
	while (!probe_sleep(p, u->cfg.probe_ms)) {
		now = faults_now(u);
		if (now == seen)
			continue;	/* idle: nothing to sample */
		seen = now;
		t0 = mono_ns();
		(void)*page;
		atomic_fetch_add_explicit(&p->trip_ns, mono_ns() - t0, memory_order_relaxed);
		atomic_fetch_add_explicit(&p->trips, 1, memory_order_relaxed);
		/* Raw: under `uspf run` madvise() is the program's, interposed. */
		syscall(SYS_madvise, p->page, PAGE_SIZE, MADV_DONTNEED);
	}
	return NULL;
}

int probe_start(struct uspf *u)
{
	struct uspf_probe *p = &u->probe;
	pthread_condattr_t ca;
	long page;
	int ret;

	if (!u->cfg.probe_ms)
		return 0;
	page = syscall(SYS_mmap, NULL, PAGE_SIZE, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (page == -1)
		return -errno;
	ret = uffd_register(&u->uffd, (unsigned long)page, PAGE_SIZE);
	if (ret) {
		syscall(SYS_munmap, page, PAGE_SIZE);
		return ret;
	}
	pthread_mutex_init(&p->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&p->wake, &ca);
	pthread_condattr_destroy(&ca);
	p->stop = false;
	p->page = (unsigned long)page;
	ret = -pthread_create(&p->thread, NULL, probe_main, u);
	if (ret) {
		syscall(SYS_munmap, page, PAGE_SIZE);
		p->page = 0;
		return ret;
	}
	p->started = true;
	return 0;
}

void probe_stop(struct uspf *u)
{
	struct uspf_probe *p = &u->probe;

	if (!p->started)
		return;
	pthread_mutex_lock(&p->lock);
	p->stop = true;
	pthread_cond_signal(&p->wake);
	pthread_mutex_unlock(&p->lock);
	pthread_join(p->thread, NULL);
	p->started = false;
	syscall(SYS_munmap, p->page, PAGE_SIZE);
	p->page = 0;
}
