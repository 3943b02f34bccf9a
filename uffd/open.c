/* SPDX-License-Identifier: MIT */
/*
 * open.c - obtaining a userfaultfd and negotiating its features.
 *
 * Three ways in, most capable first: /dev/userfaultfd (root, or whoever
 * the device node's mode lets in), userfaultfd(2) (root, CAP_SYS_PTRACE, or
 * vm.unprivileged_userfaultfd=1), userfaultfd(2) with UFFD_USER_MODE_ONLY
 * (anyone, but faults the kernel takes on registered pages fail EFAULT).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "uffd.h"

#define UFFD_FLAGS	(O_CLOEXEC | O_NONBLOCK)

/* Returns the fd or -errno. */
static int open_dev(void)
{
#ifdef USERFAULTFD_IOC_NEW
	int dev, fd, err;

	dev = open("/dev/userfaultfd", O_RDWR | O_CLOEXEC);
	if (dev < 0)
		return -errno;
	fd = ioctl(dev, USERFAULTFD_IOC_NEW, UFFD_FLAGS);
	err = errno;
	close(dev);
	return fd < 0 ? -err : fd;
#else
	return -ENOSYS;
#endif
}

static int open_syscall(int extra)
{
	long fd = syscall(SYS_userfaultfd, UFFD_FLAGS | extra);

	return fd < 0 ? -errno : (int)fd;
}

/*
 * Returns the fd or -errno.  When all fail, the plain syscall's error says
 * most: -ENOSYS (no userfaultfd in this kernel) or -EPERM (not allowed).
 */
static int open_any(enum uffd_open_how *how)
{
	int fd, err;

	fd = open_dev();
	*how = UFFD_VIA_DEV;
	if (fd >= 0)
		return fd;
	err = fd = open_syscall(0);
	*how = UFFD_VIA_SYSCALL;
	if (fd >= 0)
		return fd;
	fd = open_syscall(UFFD_USER_MODE_ONLY);
	*how = UFFD_VIA_SYSCALL_USER_ONLY;
	return fd >= 0 ? fd : err;
}

/* UFFDIO_API handshake; on success *features holds what the kernel offers. */
static int api(int fd, uint64_t want, uint64_t *offered)
{
	struct uffdio_api a = { .api = UFFD_API, .features = want };

	while (ioctl(fd, UFFDIO_API, &a) < 0) {
		if (errno != EINTR)
			return -errno;
	}
	if (offered)
		*offered = a.features;
	return 0;
}

int uffd_probe_features(uint64_t *features)
{
	int saved = errno;
	enum uffd_open_how how;
	int fd, ret;

	*features = 0;
	fd = open_any(&how);
	if (fd < 0) {
		errno = saved;
		return fd;
	}
	/* Asking for nothing: the kernel answers with all it offers. */
	ret = api(fd, 0, features);
	close(fd);
	errno = saved;
	return ret;
}

static void warn_user_only(FILE *warn)
{
	if (!warn)
		return;
	fprintf(warn, "uspf: userfaultfd is user-mode only (no privilege for "
		"more): kernel-originated faults on registered pages (e.g. "
		"read(2) into them) will fail with EFAULT\n");
	fflush(warn);
}

/*
 * Hand-shake on a fresh fd.  EVENT_FORK is offered to all but granted only
 * with CAP_SYS_PTRACE (EPERM); drop it and start over on a new fd rather
 * than repeat UFFDIO_API on this one.
 */
static int open_with(struct uffd *u, uint64_t want)
{
	int fd, ret;

	for (;;) {
		fd = open_any(&u->how);
		if (fd < 0)
			return fd;
		ret = api(fd, want, NULL);
		if (!ret)
			break;
		close(fd);
		if (ret != -EPERM || !(want & UFFD_FEATURE_EVENT_FORK))
			return ret;
		want &= ~(uint64_t)UFFD_FEATURE_EVENT_FORK;
	}
	u->fd = uffd_fd_keep(fd);
	u->features = want;
	return 0;
}

int uffd_open(struct uffd *u, uint64_t want, FILE *warn)
{
	int saved = errno;
	uint64_t probed;
	int ret;

	u->fd = -1;
	u->how = UFFD_VIA_DEV;
	u->features = 0;
	ret = uffd_probe_features(&probed);
	if (!ret)
		ret = open_with(u, want & probed);
	if (!ret && u->how == UFFD_VIA_SYSCALL_USER_ONLY)
		warn_user_only(warn);
	errno = saved;
	return ret;
}

void uffd_close(struct uffd *u)
{
	int saved = errno;

	uffd_fd_close(u->fd);
	u->fd = -1;
	errno = saved;
}

int uffd_move(struct uffd *u)
{
	int saved = errno;
	int fd = fcntl(u->fd, F_DUPFD_CLOEXEC, 3);

	if (fd < 0) {
		fd = -errno;
		errno = saved;
		return fd;
	}
	fd = uffd_fd_keep(fd);
	uffd_fd_close(u->fd);
	u->fd = fd;
	errno = saved;
	return 0;
}

const char *uffd_open_how_name(enum uffd_open_how how)
{
	switch (how) {
	case UFFD_VIA_DEV:
		return "dev";
	case UFFD_VIA_SYSCALL:
		return "syscall";
	case UFFD_VIA_SYSCALL_USER_ONLY:
		return "syscall-user-only";
	}
	return "unknown";
}
