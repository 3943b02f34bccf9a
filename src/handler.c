/* SPDX-License-Identifier: MIT */
/*
 * handler.c - the handler threads.
 *
 * Each thread takes a batch of fault messages from its intake, hands each
 * to the policy, then issues the wakes the batch queued: a fault whose
 * range can merge with another's in the batch resolves with
 * *_MODE_DONTWAKE and the merged ranges are woken with one UFFDIO_WAKE;
 * any other fault resolves with the kernel's own wake (no extra syscall).
 *
 * Handler threads block every signal (the program's handlers must not run
 * on them) and never touch registered memory.
 */
#include <errno.h>
#include <signal.h>
#include <string.h>

#include "fault.h"
#include "handler.h"
#include "mm/kmem.h"
#include "runtime.h"
#include "mm/vma.h"

void handler_queue_wake(struct uspf_handler *h, unsigned long start, unsigned long end)
{
	struct wake_range *last = h->nr_wakes ? &h->wakes[h->nr_wakes - 1] : NULL;

	/* Fault-around and sequential faults arrive in address order: extend. */
	if (last && start <= last->end && end >= last->start) {
		if (start < last->start)
			last->start = start;
		if (end > last->end)
			last->end = end;
		return;
	}
	if (h->nr_wakes == h->max_wakes)
		handler_flush_wakes(h);
	h->wakes[h->nr_wakes].start = start;
	h->wakes[h->nr_wakes].end = end;
	h->nr_wakes++;
}

/* Insertion sort: batches are small and nearly sorted; qsort() may malloc. */
static void wake_sort(struct wake_range *w, unsigned int n)
{
	unsigned int i, j;

	for (i = 1; i < n; i++) {
		struct wake_range x = w[i];

		for (j = i; j > 0 && w[j - 1].start > x.start; j--)
			w[j] = w[j - 1];
		w[j] = x;
	}
}

void handler_flush_wakes(struct uspf_handler *h)
{
	unsigned int i, n = 0;

	if (!h->nr_wakes)
		return;
	wake_sort(h->wakes, h->nr_wakes);
	/* Merge overlapping and adjacent ranges in place. */
	for (i = 1; i < h->nr_wakes; i++) {
		if (h->wakes[i].start <= h->wakes[n].end) {
			if (h->wakes[i].end > h->wakes[n].end)
				h->wakes[n].end = h->wakes[i].end;
		} else {
			h->wakes[++n] = h->wakes[i];
		}
	}
	for (i = 0; i <= n; i++) {
		uffd_wake(&h->u->uffd, h->wakes[i].start, h->wakes[i].end - h->wakes[i].start);
		count_event(h, USPF_C_WAKE);
	}
	h->nr_wakes = 0;
}

/* The bench's raw reference: resolve the window, nothing modelled. */
static void handle_raw(struct vm_fault *vmf, unsigned long start, unsigned long end)
{
	vmf->vm_start = start;
	vmf->vm_end = end;
	vmf->backing.kind = USPF_BACKING_ZERO;
	if (vmf_prepare(vmf))
		vmf_end_sigbus(vmf);
	else
		vmf_end(vmf, vmf_commit(vmf));
}

/*
 * The probe's fault (probe.c): the zero page, woken with it - it is no
 * fault of the program's, so nothing is counted.  EEXIST (a second
 * message for the page): wake it all the same.
 */
static void handle_probe(struct uspf_handler *h, unsigned long page)
{
	if (uffd_zeropage(&h->u->uffd, page, PAGE_SIZE, false) < 0)
		uffd_wake(&h->u->uffd, page, PAGE_SIZE);
}

static void handle_one(struct uspf_handler *h, const struct uffd_msg *msg)
{
	unsigned long raw_end;
	struct vm_fault vmf;

	if (msg->event != UFFD_EVENT_PAGEFAULT)
		return;		/* no non-cooperative events are requested */
	if (probe_fault(&h->u->probe, (unsigned long)msg->arg.pagefault.address & PAGE_MASK)) {
		handle_probe(h, (unsigned long)msg->arg.pagefault.address & PAGE_MASK);
		return;
	}
	count_event(h, USPF_C_FAULTS);
	memset(&vmf, 0, sizeof(vmf));
	vmf.h = h;
	vmf.mm = &h->u->mm;
	vmf.address = (unsigned long)msg->arg.pagefault.address & PAGE_MASK;
	if (msg->arg.pagefault.flags & UFFD_PAGEFAULT_FLAG_WRITE)
		vmf.flags |= FAULT_FLAG_WRITE;
	vmf.ptid = (pid_t)msg->arg.pagefault.feat.ptid;
	raw_end = __atomic_load_n(&h->u->raw_end, __ATOMIC_ACQUIRE);
	if (__builtin_expect(raw_end != 0, 0) && vmf.address < raw_end &&
	    vmf.address >= h->u->raw_start)
		handle_raw(&vmf, h->u->raw_start, raw_end);
	else
		h->u->policy->handle_fault(&vmf);
	if (h->u->cfg.wake_after_unlock)
		handler_flush_wakes(h);
	/* Last: the faulting thread may run again before everything is counted. */
	count_event(h, USPF_C_FAULTS_ENDED);
}

/*
 * Whether fault i's wake can share a UFFDIO_WAKE with another fault of the
 * batch: another faulting address within a window of it.  Only then does
 * resolving it with DONTWAKE save a system call; a fault alone in its
 * part of the address space (threads faulting in slices of their own) is
 * woken by its own copy, as a batch of one is.
 */
static bool wake_merges(const struct uspf *u, const struct uffd_msg *msgs, int n, int i)
{
	unsigned long a = msgs[i].arg.pagefault.address & PAGE_MASK, b, span;
	int j;

	span = (unsigned long)u->cfg.folio_pages * PAGE_SIZE;
	for (j = 0; j < n; j++) {
		if (j == i || msgs[j].event != UFFD_EVENT_PAGEFAULT)
			continue;
		b = msgs[j].arg.pagefault.address & PAGE_MASK;
		if ((a > b ? a - b : b - a) <= span)
			return true;
	}
	return false;
}

static void handler_loop(struct uspf_handler *h, struct uffd_intake *in)
{
	struct uspf *u = h->u;
	struct uffd_intake_stats prev = { 0 }, cur;
	struct uffd_msg *msgs;
	int n, i;

	for (;;) {
		n = uffd_intake_wait(in, &msgs);
		uffd_intake_get_stats(in, &cur);
		count_add(h, USPF_C_INTAKE_READS, cur.reads - prev.reads);
		count_add(h, USPF_C_INTAKE_ERRORS, cur.errors - prev.errors);
		count_add(h, USPF_C_INTAKE_SPIN_HITS, cur.spin_hits - prev.spin_hits);
		count_add(h, USPF_C_INTAKE_SPIN_MISSES, cur.spin_misses - prev.spin_misses);
		count_add(h, USPF_C_INTAKE_SPIN_NS, cur.spin_ns - prev.spin_ns);
		count_add(h, USPF_C_INTAKE_SPIN_BACKOFFS, cur.spin_backoffs - prev.spin_backoffs);
		prev = cur;
		if (n <= 0) {
			h->error = n;
			return;
		}
		h->batch_start_ns = uspf_now_ns();
		/*
		 * wake_after_unlock: resolve with DONTWAKE and wake when the
		 * policy has returned, its locks dropped - as a kernel fault's
		 * thread returns to user space after unlocking.  Otherwise a
		 * lone fault is woken by its copy, locks still held.
		 */
		for (i = 0; i < n; i++) {
			h->dontwake = u->cfg.wake_after_unlock ||
				      (u->cfg.batch_wake && n > 1 && wake_merges(u, msgs, n, i));
			handle_one(h, &msgs[i]);
		}
		handler_flush_wakes(h);
	}
}


static void *handler_main(void *arg)
{
	struct uspf_handler *h = arg;
	struct uspf *u = h->u;
	struct uffd_intake *in;
	sigset_t all;
	int ret;

	uspf_runtime_thread = true;
	/* The name says whose it is (preload/threads.c counts the others). */
	pthread_setname_np(pthread_self(), "uspf-handler");
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, NULL);
	/* Register with urcu-bp now: it maps memory the first time. */
	rcu_read_lock();
	rcu_read_unlock();
	ret = uffd_intake_create(&in, u->uffd.fd, (enum uffd_intake_kind)u->cfg.intake,
				 u->cfg.uring_depth, u->cfg.read_batch, u->stop_fd, &u->stop);
	if (ret) {
		__atomic_store_n(&h->error, ret, __ATOMIC_RELEASE);
		return NULL;
	}
	uffd_intake_set_spin(in, &u->spin);
	__atomic_store_n(&h->intake_kind, (int)uffd_intake_kind(in), __ATOMIC_RELEASE);
	handler_loop(h, in);
	uffd_intake_destroy(in);
	return NULL;
}

int handler_start(struct uspf *u, struct uspf_handler *h, unsigned int id)
{
	pthread_attr_t attr;
	int ret;

	h->u = u;
	h->id = id;
	h->intake_kind = -1;
	h->max_wakes = u->cfg.read_batch * (u->cfg.intake == USPF_INTAKE_URING ? u->cfg.uring_depth : 1);
	h->wakes = kmem_map(h->max_wakes * sizeof(*h->wakes));
	h->buf = kmem_map((size_t)u->cfg.folio_pages * PAGE_SIZE);
	if (!h->wakes || !h->buf)
		return -ENOMEM;
	/* Thread stacks come from glibc's internal mmap: never registered. */
	pthread_attr_init(&attr);
	ret = pthread_create(&h->thread, &attr, handler_main, h);
	pthread_attr_destroy(&attr);
	if (ret)
		return -ret;
	h->started = true;
	return 0;
}

void handler_join(struct uspf_handler *h)
{
	if (h->started)
		pthread_join(h->thread, NULL);
	h->started = false;
	kmem_unmap(h->wakes, h->max_wakes * sizeof(*h->wakes));
	kmem_unmap(h->buf, (size_t)h->u->cfg.folio_pages * PAGE_SIZE);
	h->wakes = NULL;
	h->buf = NULL;
}
