/* SPDX-License-Identifier: MIT */
/*
 * preload/uffd.c - a program's own userfaultfd wins.
 *
 * A program that registers memory with a userfaultfd of its own (a
 * checkpointer, a VM, stress-ng) would get EBUSY for every range uspf
 * registered first.  So ioctl(UFFDIO_REGISTER) from program code first
 * hands the range over: uspf stops serving it (unregistered from uspf's
 * userfaultfd, gone from the model as if the kernel owned it), then the
 * program's registration runs and its handler sees the faults it expects.
 * Pages uspf already filled stay as they are, as they would natively.
 */
#include <dlfcn.h>
#include <errno.h>
#include <stdarg.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>
#include <linux/userfaultfd.h>

#include "preload/preload.h"
#include "runtime.h"
#include "uffd/uffd.h"
#include "mm/vma.h"

#define EXPORT __attribute__((visibility("default")))

typedef int (*ioctl_fn)(int, unsigned long, ...);

static ioctl_fn real_ioctl_p;

/* From the constructor, as the other wrappers' (a raw syscall stands in until then). */
void preload_uffd_init(void)
{
	real_ioctl_p = (ioctl_fn)dlsym(RTLD_NEXT, "ioctl");
}

static void hand_over(struct uspf *u, const struct uffdio_register *arg)
{
	struct uffdio_register r;
	struct iovec local = { &r, sizeof(r) }, remote = { (void *)arg, sizeof(r) };
	unsigned long start, end, s, e;
	sigset_t old;

	/* A bad pointer is the kernel's EFAULT below, not our crash. */
	if (process_vm_readv(getpid(), &local, 1, &remote, 1, 0) != (ssize_t)sizeof(r))
		return;
	if (!r.range.len || r.range.len > ~0ul - r.range.start - PAGE_SIZE)
		return;		/* the kernel's EINVAL, below */
	start = r.range.start & PAGE_MASK;
	end = (r.range.start + r.range.len + PAGE_SIZE - 1) & PAGE_MASK;
	preload_lock(&old);
	while (start < end && preload_next_owned(u, start, end, &s, &e)) {
		mapping_release(u, s, e);
		start = e;
	}
	preload_unlock(&old);
}

EXPORT int ioctl(int fd, unsigned long req, ...)
{
	struct uspf *u;
	va_list ap;
	void *arg;
	int saved = errno;

	va_start(ap, req);
	arg = va_arg(ap, void *);
	va_end(ap);
	if (__builtin_expect(req == UFFDIO_REGISTER, 0) && arg && !uffd_fd_kept(fd) &&
	    !preload_caller_bypass(__builtin_return_address(0)) && (u = preload_live())) {
		hand_over(u, arg);
		errno = saved;
	}
	if (real_ioctl_p)
		return real_ioctl_p(fd, req, arg);
	return (int)syscall(SYS_ioctl, fd, req, arg);
}
