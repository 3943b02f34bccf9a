/* SPDX-License-Identifier: MIT */
/*
 * t_own_uffd: a program with a userfaultfd of its own (as QEMU, CRIU or a
 * garbage collector has).  It maps 1 MiB, registers it MISSING on its own
 * userfaultfd, and a handler thread resolves each fault with UFFDIO_COPY
 * of a page whose bytes depend on the page's index; the main thread reads
 * every page, checks every byte and prints a checksum and the number of
 * faults.  Under `uspf run` it must print what it prints natively.
 *
 * Exit 77 when no userfaultfd can be had (syscall, user-mode-only, or
 * /dev/userfaultfd); 1 on any other failure.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef UFFD_USER_MODE_ONLY
#define UFFD_USER_MODE_ONLY 1
#endif

#define PAGE 4096ul
#define LEN (1ul << 20)

static int uffd, stop_pipe[2];
static unsigned char *region;
static unsigned long faults;

static void fill_page(unsigned char *p, unsigned long idx)
{
	unsigned long i;

	for (i = 0; i < PAGE; i++)
		p[i] = (unsigned char)(idx * 7u + i * 3u + 1u);
}

static int open_uffd(void)
{
	int fd = -1;

#ifdef SYS_userfaultfd
	fd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
	if (fd < 0 && errno == EPERM)
		fd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK | UFFD_USER_MODE_ONLY);
#endif
#ifdef USERFAULTFD_IOC_NEW
	if (fd < 0) {
		int dev = open("/dev/userfaultfd", O_RDWR | O_CLOEXEC);

		if (dev >= 0) {
			fd = ioctl(dev, USERFAULTFD_IOC_NEW, O_CLOEXEC | O_NONBLOCK);
			close(dev);
		}
	}
#endif
	return fd;
}

static void *handler(void *arg)
{
	unsigned char *src;
	struct uffd_msg msg;
	struct pollfd pfd[2];

	(void)arg;
	src = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (src == MAP_FAILED) {
		perror("t_own_uffd: mmap source page");
		exit(1);
	}
	for (;;) {
		pfd[0].fd = uffd;
		pfd[0].events = POLLIN;
		pfd[1].fd = stop_pipe[0];
		pfd[1].events = POLLIN;
		if (poll(pfd, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			perror("t_own_uffd: poll");
			exit(1);
		}
		if (pfd[1].revents)
			break;
		if (pfd[0].revents & (POLLERR | POLLHUP)) {
			fprintf(stderr, "t_own_uffd: userfaultfd poll revents %#x\n", pfd[0].revents);
			exit(1);
		}
		if (!(pfd[0].revents & POLLIN))
			continue;
		if (read(uffd, &msg, sizeof(msg)) != (ssize_t)sizeof(msg)) {
			if (errno == EAGAIN)
				continue;
			perror("t_own_uffd: read userfaultfd");
			exit(1);
		}
		if (msg.event != UFFD_EVENT_PAGEFAULT) {
			fprintf(stderr, "t_own_uffd: unexpected event %u\n", msg.event);
			exit(1);
		} else {
			unsigned long addr = msg.arg.pagefault.address & ~(PAGE - 1);
			unsigned long idx = (addr - (unsigned long)region) / PAGE;
			struct uffdio_copy copy;

			if (addr < (unsigned long)region || addr >= (unsigned long)region + LEN) {
				fprintf(stderr, "t_own_uffd: fault outside the region\n");
				exit(1);
			}
			fill_page(src, idx);
			copy.dst = addr;
			copy.src = (unsigned long)src;
			copy.len = PAGE;
			copy.mode = 0;
			copy.copy = 0;
			if (ioctl(uffd, UFFDIO_COPY, &copy) < 0 && errno != EEXIST) {
				perror("t_own_uffd: UFFDIO_COPY");
				exit(1);
			}
			__atomic_add_fetch(&faults, 1, __ATOMIC_RELAXED);
		}
	}
	munmap(src, PAGE);
	return NULL;
}

int main(void)
{
	struct uffdio_api api = { .api = UFFD_API, .features = 0 };
	struct uffdio_register reg;
	struct uffdio_range range;
	unsigned long h = 1469598103934665603ul, i, j;
	pthread_t t;
	int err;

	region = mmap(NULL, LEN, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (region == MAP_FAILED) {
		perror("t_own_uffd: mmap");
		return 1;
	}
	uffd = open_uffd();
	if (uffd < 0) {
		fprintf(stderr, "t_own_uffd: no userfaultfd: %s\n", strerror(errno));
		return 77;
	}
	if (ioctl(uffd, UFFDIO_API, &api) < 0) {
		perror("t_own_uffd: UFFDIO_API");
		return 1;
	}
	memset(&reg, 0, sizeof(reg));
	reg.range.start = (unsigned long)region;
	reg.range.len = LEN;
	reg.mode = UFFDIO_REGISTER_MODE_MISSING;
	if (ioctl(uffd, UFFDIO_REGISTER, &reg) < 0) {
		perror("t_own_uffd: UFFDIO_REGISTER");
		return 1;
	}
	if (!(reg.ioctls & (1ull << _UFFDIO_COPY))) {
		fprintf(stderr, "t_own_uffd: UFFDIO_COPY not offered\n");
		return 1;
	}
	if (pipe(stop_pipe) < 0) {
		perror("t_own_uffd: pipe");
		return 1;
	}
	err = pthread_create(&t, NULL, handler, NULL);
	if (err) {
		fprintf(stderr, "t_own_uffd: pthread_create: %s\n", strerror(err));
		return 1;
	}
	for (i = 0; i < LEN / PAGE; i++) {
		const volatile unsigned char *p = region + i * PAGE;

		for (j = 0; j < PAGE; j++) {
			unsigned char want = (unsigned char)(i * 7u + j * 3u + 1u);

			if (p[j] != want) {
				fprintf(stderr, "t_own_uffd: page %lu byte %lu is %u, want %u\n",
					i, j, p[j], want);
				return 1;
			}
			h = (h ^ p[j]) * 1099511628211ul;
		}
	}
	if (write(stop_pipe[1], "x", 1) != 1)
		return 1;
	pthread_join(t, NULL);
	range.start = (unsigned long)region;
	range.len = LEN;
	if (ioctl(uffd, UFFDIO_UNREGISTER, &range) < 0) {
		perror("t_own_uffd: UFFDIO_UNREGISTER");
		return 1;
	}
	close(uffd);
	/* Still ordinary memory after that. */
	region[5] = 42;
	printf("own-uffd: pages %lu faults %lu sum %016lx byte %u\n", LEN / PAGE, faults, h,
	       region[5]);
	munmap(region, LEN);
	return 0;
}
