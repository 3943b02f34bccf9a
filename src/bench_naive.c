/* SPDX-License-Identifier: MIT */
/*
 * bench_naive.c - the `naive` reference: the pft workload on memory
 * registered with a userfaultfd served by one minimal handler thread that
 * does what the userfaultfd(2) man page example does: poll(2), read(2) one
 * struct uffd_msg, one UFFDIO_COPY of one zeroed page, no batching.
 *
 * It uses raw syscalls and ioctls, none of uspf's code: it is the
 * independent baseline for "what does the simplest userfaultfd handler
 * cost".  Every fault ends in a successful copy or a UFFDIO_WAKE (EEXIST:
 * another fault on the page already installed it).  The handler stops when
 * an eventfd is written; if it hits an error it cannot serve past, it
 * unregisters the range (which wakes every pending fault; later touches are
 * ordinary kernel faults) and the run reports the error.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <linux/userfaultfd.h>

#include "bench.h"

struct naive {
	int uffd;
	int stopfd;
	char *base;
	size_t size;
	void *zero;			/* one zeroed page, never registered */
	pthread_t handler;
	int error;			/* first fatal handler error, -errno */
	uint64_t faults, pages, eexist, wakes, copy_errors;
};

static int naive_err(const char *what, int err)
{
	fprintf(stderr, "uspf bench: naive: %s: %s\n", what, strerror(err));
	return -err;
}

static int naive_open_uffd(void)
{
	int fd, dev, err;

	fd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
	if (fd >= 0)
		return fd;
	err = errno;
	dev = open("/dev/userfaultfd", O_RDWR | O_CLOEXEC);
	if (dev < 0) {
		fprintf(stderr, "uspf bench: naive: userfaultfd(2): %s; /dev/userfaultfd: %s\n",
			strerror(err), strerror(errno));
		return -err;
	}
	fd = ioctl(dev, USERFAULTFD_IOC_NEW, O_CLOEXEC | O_NONBLOCK);
	err = errno;
	close(dev);
	if (fd < 0)
		return naive_err("USERFAULTFD_IOC_NEW", err);
	return fd;
}

static int naive_setup_uffd(struct naive *n)
{
	struct uffdio_api api = { .api = UFFD_API, .features = 0 };
	struct uffdio_register reg = {
		.range = { .start = (unsigned long)n->base, .len = n->size },
		.mode = UFFDIO_REGISTER_MODE_MISSING,
	};

	n->uffd = naive_open_uffd();
	if (n->uffd < 0)
		return n->uffd;
	if (ioctl(n->uffd, UFFDIO_API, &api))
		return naive_err("UFFDIO_API", errno);
	if (ioctl(n->uffd, UFFDIO_REGISTER, &reg))
		return naive_err("UFFDIO_REGISTER", errno);
	if (!(reg.ioctls & (1ULL << _UFFDIO_COPY))) {
		fprintf(stderr, "uspf bench: naive: UFFDIO_COPY not offered on the range\n");
		return -EOPNOTSUPP;
	}
	return 0;
}

static void naive_wake(struct naive *n, unsigned long addr, size_t pg)
{
	struct uffdio_range range = { .start = addr, .len = pg };

	if (ioctl(n->uffd, UFFDIO_WAKE, &range))
		n->copy_errors++;
	else
		n->wakes++;
}

static void naive_resolve(struct naive *n, unsigned long addr)
{
	size_t pg = bench_page_size();
	struct uffdio_copy copy = {
		.dst = addr & ~((unsigned long)pg - 1),
		.src = (unsigned long)n->zero,
		.len = pg,
		.mode = 0,
		.copy = 0,
	};

	n->faults++;
	if (!ioctl(n->uffd, UFFDIO_COPY, &copy)) {
		n->pages++;
		return;
	}
	if (errno == EEXIST)
		n->eexist++;
	else
		n->copy_errors++;
	naive_wake(n, copy.dst, pg);
}

/* Give up serving: unregistering wakes every fault waiting on the range. */
static void naive_fail(struct naive *n, const char *what, int err)
{
	struct uffdio_range range = { .start = (unsigned long)n->base, .len = n->size };

	n->error = -err;
	fprintf(stderr, "uspf bench: naive handler: %s: %s\n", what, strerror(err));
	if (ioctl(n->uffd, UFFDIO_UNREGISTER, &range))
		fprintf(stderr, "uspf bench: naive handler: UFFDIO_UNREGISTER: %s\n",
			strerror(errno));
}

static void *naive_handler(void *arg)
{
	struct naive *n = arg;
	struct pollfd pfd[2];
	struct uffd_msg msg;
	ssize_t r;

	for (;;) {
		pfd[0] = (struct pollfd){ .fd = n->uffd, .events = POLLIN };
		pfd[1] = (struct pollfd){ .fd = n->stopfd, .events = POLLIN };
		if (poll(pfd, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			naive_fail(n, "poll", errno);
			return NULL;
		}
		if (pfd[1].revents)
			return NULL;
		if (pfd[0].revents & (POLLERR | POLLHUP)) {
			naive_fail(n, "poll", EIO);
			return NULL;
		}
		r = read(n->uffd, &msg, sizeof(msg));
		if (r < 0 && (errno == EAGAIN || errno == EINTR))
			continue;
		if (r != sizeof(msg)) {
			naive_fail(n, "read", r < 0 ? errno : EIO);
			return NULL;
		}
		if (msg.event == UFFD_EVENT_PAGEFAULT)
			naive_resolve(n, (unsigned long)msg.arg.pagefault.address);
	}
}

static int naive_start(struct naive *n, const struct bench_opts *o)
{
	int ret;

	n->size = o->size;
	n->base = mmap(NULL, n->size, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (n->base == MAP_FAILED) {
		n->base = NULL;
		return naive_err("mmap", errno);
	}
	n->stopfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (n->stopfd < 0)
		return naive_err("eventfd", errno);
	ret = naive_setup_uffd(n);
	if (ret)
		return ret;
	ret = pthread_create(&n->handler, NULL, naive_handler, n);
	if (ret)
		return naive_err("pthread_create", ret);
	return 1;	/* handler running */
}

/* The workers are done: no fault is pending, the handler may go. */
static int naive_stop(struct naive *n)
{
	uint64_t one = 1;
	int ret = 0;

	if (write(n->stopfd, &one, sizeof(one)) != sizeof(one)) {
		ret = naive_err("eventfd write", errno);
		pthread_cancel(n->handler);	/* poll(2) is a cancellation point */
	}
	pthread_join(n->handler, NULL);
	return ret;
}

static void naive_cleanup(struct naive *n)
{
	if (n->uffd >= 0)
		close(n->uffd);
	if (n->stopfd >= 0)
		close(n->stopfd);
	if (n->base && munmap(n->base, n->size))
		fprintf(stderr, "uspf bench: naive: munmap: %s\n", strerror(errno));
}

static int naive_iteration(const struct bench_opts *o, unsigned int threads,
			   struct bench_touch *touch, struct naive *n)
{
	int ret, ret2;

	n->uffd = -1;
	n->stopfd = -1;
	n->base = NULL;
	n->error = 0;
	ret = naive_start(n, o);
	if (ret < 0) {
		naive_cleanup(n);
		return ret;
	}
	ret = bench_touch_run(n->base, n->size, threads, touch);
	ret2 = naive_stop(n);
	naive_cleanup(n);
	if (ret)
		return ret;
	return n->error ? n->error : ret2;
}

static void naive_counters(struct bench_pft_row *row, const struct naive *n)
{
	const struct { const char *name; uint64_t v; } c[] = {
		{ "faults", n->faults },
		{ "pages", n->pages },
		{ "eexist", n->eexist },
		{ "wakes", n->wakes },
		{ "copy_error", n->copy_errors },
	};
	unsigned int i;

	for (i = 0; i < sizeof(c) / sizeof(c[0]); i++)
		bench_pft_row_counter(row, c[i].name, c[i].v);
}

int bench_naive_run(const struct bench_opts *o, unsigned int threads,
		    struct bench_pft_row *row)
{
	struct bench_touch *touch;
	struct bench_hist *lat;
	struct naive *n;
	double *rates;
	unsigned int it;
	int ret = -ENOMEM;

	touch = malloc(sizeof(*touch));
	lat = calloc(1, sizeof(*lat));
	n = calloc(1, sizeof(*n));
	if (n)
		n->zero = aligned_alloc(bench_page_size(), bench_page_size());
	rates = calloc(o->iterations, sizeof(*rates));
	if (!touch || !lat || !n || !n->zero || !rates) {
		fprintf(stderr, "uspf bench: naive: %s\n", strerror(ENOMEM));
		goto out;
	}
	memset(n->zero, 0, bench_page_size());
	row->policy = "naive";
	row->threads = threads;
	row->handlers = 1;
	row->intake = "poll";
	row->faults = o->size / bench_page_size();
	for (it = 0; it < o->iterations; it++) {
		bench_progress_iteration(it, o->iterations);
		ret = naive_iteration(o, threads, touch, n);
		if (ret)
			goto out;
		rates[it] = (double)touch->pages * 1e9 / (double)touch->wall_ns;
		bench_hist_merge(lat, &touch->hist);
	}
	bench_rates_fold(rates, o->iterations, row);
	bench_row_latency(row, lat);
	naive_counters(row, n);
out:
	free(rates);
	if (n)
		free(n->zero);
	free(n);
	free(lat);
	free(touch);
	return ret;
}
