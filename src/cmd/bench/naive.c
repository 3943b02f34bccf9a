/* SPDX-License-Identifier: MIT */
/*
 * cmd/bench/naive.c - the `naive` reference: memory registered with a
 * userfaultfd served by one minimal handler thread that does what the
 * userfaultfd(2) man page example does: poll(2), read(2) one struct
 * uffd_msg, one UFFDIO_COPY of one page, no batching.
 *
 * It uses raw syscalls and ioctls, none of uspf's code: it is the
 * independent baseline for "what does the simplest userfaultfd handler
 * cost".  The handler serves any number of mappings made and unmapped
 * while it runs (bench_naive_map()/bench_naive_unmap(), from any thread):
 * each is an anonymous mmap(2) registered with UFFDIO_REGISTER, listed
 * under a mutex so that the handler can find a file-backed mapping's
 * contents (pread(2) of the page; a zeroed page otherwise).  No
 * non-cooperative events are asked for: munmap(2) simply ends a
 * registration.
 *
 * Every fault ends in a successful copy or a UFFDIO_WAKE (EEXIST: another
 * fault on the page already installed it).  The handler stops when an
 * eventfd is written; if it hits an error it cannot serve past, it
 * unregisters every mapping (which wakes every pending fault; later
 * touches, and later mappings, are ordinary kernel faults) and the run
 * reports the error.
 *
 * bench_naive_run() is pft on it: one mapping of --size, mapped before the
 * workers start.
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

#include "cmd/bench/bench.h"

struct naive_map {
	unsigned long start, end;
	int fd;				/* -1: zero-filled */
	struct naive_map *next;
};

struct bench_naive {
	int uffd;
	int stopfd;
	void *zero;			/* one zeroed page, never registered */
	void *buf;			/* the handler's page for file contents */
	pthread_t handler;
	bool running;
	pthread_mutex_t lock;		/* maps, failed */
	struct naive_map *maps;
	bool failed;			/* the handler gave up: register nothing more */
	int error;			/* first fatal handler error, -errno */
	struct bench_naive_counts c;	/* written by the handler only */
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

static void naive_wake(struct bench_naive *n, unsigned long addr, size_t pg)
{
	struct uffdio_range range = { .start = addr, .len = pg };

	if (ioctl(n->uffd, UFFDIO_WAKE, &range))
		n->c.copy_errors++;
	else
		n->c.wakes++;
}

/* The page's contents: the zero page, or n->buf read from the mapping's file. */
static const void *naive_source(struct bench_naive *n, unsigned long page)
{
	size_t pg = bench_page_size();
	struct naive_map *m;
	ssize_t r = 0;
	off_t off = 0;
	int fd = -1;

	pthread_mutex_lock(&n->lock);
	for (m = n->maps; m; m = m->next) {
		if (page >= m->start && page < m->end) {
			fd = m->fd;
			off = (off_t)(page - m->start);
			break;
		}
	}
	pthread_mutex_unlock(&n->lock);
	if (fd < 0)
		return n->zero;
	/* The mapping cannot go while its fault waits: only its thread unmaps it. */
	do
		r = pread(fd, n->buf, pg, off);
	while (r < 0 && errno == EINTR);
	if (r < 0)
		r = 0;		/* unreadable: serve zeros rather than leave the fault asleep */
	memset((char *)n->buf + r, 0, pg - (size_t)r);
	return n->buf;
}

static void naive_resolve(struct bench_naive *n, unsigned long addr)
{
	size_t pg = bench_page_size();
	unsigned long page = addr & ~((unsigned long)pg - 1);
	struct uffdio_copy copy = {
		.dst = page,
		.src = (unsigned long)naive_source(n, page),
		.len = pg,
		.mode = 0,
		.copy = 0,
	};

	n->c.faults++;
	if (!ioctl(n->uffd, UFFDIO_COPY, &copy)) {
		n->c.pages++;
		return;
	}
	if (errno == EEXIST)
		n->c.eexist++;
	else
		n->c.copy_errors++;
	naive_wake(n, copy.dst, pg);
}

/* Give up serving: unregistering wakes every fault waiting on the ranges. */
static void naive_fail(struct bench_naive *n, const char *what, int err)
{
	struct naive_map *m;

	fprintf(stderr, "uspf bench: naive handler: %s: %s\n", what, strerror(err));
	pthread_mutex_lock(&n->lock);
	n->error = -err;
	n->failed = true;
	for (m = n->maps; m; m = m->next) {
		struct uffdio_range range = { .start = m->start, .len = m->end - m->start };

		if (ioctl(n->uffd, UFFDIO_UNREGISTER, &range))
			fprintf(stderr, "uspf bench: naive handler: UFFDIO_UNREGISTER: %s\n",
				strerror(errno));
	}
	pthread_mutex_unlock(&n->lock);
}

static void *naive_handler(void *arg)
{
	struct bench_naive *n = arg;
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

static void naive_free(struct bench_naive *n)
{
	struct naive_map *m;

	while ((m = n->maps)) {
		n->maps = m->next;
		if (munmap((void *)m->start, m->end - m->start))
			fprintf(stderr, "uspf bench: naive: munmap: %s\n", strerror(errno));
		free(m);
	}
	if (n->uffd >= 0)
		close(n->uffd);
	if (n->stopfd >= 0)
		close(n->stopfd);
	pthread_mutex_destroy(&n->lock);
	free(n->zero);
	free(n->buf);
	free(n);
}

int bench_naive_open(struct bench_naive **out)
{
	struct uffdio_api api = { .api = UFFD_API, .features = 0 };
	size_t pg = bench_page_size();
	struct bench_naive *n;
	int ret;

	n = calloc(1, sizeof(*n));
	if (!n)
		return naive_err("open", ENOMEM);
	n->uffd = -1;
	n->stopfd = -1;
	pthread_mutex_init(&n->lock, NULL);
	n->zero = aligned_alloc(pg, pg);
	n->buf = aligned_alloc(pg, pg);
	if (!n->zero || !n->buf) {
		ret = naive_err("open", ENOMEM);
		goto fail;
	}
	memset(n->zero, 0, pg);
	n->stopfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (n->stopfd < 0) {
		ret = naive_err("eventfd", errno);
		goto fail;
	}
	n->uffd = naive_open_uffd();
	if (n->uffd < 0) {
		ret = n->uffd;
		goto fail;
	}
	if (ioctl(n->uffd, UFFDIO_API, &api)) {
		ret = naive_err("UFFDIO_API", errno);
		goto fail;
	}
	ret = pthread_create(&n->handler, NULL, naive_handler, n);
	if (ret) {
		ret = naive_err("pthread_create", ret);
		goto fail;
	}
	n->running = true;
	*out = n;
	return 0;
fail:
	naive_free(n);
	return ret;
}

int bench_naive_map(struct bench_naive *n, size_t len, int fd, void **out)
{
	struct uffdio_register reg = { .mode = UFFDIO_REGISTER_MODE_MISSING };
	struct naive_map *m;
	void *p;
	int ret = 0;

	m = malloc(sizeof(*m));
	if (!m)
		return naive_err("map", ENOMEM);
	p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED) {
		free(m);
		return naive_err("mmap", errno);
	}
	m->start = (unsigned long)p;
	m->end = m->start + len;
	m->fd = fd;
	reg.range.start = m->start;
	reg.range.len = len;
	/* Listed and registered together, so that a failing handler unregisters it too. */
	pthread_mutex_lock(&n->lock);
	if (!n->failed && ioctl(n->uffd, UFFDIO_REGISTER, &reg))
		ret = naive_err("UFFDIO_REGISTER", errno);
	else if (!n->failed && !(reg.ioctls & (1ULL << _UFFDIO_COPY)))
		ret = naive_err("UFFDIO_REGISTER (no UFFDIO_COPY on the range)", EOPNOTSUPP);
	if (!ret) {
		m->next = n->maps;
		n->maps = m;
	}
	pthread_mutex_unlock(&n->lock);
	if (ret) {
		munmap(p, len);
		free(m);
		return ret;
	}
	*out = p;
	return 0;
}

int bench_naive_unmap(struct bench_naive *n, void *addr, size_t len)
{
	unsigned long start = (unsigned long)addr;
	struct naive_map **pp, *m = NULL;

	pthread_mutex_lock(&n->lock);
	for (pp = &n->maps; *pp; pp = &(*pp)->next) {
		if ((*pp)->start == start && (*pp)->end == start + len) {
			m = *pp;
			*pp = m->next;
			break;
		}
	}
	pthread_mutex_unlock(&n->lock);
	if (!m) {
		fprintf(stderr, "uspf bench: naive: unmap of %p+%zu: not a mapping of its own\n",
			addr, len);
		return -EINVAL;
	}
	free(m);
	if (munmap(addr, len))
		return naive_err("munmap", errno);
	return 0;
}

/* The workers are done: no fault is pending, the handler may go. */
int bench_naive_close(struct bench_naive *n, struct bench_naive_counts *acc)
{
	uint64_t one = 1;
	int ret = 0;

	if (n->running) {
		if (write(n->stopfd, &one, sizeof(one)) != sizeof(one)) {
			ret = naive_err("eventfd write", errno);
			pthread_cancel(n->handler);	/* poll(2) is a cancellation point */
		}
		pthread_join(n->handler, NULL);
	}
	if (acc) {
		acc->faults += n->c.faults;
		acc->pages += n->c.pages;
		acc->eexist += n->c.eexist;
		acc->wakes += n->c.wakes;
		acc->copy_errors += n->c.copy_errors;
	}
	if (n->error)
		ret = n->error;
	naive_free(n);
	return ret;
}

void bench_naive_row_counters(struct bench_pft_row *row, const struct bench_naive_counts *n)
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

/* ---- pft on the naive handler ---- */

static int naive_iteration(const struct bench_opts *o, unsigned int threads,
			   struct bench_touch *touch, struct bench_naive_counts *acc)
{
	struct bench_naive *n;
	void *base;
	int ret, ret2;

	ret = bench_naive_open(&n);
	if (ret)
		return ret;
	ret = bench_naive_map(n, o->size, -1, &base);
	if (!ret)
		ret = bench_touch_run(base, o->size, threads, touch);
	ret2 = bench_naive_close(n, acc);
	return ret ? ret : ret2;
}

int bench_naive_run(const struct bench_opts *o, unsigned int threads,
		    struct bench_pft_row *row)
{
	struct bench_naive_counts acc = { 0 };
	struct bench_touch *touch;
	struct bench_hist *lat;
	double *rates;
	unsigned int it;
	int ret = -ENOMEM;

	touch = malloc(sizeof(*touch));
	lat = calloc(1, sizeof(*lat));
	rates = calloc(o->iterations, sizeof(*rates));
	if (!touch || !lat || !rates) {
		fprintf(stderr, "uspf bench: naive: %s\n", strerror(ENOMEM));
		goto out;
	}
	row->policy = "naive";
	row->threads = threads;
	row->handlers = 1;
	row->intake = "poll";
	row->faults = o->size / bench_page_size();
	for (it = 0; it < o->iterations; it++) {
		bench_progress_iteration(it, o->iterations);
		ret = naive_iteration(o, threads, touch, &acc);
		if (ret)
			goto out;
		rates[it] = (double)touch->pages * 1e9 / (double)touch->wall_ns;
		bench_hist_merge(lat, &touch->hist);
	}
	bench_rates_fold(rates, o->iterations, row);
	bench_row_latency(row, lat);
	bench_naive_row_counters(row, &acc);
out:
	free(rates);
	free(lat);
	free(touch);
	return ret;
}
