/* SPDX-License-Identifier: MIT */
/*
 * uffd.h - the userfaultfd layer.
 *
 * Opens a userfaultfd, registers address ranges, resolves faults (copy,
 * zeropage, wake) and takes fault messages in (io_uring, poll, busy-poll).
 * It knows addresses and pages, nothing of VMAs or locking policies.
 *
 * Every function returns a non-negative value on success and a negative
 * errno on failure; errno itself is preserved.
 *
 * Rule for callers: the kernel wakes a faulting thread only when a copy or
 * zeropage without DONTWAKE succeeds.  After any failure, or after a
 * DONTWAKE resolve, the caller must uffd_wake() the range, or the faulting
 * thread sleeps forever.
 */
#ifndef USPF_UFFD_H
#define USPF_UFFD_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <linux/userfaultfd.h>

/* How the file descriptor was obtained. */
enum uffd_open_how {
	UFFD_VIA_DEV = 0,		/* /dev/userfaultfd, USERFAULTFD_IOC_NEW */
	UFFD_VIA_SYSCALL,		/* userfaultfd(2) */
	UFFD_VIA_SYSCALL_USER_ONLY,	/* userfaultfd(2) with UFFD_USER_MODE_ONLY */
};

struct uffd {
	int fd;				/* O_CLOEXEC | O_NONBLOCK */
	enum uffd_open_how how;
	uint64_t features;		/* granted by UFFDIO_API */
};

/*
 * Open a userfaultfd: /dev/userfaultfd, else userfaultfd(2), else
 * userfaultfd(2) with UFFD_USER_MODE_ONLY.  In the last case one line
 * saying what that costs is written to `warn` (if not NULL): faults the
 * kernel itself takes on registered pages (read(2) into them) fail with
 * EFAULT.  `want` is the feature set to request; features the kernel lacks
 * are dropped (see uffd_probe_features()).
 */
int uffd_open(struct uffd *u, uint64_t want, FILE *warn);
void uffd_close(struct uffd *u);
/* The same userfaultfd under another (high) number; no other user of u->fd may run. */
int uffd_move(struct uffd *u);
const char *uffd_open_how_name(enum uffd_open_how how);

/*
 * ---- descriptors (fd.c) ----
 *
 * The runtime's descriptors sit at the top of the program's range, close-
 * on-exec, and are remembered, so that an injected program's own numbers
 * stay its own.  uffd_fd_keep() moves fd there (closing the original) and
 * returns the new number (fd itself if no high number is free); negative
 * fd is passed through.  uffd_fd_close() forgets and closes one,
 * uffd_fd_forget() only forgets (a forked child's copy, closed by the
 * caller).  uffd_fd_kept*() answer "is this one of the runtime's?".
 */
#define UFFD_FD_MAX	4096
int uffd_fd_keep(int fd);
void uffd_fd_close(int fd);
void uffd_fd_forget(int fd);
bool uffd_fd_kept(int fd);
/* The lowest kept fd in [lo, hi] into *first; false if none. */
bool uffd_fd_kept_range(unsigned int lo, unsigned int hi, unsigned int *first);

/* Features the kernel offers, probed on a throw-away fd. */
int uffd_probe_features(uint64_t *features);

/* Register / unregister [start, start+len) for missing-page faults. */
int uffd_register(struct uffd *u, unsigned long start, size_t len);
int uffd_unregister(struct uffd *u, unsigned long start, size_t len);

/*
 * Resolve: copy len bytes from src to dst (page aligned, several pages
 * allowed), or install zero pages.  Returns the number of bytes installed
 * (> 0; less than len when the kernel stopped at a page already present)
 * or a negative errno: -EEXIST (first page present), -ENOENT (range no
 * longer in one registered VMA), -EAGAIN (a non-cooperative event is
 * pending; nothing installed), -ESRCH (the mm is gone), others.
 */
long uffd_copy(struct uffd *u, unsigned long dst, const void *src, size_t len,
	       bool dontwake);
long uffd_zeropage(struct uffd *u, unsigned long dst, size_t len, bool dontwake);
int uffd_wake(struct uffd *u, unsigned long start, size_t len);

/* ---- intake ---- */

enum uffd_intake_kind {
	UFFD_INTAKE_URING = 0,
	UFFD_INTAKE_POLL,
	UFFD_INTAKE_BUSY,
};

struct uffd_intake_stats {
	uint64_t reads;		/* completions or read(2) calls that returned messages */
	uint64_t errors;	/* -EINTR, -EAGAIN and other failed reads, resubmitted */
	uint64_t spin_hits;	/* spins that found messages */
	uint64_t spin_misses;	/* spins that ran out of budget: the intake slept */
	uint64_t spin_ns;	/* time spent spinning */
	uint64_t spin_backoffs;	/* looks that found spinning would not pay: the CPUs were wanted */
	uint64_t faulters;	/* threads among the latest faults, at the last look */
};

struct uffd_intake;

/*
 * Create an intake for the calling thread (io_uring is created
 * SINGLE_ISSUER in the thread that submits, so call this from the handler
 * thread).  `depth` reads in flight (io_uring only), each with room for
 * `batch` messages.  The intake stops when *stop becomes true and stop_fd
 * (an eventfd) is written.  If io_uring cannot be set up, the poll intake
 * is used instead: uffd_intake_kind() tells which one runs.
 *
 * Set *stop before writing stop_fd: stop_fd is never read here (several
 * intakes may share it), so while it is readable and *stop is false the
 * intake keeps waking.  stop_fd may be -1: *stop is then looked at every
 * 100 ms.  BUSY ignores stop_fd.  uffd_fd must be O_NONBLOCK (-EINVAL);
 * a bad fd is -EBADF.
 */
int uffd_intake_create(struct uffd_intake **out, int uffd_fd,
		       enum uffd_intake_kind kind, unsigned int depth,
		       unsigned int batch, int stop_fd, const atomic_bool *stop);
/*
 * Wait for fault messages.  Returns the number of messages (> 0) placed in
 * *msgs (valid until the next call), 0 when stopped, or a negative errno
 * on an unrecoverable error.
 */
int uffd_intake_wait(struct uffd_intake *in, struct uffd_msg **msgs);
/*
 * Spin before sleeping: look for messages without blocking (read(2), or
 * for URING an enter that runs completions but does not wait) for up to
 * budget_ns after the last batch, then sleep as the kind does.  A stream
 * of faults then finds its handler awake, and an idle one costs at most
 * budget_ns of CPU per handler.  Shared by the intakes of one uffd: at
 * most max_spinners spin at once, and none while the threads seen
 * faulting lately (UFFD_FEATURE_THREAD_ID's ptid) and a spinner would not
 * fit `cpus`, or while the scheduler keeps preempting the spinner
 * (intake.c, spin_pays()).  budget_ns 0: no spinning.  BUSY spins anyway.
 */
#define UFFD_SPIN_RECENT	32

struct uffd_spin {
	uint64_t budget_ns;
	unsigned int max_spinners;
	unsigned int cpus;
	atomic_uint spinners;			/* intakes spinning now */
	atomic_uint next;			/* recent[] slot written next */
	_Atomic uint32_t recent[UFFD_SPIN_RECENT];	/* ptids of the latest faults */
};

void uffd_intake_set_spin(struct uffd_intake *in, struct uffd_spin *sp);
enum uffd_intake_kind uffd_intake_kind(const struct uffd_intake *in);
void uffd_intake_get_stats(const struct uffd_intake *in, struct uffd_intake_stats *st);
void uffd_intake_destroy(struct uffd_intake *in);

#endif
