/* SPDX-License-Identifier: MIT */
/*
 * resolve.c - registering ranges and resolving faults on them (UFFDIO_*).
 *
 * The resolving ioctls report progress in an output field (copy, zeropage):
 * bytes installed, or -errno.  The kernel writes that field only once it
 * got as far as trying, so it is zeroed first: a field still zero after a
 * failed ioctl means nothing was done and errno tells why.
 */
#include <errno.h>
#include <sys/ioctl.h>

#include "uffd.h"

/* One ioctl: 0 or -errno.  errno is the caller's to keep. */
static int try_ioctl(int fd, unsigned long req, void *arg)
{
	return ioctl(fd, req, arg) < 0 ? -errno : 0;
}

/* For the ioctls without an output field: restart on EINTR. */
static int xioctl(int fd, unsigned long req, void *arg)
{
	int ret;

	do
		ret = try_ioctl(fd, req, arg);
	while (ret == -EINTR);
	return ret;
}

int uffd_register(struct uffd *u, unsigned long start, size_t len)
{
	struct uffdio_register r = {
		.range = { .start = start, .len = len },
		.mode = UFFDIO_REGISTER_MODE_MISSING,
	};
	int saved = errno;
	int ret;

	ret = xioctl(u->fd, UFFDIO_REGISTER, &r);
	errno = saved;
	return ret;
}

int uffd_unregister(struct uffd *u, unsigned long start, size_t len)
{
	struct uffdio_range r = { .start = start, .len = len };
	int saved = errno;
	int ret;

	ret = xioctl(u->fd, UFFDIO_UNREGISTER, &r);
	errno = saved;
	return ret;
}

/*
 * Fold the ioctl's result and the output field into one value.  A copy that
 * stopped part way (at a present page) fails -EAGAIN with the bytes done in
 * the field: that is progress, not an error.  A field never written (0)
 * means errno has the answer.
 */
static long progress(int ret, int64_t done)
{
	if (!ret)
		return done;
	if (done != 0)
		return done;
	return ret;
}

/*
 * Interrupted with nothing done, the field reads -EINTR (the kernel reports
 * an interrupted copy with bytes done as -EAGAIN): start over, with the
 * field zeroed again.
 */
long uffd_copy(struct uffd *u, unsigned long dst, const void *src, size_t len,
	       bool dontwake)
{
	struct uffdio_copy c;
	int saved = errno;
	long ret;
	int err;

	do {
		c.dst = dst;
		c.src = (unsigned long)src;
		c.len = len;
		c.mode = dontwake ? UFFDIO_COPY_MODE_DONTWAKE : 0;
		c.copy = 0;
		err = try_ioctl(u->fd, UFFDIO_COPY, &c);
		ret = progress(err, c.copy);
	} while (ret == -EINTR);
	errno = saved;
	return ret;
}

long uffd_zeropage(struct uffd *u, unsigned long dst, size_t len, bool dontwake)
{
	struct uffdio_zeropage z;
	int saved = errno;
	long ret;
	int err;

	do {
		z.range.start = dst;
		z.range.len = len;
		z.mode = dontwake ? UFFDIO_ZEROPAGE_MODE_DONTWAKE : 0;
		z.zeropage = 0;
		err = try_ioctl(u->fd, UFFDIO_ZEROPAGE, &z);
		ret = progress(err, z.zeropage);
	} while (ret == -EINTR);
	errno = saved;
	return ret;
}

int uffd_wake(struct uffd *u, unsigned long start, size_t len)
{
	struct uffdio_range r = { .start = start, .len = len };
	int saved = errno;
	int ret;

	ret = xioctl(u->fd, UFFDIO_WAKE, &r);
	errno = saved;
	return ret;
}
