/* SPDX-License-Identifier: MIT */
/*
 * preload/fd.c - the program's descriptor calls, kept off the runtime's.
 *
 * The runtime's descriptors sit high and are marked (uffd/fd.c).  A
 * program does not know their numbers, so natively every one of them is
 * a number with nothing open: close() of it fails EBADF, close_range()
 * and closefrom() skip it, and dup2()/dup3() onto it succeed.  That is
 * what the program sees here too; the runtime keeps working:
 *
 *   close(kept)             EBADF, nothing closed
 *   fstat, fcntl on kept    EBADF: a program that probes every number up
 *                           to its limit (Python's fd_status.py, daemons'
 *                           closefrom fallbacks) finds nothing there
 *   close_range, closefrom  the range around the kept numbers
 *   dup2/dup3 onto kept     the handlers are paused (their intake
 *                           descriptors close), the userfaultfd or the
 *                           stats descriptor moves to another number
 *                           (/proc/self/maps: reopened elsewhere),
 *                           the program's dup2 runs, the handlers start
 *                           again; faults meanwhile wait in the queue
 *
 * Only in the process that owns the runtime: a vfork() child shares our
 * memory but not our descriptor table, and must not pause the parent's
 * handlers; its calls go straight to the kernel.  Calls the runtime makes
 * itself (handler threads, inside uspf_*()) pass through as well.
 */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/close_range.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "preload/preload.h"
#include "runtime.h"
#include "uffd/uffd.h"

#define EXPORT __attribute__((visibility("default")))

typedef int (*close_fn)(int);
typedef int (*fstat_fn)(int, struct stat *);
typedef int (*fstat64_fn)(int, struct stat64 *);
typedef int (*fcntl_fn)(int, int, ...);
typedef int (*dup3_fn)(int, int, int);
typedef int (*dup2_fn)(int, int);

static close_fn real_close_p;
static fstat_fn real_fstat_p;
static fstat64_fn real_fstat64_p;
static fcntl_fn real_fcntl_p, real_fcntl64_p;
static dup2_fn real_dup2_p;
static dup3_fn real_dup3_p;

void preload_fd_init(void)
{
	real_close_p = (close_fn)dlsym(RTLD_NEXT, "close");
	real_fstat_p = (fstat_fn)dlsym(RTLD_NEXT, "fstat");
	real_fstat64_p = (fstat64_fn)dlsym(RTLD_NEXT, "fstat64");
	real_fcntl_p = (fcntl_fn)dlsym(RTLD_NEXT, "fcntl");
	real_fcntl64_p = (fcntl_fn)dlsym(RTLD_NEXT, "fcntl64");
	real_dup2_p = (dup2_fn)dlsym(RTLD_NEXT, "dup2");
	real_dup3_p = (dup3_fn)dlsym(RTLD_NEXT, "dup3");
}

static int real_close(int fd)
{
	if (real_close_p)
		return real_close_p(fd);
	return (int)syscall(SYS_close, fd);
}

static int real_close_range(unsigned int first, unsigned int last, int flags)
{
	return (int)syscall(SYS_close_range, first, last, flags);
}

/* A number the program must not take from the runtime, asked from program code. */
static bool guarded(int fd)
{
	return uffd_fd_kept(fd) && !preload_bypass() && preload_owner();
}

EXPORT int close(int fd)
{
	if (__builtin_expect(guarded(fd), 0)) {
		errno = EBADF;
		return -1;
	}
	return real_close(fd);
}

EXPORT int fstat(int fd, struct stat *st)
{
	if (__builtin_expect(guarded(fd), 0)) {
		errno = EBADF;
		return -1;
	}
	if (real_fstat_p)
		return real_fstat_p(fd, st);
	return (int)syscall(SYS_fstat, fd, st);
}

EXPORT int fstat64(int fd, struct stat64 *st)
{
	if (__builtin_expect(guarded(fd), 0)) {
		errno = EBADF;
		return -1;
	}
	if (real_fstat64_p)
		return real_fstat64_p(fd, st);
	return (int)syscall(SYS_fstat, fd, st);
}

/* Every command's third argument fits a pointer (glibc's own fcntl reads it so). */
static int do_fcntl(fcntl_fn real, int fd, int cmd, void *arg)
{
	if (__builtin_expect(guarded(fd), 0)) {
		errno = EBADF;
		return -1;
	}
	if (real)
		return real(fd, cmd, arg);
	return (int)syscall(SYS_fcntl, fd, cmd, arg);
}

EXPORT int fcntl(int fd, int cmd, ...)
{
	va_list ap;
	void *arg;

	va_start(ap, cmd);
	arg = va_arg(ap, void *);
	va_end(ap);
	return do_fcntl(real_fcntl_p, fd, cmd, arg);
}

EXPORT int fcntl64(int fd, int cmd, ...)
{
	va_list ap;
	void *arg;

	va_start(ap, cmd);
	arg = va_arg(ap, void *);
	va_end(ap);
	return do_fcntl(real_fcntl64_p ? real_fcntl64_p : real_fcntl_p, fd, cmd, arg);
}

/* close_range(2) of [first, last] but the kept numbers; -1 with errno on failure. */
static int close_around(unsigned int first, unsigned int last, int flags)
{
	unsigned int cur = first, k;
	int ret = 0;

	if ((flags & CLOSE_RANGE_CLOEXEC) || !preload_owner() || preload_bypass())
		return real_close_range(first, last, flags);	/* closes none of ours */
	while (cur <= last && uffd_fd_kept_range(cur, last, &k)) {
		if (k > cur)
			ret = real_close_range(cur, k - 1, flags);
		if (ret)
			return ret;
		flags &= ~CLOSE_RANGE_UNSHARE;	/* the table is ours after the first */
		if (k == last)
			return 0;
		cur = k + 1;
	}
	return cur <= last ? real_close_range(cur, last, flags) : 0;
}

EXPORT int close_range(unsigned int first, unsigned int last, int flags)
{
	int saved = errno, ret;

	if (first > last) {
		errno = EINVAL;
		return -1;
	}
	ret = close_around(first, last, flags);
	if (!ret)
		errno = saved;
	return ret;
}

/* glibc's closefrom() calls close_range internally: interposed as a whole. */
EXPORT void closefrom(int lowfd)
{
	int saved = errno;
	unsigned int fd;

	if (lowfd < 0)
		lowfd = 0;
	if (close_around((unsigned int)lowfd, ~0U, 0)) {
		/* No close_range(2) (before 5.9): one by one, as glibc falls back. */
		for (fd = (unsigned int)lowfd; fd < UFFD_FD_MAX; fd++)
			if (!uffd_fd_kept((int)fd))
				real_close((int)fd);
	}
	errno = saved;
}

/*
 * The program takes a kept number: the runtime gives it up first.  Called
 * with the preload lock held and signals blocked.
 */
static void give_up(int fd)
{
	struct uspf *u = preload_live();

	if (fd == preload_stats_fd())
		preload_stats_fd_move();
	if (!u || !uffd_fd_kept(fd))
		return;
	if (fd == u->kmaps.fd) {	/* only the writers use it, under the mmap lock */
		if (runtime_move_kmaps(u))
			preload_die("cannot move /proc/self/maps off a descriptor the program takes");
		return;
	}
	runtime_pause(u);
	if (fd == u->uffd.fd && runtime_move_uffd(u))
		preload_die("cannot move the userfaultfd off a descriptor the program takes");
}

static void take_back(void)
{
	struct uspf *u = preload_live();

	if (u && u->stop_fd < 0 && runtime_resume(u))
		preload_die("cannot restart the fault handlers");
}

static int dup_onto(int oldfd, int newfd, int flags, bool three)
{
	sigset_t old;
	int ret, saved;

	if (!guarded(newfd) || oldfd == newfd) {
		if (three)
			return real_dup3_p ? real_dup3_p(oldfd, newfd, flags) :
			       (int)syscall(SYS_dup3, oldfd, newfd, flags);
		if (real_dup2_p)
			return real_dup2_p(oldfd, newfd);
		if (oldfd == newfd)	/* dup2's answer without a dup2 syscall (arm64 has none) */
			return fcntl(oldfd, F_GETFD) < 0 ? -1 : newfd;
		return (int)syscall(SYS_dup3, oldfd, newfd, 0);
	}
	/* Natively newfd is a free number: the dup succeeds if oldfd is open. */
	if (fcntl(oldfd, F_GETFD) < 0)
		return -1;
	preload_lock(&old);
	give_up(newfd);
	ret = (int)syscall(SYS_dup3, oldfd, newfd, three ? flags : 0);	/* oldfd != newfd */
	saved = errno;
	take_back();
	preload_unlock(&old);
	errno = saved;
	return ret;
}

EXPORT int dup2(int oldfd, int newfd)
{
	return dup_onto(oldfd, newfd, 0, false);
}

EXPORT int dup3(int oldfd, int newfd, int flags)
{
	return dup_onto(oldfd, newfd, flags, true);
}

/*
 * A forked child: the parent's runtime is forgotten there (preload.c), and
 * its descriptors - the parent's userfaultfd, rings, eventfd - are closed,
 * so the child holds nothing of the parent's and keeps no number of the
 * program's range.  The stats descriptor stays: the child's line uses it.
 */
void preload_fd_fork_child(void)
{
	unsigned int fd = 0, k;
	int keep = preload_stats_fd();

	while (uffd_fd_kept_range(fd, UFFD_FD_MAX - 1, &k)) {
		if ((int)k != keep)
			uffd_fd_close((int)k);
		fd = k + 1;
	}
}
