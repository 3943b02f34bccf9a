/* SPDX-License-Identifier: MIT */
/*
 * intake.c - taking fault messages in from a userfaultfd.
 *
 * Three ways, one interface:
 *   URING  `depth` IORING_OP_READs in flight on the uffd, each with room for
 *          `batch` messages, plus a poll on stop_fd; one io_uring_enter both
 *          re-arms and waits.
 *   POLL   epoll on the uffd (EPOLLEXCLUSIVE: one handler woken per event)
 *          and stop_fd, then read(2) a batch.
 *   BUSY   non-blocking read(2) in a spin; stop_fd is not used, *stop is.
 *
 * The intake belongs to the thread that created it and may run in a
 * process whose malloc is served from registered memory: everything here
 * is mapped with the raw mmap syscall, and nothing blocks signals.
 */
#include <errno.h>
#include <fcntl.h>
#include <liburing.h>
#include <poll.h>
#include <sys/epoll.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <sys/resource.h>
#include <unistd.h>

#include "uffd.h"

/* user_data of the stop_fd poll; liburing's own timeouts use UINT64_MAX. */
#define STOP_TAG	(LIBURING_UDATA_TIMEOUT - 1)
#define MAX_DEPTH	1024u
#define MAX_BATCH	1024u
#define NO_STOP_FD_MS	100		/* re-check *stop this often without stop_fd */
#define IDLE_CHECK_MS	1000		/* POLL: check the uffd is still open when idle */

struct uffd_intake {
	enum uffd_intake_kind kind;
	int uffd_fd;
	int stop_fd;
	const atomic_bool *stop;
	unsigned int depth;
	unsigned int batch;
	int err;			/* sticky error, reported once messages are out */
	struct uffd_spin *spin;		/* NULL: sleep at once */
	unsigned int spin_waits;	/* waits since set_spin */
	bool spin_on;			/* spin_pays()'s last answer */
	uint64_t nivcsw;		/* involuntary switches at its last look */
	struct uffd_intake_stats stats;
	size_t map_len;
	struct uffd_msg *out;		/* what uffd_intake_wait() hands out */
	struct uffd_msg *slots;		/* URING: depth read buffers of batch msgs */
	bool ring_live;
	int epfd;			/* POLL: uffd EPOLLEXCLUSIVE + stop_fd */
	struct io_uring ring;
};

/* Raw syscalls: an interposed mmap() must never see the intake's memory. */
static void *map(size_t len)
{
	long p = syscall(SYS_mmap, NULL, len, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	return p == -1 ? NULL : (void *)p;
}

static void unmap(void *p, size_t len)
{
	syscall(SYS_munmap, p, len);
}

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#elif defined(__aarch64__)
	__asm__ __volatile__("yield" ::: "memory");
#else
	__asm__ __volatile__("" ::: "memory");
#endif
}

static bool stopped(const struct uffd_intake *in)
{
	return atomic_load_explicit(in->stop, memory_order_acquire);
}

/* ---- io_uring ---- */

static struct uffd_msg *slot_buf(struct uffd_intake *in, unsigned int slot)
{
	return in->slots + (size_t)slot * in->batch;
}

/* The SQ has room for every slot plus the stop poll: never full here. */
static void arm_read(struct uffd_intake *in, unsigned int slot)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&in->ring);

	io_uring_prep_read(sqe, in->uffd_fd, slot_buf(in, slot),
			   in->batch * sizeof(struct uffd_msg), 0);
	io_uring_sqe_set_data64(sqe, slot);
}

static void arm_stop(struct uffd_intake *in)
{
	struct io_uring_sqe *sqe;

	if (in->stop_fd < 0)
		return;
	sqe = io_uring_get_sqe(&in->ring);
	io_uring_prep_poll_add(sqe, in->stop_fd, POLLIN);
	io_uring_sqe_set_data64(sqe, STOP_TAG);
}

/*
 * io_uring_queue_init(), then the ring's descriptor moved out of the
 * program's way (fd.c): liburing uses ring_fd and enter_ring_fd.
 */
static int ring_init(struct uffd_intake *in, unsigned int entries, unsigned int flags)
{
	int ret = io_uring_queue_init(entries, &in->ring, flags);

	if (ret < 0)
		return ret;
	in->ring.ring_fd = uffd_fd_keep(in->ring.ring_fd);
	in->ring.enter_ring_fd = in->ring.ring_fd;
	return 0;
}

static void ring_exit(struct uffd_intake *in)
{
	uffd_fd_forget(in->ring.ring_fd);	/* io_uring_queue_exit() closes it */
	io_uring_queue_exit(&in->ring);
}

/*
 * SINGLE_ISSUER | DEFER_TASKRUN: completions are run by this thread when it
 * waits, not by interrupts of it at random points.  Older kernels (< 6.1)
 * refuse the flags; plain rings then.
 */
static int ring_setup(struct uffd_intake *in)
{
	unsigned int entries = in->depth + 1;
	unsigned int i;
	int ret;

	ret = ring_init(in, entries, IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN);
	if (ret == -EINVAL)
		ret = ring_init(in, entries, 0);
	if (ret < 0)
		return ret;
	for (i = 0; i < in->depth; i++)
		arm_read(in, i);
	arm_stop(in);
	ret = io_uring_submit(&in->ring);
	if (ret < 0) {
		ring_exit(in);
		return ret;
	}
	in->ring_live = true;
	return 0;
}

/* One read completion: keep its messages, count it, re-arm the slot. */
static unsigned int reap_read(struct uffd_intake *in, unsigned int slot,
			      int res, unsigned int n)
{
	unsigned int got;

	if (res > 0) {
		got = res / sizeof(struct uffd_msg);
		memcpy(in->out + n, slot_buf(in, slot),
		       got * sizeof(struct uffd_msg));
		in->stats.reads++;
		arm_read(in, slot);
		return got;
	}
	in->stats.errors++;
	if (res == -EINTR || res == -EAGAIN) {
		arm_read(in, slot);
		return 0;
	}
	/* A uffd never reads 0 bytes; treat it like any broken fd. */
	if (!in->err)
		in->err = res ? res : -EIO;
	return 0;
}

/*
 * Harvest every ready CQE.  Each slot has one read in flight, so one
 * harvest holds at most depth * batch messages: `out` is that big.
 */
static unsigned int reap(struct uffd_intake *in, bool *stop_seen)
{
	struct io_uring_cqe *cqe;
	unsigned int head, seen = 0, n = 0;

	io_uring_for_each_cqe(&in->ring, head, cqe) {
		seen++;
		/* Kernels without EXT_ARG: liburing's wait timeout (a TIMEOUT sqe). */
		if (cqe->user_data == LIBURING_UDATA_TIMEOUT)
			continue;
		if (cqe->user_data == STOP_TAG) {
			*stop_seen = true;
			continue;
		}
		n += reap_read(in, (unsigned int)cqe->user_data, cqe->res, n);
	}
	io_uring_cq_advance(&in->ring, seen);
	return n;
}

static int wait_ring(struct uffd_intake *in)
{
	struct __kernel_timespec ts = { .tv_nsec = NO_STOP_FD_MS * 1000000L };
	struct io_uring_cqe *cqe;
	bool stop_seen;
	unsigned int n;
	int ret;

	for (;;) {
		/* Stopping: hand out what was read already (rings without DEFER_TASKRUN). */
		if (stopped(in))
			return reap(in, &stop_seen);
		if (in->err)
			return in->err;
		/*
		 * Submits the re-armed reads and waits in the same enter: with
		 * DEFER_TASKRUN only an enter with GETEVENTS runs the completions.
		 */
		if (in->stop_fd >= 0)
			ret = io_uring_submit_and_wait(&in->ring, 1);
		else
			ret = io_uring_submit_and_wait_timeout(&in->ring, &cqe,
							       1, &ts, NULL);
		if (ret < 0 && ret != -EINTR && ret != -ETIME &&
		    ret != -EAGAIN && ret != -EBUSY)
			return ret;
		stop_seen = false;
		n = reap(in, &stop_seen);
		/* stop_fd readable without *stop: not ours to consume; re-arm. */
		if (stop_seen && !stopped(in))
			arm_stop(in);
		if (n)
			return n;
	}
}

/* ---- poll(2) and busy polling ---- */

/* One non-blocking read: messages, 0 when none are there, or -errno. */
static int read_batch(struct uffd_intake *in)
{
	ssize_t r;

	r = read(in->uffd_fd, in->out, in->batch * sizeof(struct uffd_msg));
	if (r > 0) {
		in->stats.reads++;
		return r / sizeof(struct uffd_msg);
	}
	if (r == 0)
		return -EIO;
	if (errno == EAGAIN || errno == EINTR)
		return 0;
	return -errno;
}

/*
 * epoll with EPOLLEXCLUSIVE on the uffd: a fault wakes one waiting handler,
 * not all of them (the userfaultfd's wait queue wakes every poller).  The
 * stop_fd is watched non-exclusively: every handler must see it.
 */
static int epoll_setup(struct uffd_intake *in)
{
	struct epoll_event ev = { .events = EPOLLIN | EPOLLEXCLUSIVE, .data.u32 = 0 };

	in->epfd = uffd_fd_keep(epoll_create1(EPOLL_CLOEXEC));
	if (in->epfd < 0)
		return -errno;
	if (epoll_ctl(in->epfd, EPOLL_CTL_ADD, in->uffd_fd, &ev))
		goto fail;
	if (in->stop_fd >= 0) {
		ev.events = EPOLLIN;
		ev.data.u32 = 1;
		if (epoll_ctl(in->epfd, EPOLL_CTL_ADD, in->stop_fd, &ev))
			goto fail;
	}
	return 0;
fail:
	uffd_fd_close(in->epfd);
	in->epfd = -1;
	return -errno;
}

static int wait_poll(struct uffd_intake *in)
{
	/*
	 * epoll forgets a closed fd instead of reporting it: when idle, check
	 * now and then that the uffd is still open.
	 */
	int timeout = in->stop_fd < 0 ? NO_STOP_FD_MS : IDLE_CHECK_MS;
	struct epoll_event ev[2];
	int i, n, got;

	for (;;) {
		bool readable = false;

		if (stopped(in))
			return 0;
		got = epoll_wait(in->epfd, ev, 2, timeout);
		if (got < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (!got && fcntl(in->uffd_fd, F_GETFD) < 0)
			return -EBADF;
		for (i = 0; i < got; i++) {
			if (ev[i].data.u32)
				continue;
			/* EPOLLERR alone: the fd is not past UFFDIO_API (or lost O_NONBLOCK). */
			if ((ev[i].events & (EPOLLERR | EPOLLIN)) == EPOLLERR)
				return -EINVAL;
			readable = ev[i].events & EPOLLIN;
		}
		if (!readable)
			continue;
		n = read_batch(in);
		if (n)
			return n;
		/* Readable, then empty: another reader won, or a signal. */
		in->stats.errors++;
	}
}

/* An empty read is the idle state here, not an error: not counted. */
static int wait_busy(struct uffd_intake *in)
{
	int n;

	for (;;) {
		if (stopped(in))
			return 0;
		n = read_batch(in);
		if (n)
			return n;
		cpu_relax();
	}
}

/* ---- spinning before sleeping ---- */

static uint64_t mono_ns(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000000000ull + (uint64_t)t.tv_nsec;
}

/* URING: submit the re-armed reads and run completions, without waiting. */
static int ring_peek(struct uffd_intake *in)
{
	bool stop_seen = false;
	unsigned int n;
	int ret;

	ret = io_uring_submit_and_get_events(&in->ring);
	if (ret < 0 && ret != -EINTR && ret != -EAGAIN && ret != -EBUSY)
		return ret;
	n = reap(in, &stop_seen);
	if (stop_seen && !stopped(in))
		arm_stop(in);
	if (!n && in->err)
		return in->err;
	return (int)n;
}

/* Note who faulted: the spin decision counts the threads faulting lately. */
static void note_faulters(struct uffd_intake *in, int n)
{
	struct uffd_spin *sp = in->spin;
	unsigned int slot;
	int i;

	if (!sp || !sp->budget_ns)
		return;
	for (i = 0; i < n; i++) {
		if (in->out[i].event != UFFD_EVENT_PAGEFAULT || !in->out[i].arg.pagefault.feat.ptid)
			continue;
		slot = atomic_fetch_add_explicit(&sp->next, 1, memory_order_relaxed);
		atomic_store_explicit(&sp->recent[slot % UFFD_SPIN_RECENT],
				      in->out[i].arg.pagefault.feat.ptid, memory_order_relaxed);
	}
}

/* Distinct threads among the latest UFFD_SPIN_RECENT faults. */
static unsigned int faulters(struct uffd_spin *sp)
{
	uint32_t seen[UFFD_SPIN_RECENT], t;
	unsigned int i, j, n = 0;

	for (i = 0; i < UFFD_SPIN_RECENT; i++) {
		t = atomic_load_explicit(&sp->recent[i], memory_order_relaxed);
		for (j = 0; j < n && seen[j] != t; j++)
			;
		if (t && j == n)
			seen[n++] = t;
	}
	return n;
}

/*
 * Whether spinning pays now, looked at every SPIN_CHECK waits.  A spinner
 * holds a CPU.  That pays while the threads that fault have CPUs of their
 * own: the next fault then finds its handler awake.  It costs once they do
 * not - faulting threads and spinners together more than the CPUs - for
 * every microsecond spun is one a woken faulting thread waits to run.  So:
 * spin only while the threads seen faulting lately, plus the spinners with
 * this one, fit the CPUs; and, for CPUs wanted by threads that do not fault (the program
 * computing), not while the scheduler keeps preempting the spinner
 * (RUSAGE_THREAD's involuntary switches: more than SPIN_PREEMPTED since
 * the last look).
 */
#define SPIN_CHECK	64
#define SPIN_PREEMPTED	8

static bool spin_pays(struct uffd_intake *in)
{
	struct uffd_spin *sp = in->spin;
	struct rusage ru;
	uint64_t was = in->nivcsw;

	if (++in->spin_waits % SPIN_CHECK && in->spin_waits > 1)
		return in->spin_on;
	in->stats.faulters = faulters(sp);
	in->spin_on = in->stats.faulters + atomic_load_explicit(&sp->spinners, memory_order_relaxed) <
		      sp->cpus;
	if (!getrusage(RUSAGE_THREAD, &ru)) {
		in->nivcsw = (uint64_t)ru.ru_nivcsw;
		if (in->spin_waits > 1 && in->nivcsw - was > SPIN_PREEMPTED)
			in->spin_on = false;
	}
	if (!in->spin_on)
		in->stats.spin_backoffs++;
	return in->spin_on;
}

/* Take a spinner's place, if one is free. */
static bool spin_enter(struct uffd_spin *sp)
{
	unsigned int cur = atomic_load_explicit(&sp->spinners, memory_order_relaxed);

	do {
		if (cur >= sp->max_spinners)
			return false;
	} while (!atomic_compare_exchange_weak_explicit(&sp->spinners, &cur, cur + 1,
							memory_order_acquire,
							memory_order_relaxed));
	return true;
}

/*
 * Messages found while spinning (> 0), none within the budget (0), or
 * -errno.  The clock is read between tries, not in a tight loop of its
 * own: a try is a system call, far dearer than the vDSO's clock.
 */
static int spin(struct uffd_intake *in)
{
	struct uffd_spin *sp = in->spin;
	uint64_t t0, t;
	int n;

	if (!sp || !sp->budget_ns || !spin_pays(in) || !spin_enter(sp))
		return 0;
	t0 = mono_ns();
	for (;;) {
		n = in->kind == UFFD_INTAKE_URING ? ring_peek(in) : read_batch(in);
		t = mono_ns();
		if (n || stopped(in) || t - t0 >= sp->budget_ns)
			break;
		cpu_relax();
	}
	atomic_fetch_sub_explicit(&sp->spinners, 1, memory_order_release);
	in->stats.spin_ns += t - t0;
	if (n > 0)
		in->stats.spin_hits++;
	else if (!n)
		in->stats.spin_misses++;
	return n;
}

void uffd_intake_set_spin(struct uffd_intake *in, struct uffd_spin *sp)
{
	in->spin = sp;
	in->spin_waits = 0;
}

/* ---- the interface ---- */

/*
 * The uffd must be O_NONBLOCK: a blocking one makes poll(2) report POLLERR,
 * and a blocking read(2) would never look at *stop.
 */
static int check_fd(int fd)
{
	int fl = fcntl(fd, F_GETFL);

	if (fl < 0)
		return -errno;
	return fl & O_NONBLOCK ? 0 : -EINVAL;
}

int uffd_intake_create(struct uffd_intake **out, int uffd_fd,
		       enum uffd_intake_kind kind, unsigned int depth,
		       unsigned int batch, int stop_fd, const atomic_bool *stop)
{
	struct uffd_intake *in;
	size_t msgs, len, pg = sysconf(_SC_PAGESIZE);
	int saved = errno;
	int ret;

	*out = NULL;
	if (!stop || kind > UFFD_INTAKE_BUSY || depth > MAX_DEPTH ||
	    batch > MAX_BATCH)
		return -EINVAL;
	ret = check_fd(uffd_fd);
	if (ret) {
		errno = saved;
		return ret;
	}
	depth = depth ? depth : 1;
	batch = batch ? batch : 1;

	/* `out` for a whole harvest, then (URING) the read slots. */
	msgs = (size_t)depth * batch;
	len = sizeof(*in) + 2 * msgs * sizeof(struct uffd_msg);
	len = (len + pg - 1) & ~(pg - 1);
	in = map(len);
	if (!in) {
		errno = saved;
		return -ENOMEM;
	}
	in->map_len = len;
	in->out = (struct uffd_msg *)(in + 1);
	in->slots = in->out + msgs;
	in->uffd_fd = uffd_fd;
	in->stop_fd = stop_fd;
	in->stop = stop;
	in->depth = depth;
	in->batch = batch;
	in->kind = kind;
	in->epfd = -1;
	if (kind == UFFD_INTAKE_URING && ring_setup(in) < 0)
		in->kind = UFFD_INTAKE_POLL;
	if (in->kind == UFFD_INTAKE_POLL) {
		ret = epoll_setup(in);
		if (ret) {
			unmap(in, len);
			errno = saved;
			return ret;
		}
	}
	*out = in;
	errno = saved;
	return 0;
}

int uffd_intake_wait(struct uffd_intake *in, struct uffd_msg **msgs)
{
	int saved = errno;
	int ret;

	*msgs = in->out;
	ret = in->kind != UFFD_INTAKE_BUSY && !stopped(in) ? spin(in) : 0;
	if (!ret) {
		switch (in->kind) {
		case UFFD_INTAKE_URING:
			ret = wait_ring(in);
			break;
		case UFFD_INTAKE_POLL:
			ret = wait_poll(in);
			break;
		default:
			ret = wait_busy(in);
			break;
		}
	}
	if (ret > 0)
		note_faulters(in, ret);
	errno = saved;
	return ret;
}

enum uffd_intake_kind uffd_intake_kind(const struct uffd_intake *in)
{
	return in->kind;
}

void uffd_intake_get_stats(const struct uffd_intake *in,
			   struct uffd_intake_stats *st)
{
	*st = in->stats;
}

/* Closing the ring cancels the reads still in flight. */
void uffd_intake_destroy(struct uffd_intake *in)
{
	int saved = errno;

	if (!in)
		return;
	if (in->ring_live)
		ring_exit(in);
	if (in->epfd >= 0)
		uffd_fd_close(in->epfd);
	unmap(in, in->map_len);
	errno = saved;
}
