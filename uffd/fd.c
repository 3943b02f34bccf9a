/* SPDX-License-Identifier: MIT */
/*
 * fd.c - where the runtime's descriptors live: high, close-on-exec, known.
 *
 * A program that uspf is injected into owns the low descriptor numbers:
 * shells use fds 3-9 by number (`exec 5>>config.log`), daemons close
 * everything from 3 up, and a program started with stdout closed expects
 * its next open() to be fd 1.  So every descriptor the runtime keeps (the
 * userfaultfd, the io_uring and epoll fds, the stop eventfd, ...) is moved
 * high: the lowest free number from 768 up (1024 less 256: the kernel's
 * descriptor table, copied at every fork, stays small).  Valgrind reserves
 * the top of the range for its own descriptors the same way.  A program
 * whose soft RLIMIT_NOFILE is lower than that (Python's test_subprocess
 * runs one at 29) would otherwise find uspf inside its own range, so the
 * soft limit is raised for the one fcntl() when the hard limit allows, and
 * put back: a descriptor above the soft limit stays valid.
 *
 * Each such descriptor is marked in a process-wide set, so that the
 * preload module can keep the program's close(), close_range(), dup2()
 * and friends from closing it behind the runtime's back (src/preload/fd.c).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <sys/resource.h>
#include <unistd.h>

#include "uffd.h"

#define FD_TOP_CAP	1024	/* never above: fork copies the whole table */
#define FD_SPAN		256	/* the runtime's descriptors take [top - 256, top) */

static _Atomic uint64_t kept[UFFD_FD_MAX / 64];

static int fd_base(rlim_t top)
{
	if (top > FD_TOP_CAP)
		top = FD_TOP_CAP;
	/* A tiny hard limit: the upper half, still away from 0-2. */
	if (top < 2 * FD_SPAN)
		return top > 8 ? (int)(top / 2) : 3;
	return (int)(top - FD_SPAN);
}

/* F_DUPFD_CLOEXEC at the base, the soft limit raised meanwhile if it must be. */
static int dup_high(int fd)
{
	struct rlimit rl, raised;
	bool restore = false;
	rlim_t top = FD_TOP_CAP;
	int hi;

	if (!getrlimit(RLIMIT_NOFILE, &rl) && rl.rlim_cur < FD_TOP_CAP) {
		raised = rl;
		raised.rlim_cur = rl.rlim_max < FD_TOP_CAP ? rl.rlim_max : FD_TOP_CAP;
		restore = raised.rlim_cur > rl.rlim_cur && !setrlimit(RLIMIT_NOFILE, &raised);
		top = restore ? raised.rlim_cur : rl.rlim_cur;
	}
	hi = fcntl(fd, F_DUPFD_CLOEXEC, fd_base(top));
	if (restore)
		setrlimit(RLIMIT_NOFILE, &rl);
	return hi;
}

static void mark(int fd, bool on)
{
	uint64_t bit;

	if (fd < 0 || fd >= UFFD_FD_MAX)
		return;
	bit = (uint64_t)1 << (fd % 64);
	if (on)
		atomic_fetch_or_explicit(&kept[fd / 64], bit, memory_order_release);
	else
		atomic_fetch_and_explicit(&kept[fd / 64], ~bit, memory_order_release);
}

int uffd_fd_keep(int fd)
{
	int saved = errno;
	int hi;

	if (fd < 0)
		return fd;
	hi = dup_high(fd);
	if (hi < 0) {
		/* Every high number taken (or a tiny limit): keep it where it is. */
		hi = fd;
		fcntl(fd, F_SETFD, FD_CLOEXEC);
	} else {
		close(fd);
	}
	mark(hi, true);
	errno = saved;
	return hi;
}

void uffd_fd_close(int fd)
{
	int saved = errno;

	if (fd < 0)
		return;
	mark(fd, false);
	close(fd);
	errno = saved;
}

void uffd_fd_forget(int fd)
{
	mark(fd, false);
}

bool uffd_fd_kept(int fd)
{
	if (fd < 0 || fd >= UFFD_FD_MAX)
		return false;
	return atomic_load_explicit(&kept[fd / 64], memory_order_acquire) &
	       ((uint64_t)1 << (fd % 64));
}

bool uffd_fd_kept_range(unsigned int lo, unsigned int hi, unsigned int *first)
{
	unsigned int fd;

	if (hi >= UFFD_FD_MAX)
		hi = UFFD_FD_MAX - 1;
	for (fd = lo; fd <= hi; fd++) {
		uint64_t w = atomic_load_explicit(&kept[fd / 64], memory_order_acquire);

		if (!(w >> (fd % 64))) {
			fd |= 63;	/* nothing more in this word */
			continue;
		}
		if (w & ((uint64_t)1 << (fd % 64))) {
			*first = fd;
			return true;
		}
	}
	return false;
}
