/* SPDX-License-Identifier: MIT */
/*
 * test_open.c - uffd_open(): the ways in, the fd's flags, feature
 * negotiation, and the user-mode-only fallback with its warning.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tests/as_nobody.h"
#include "uffd/uffd.h"

TestSuite(uffd_open, .timeout = 20);

Test(uffd_open, reports_features)
{
	uint64_t want = UFFD_FEATURE_THREAD_ID | UFFD_FEATURE_EVENT_UNMAP;
	uint64_t probed;
	struct uffd u;

	cr_assert_eq(uffd_probe_features(&probed), 0);
	cr_assert(probed & UFFD_FEATURE_THREAD_ID, "probed %#llx",
		  (unsigned long long)probed);
	cr_assert_eq(uffd_open(&u, want, stderr), 0);
	cr_assert_geq(u.fd, 0);
	cr_assert_eq(u.features, want & probed);
	cr_assert_str_neq(uffd_open_how_name(u.how), "unknown");
	if (access("/dev/userfaultfd", R_OK | W_OK) == 0)
		cr_assert_eq(u.how, UFFD_VIA_DEV);
	uffd_close(&u);
}

Test(uffd_open, fd_is_nonblocking_and_cloexec)
{
	struct uffd u;

	cr_assert_eq(uffd_open(&u, 0, stderr), 0);
	cr_assert(fcntl(u.fd, F_GETFL) & O_NONBLOCK);
	cr_assert(fcntl(u.fd, F_GETFD) & FD_CLOEXEC);
	uffd_close(&u);
}

/* Unknown bits would make UFFDIO_API fail EINVAL: they must be dropped. */
Test(uffd_open, drops_features_the_kernel_lacks)
{
	uint64_t probed;
	struct uffd u;

	cr_assert_eq(uffd_probe_features(&probed), 0);
	cr_assert_eq(uffd_open(&u, ~0ULL, stderr), 0);
	/* EVENT_FORK may be dropped too, if we lack CAP_SYS_PTRACE. */
	cr_assert_eq(u.features | UFFD_FEATURE_EVENT_FORK,
		     probed | UFFD_FEATURE_EVENT_FORK);
	uffd_close(&u);
}

Test(uffd_open, probe_is_repeatable)
{
	uint64_t a, b;

	cr_assert_eq(uffd_probe_features(&a), 0);
	cr_assert_eq(uffd_probe_features(&b), 0);
	cr_assert_eq(a, b);
}

Test(uffd_open, close_closes)
{
	struct uffd u;
	int fd;

	cr_assert_eq(uffd_open(&u, 0, stderr), 0);
	fd = u.fd;
	uffd_close(&u);
	cr_assert_eq(u.fd, -1);
	cr_assert_eq(fcntl(fd, F_GETFD), -1);
	cr_assert_eq(errno, EBADF);
	uffd_close(&u);	/* twice is harmless */
}

Test(uffd_open, preserves_errno)
{
	uint64_t f;
	struct uffd u;

	errno = 4242;
	cr_assert_eq(uffd_open(&u, ~0ULL, stderr), 0);
	cr_assert_eq(errno, 4242);
	cr_assert_eq(uffd_probe_features(&f), 0);
	cr_assert_eq(errno, 4242);
	uffd_close(&u);
	cr_assert_eq(errno, 4242);
}

Test(uffd_open, how_names)
{
	cr_assert_str_eq(uffd_open_how_name(UFFD_VIA_DEV), "dev");
	cr_assert_str_eq(uffd_open_how_name(UFFD_VIA_SYSCALL), "syscall");
	cr_assert_str_eq(uffd_open_how_name(UFFD_VIA_SYSCALL_USER_ONLY),
			 "syscall-user-only");
	cr_assert_str_eq(uffd_open_how_name((enum uffd_open_how)99), "unknown");
}

/*
 * As nobody (no /dev/userfaultfd access, no CAP_SYS_PTRACE) with
 * vm.unprivileged_userfaultfd=0 only a user-mode-only fd can be had: the
 * warning is written, EVENT_FORK asked for is dropped (not fatal), and a
 * read(2) into a registered page fails EFAULT at once instead of waiting
 * for a handler.  Runs in a child dropped to nobody (tests/as_nobody.h).
 * Exit codes: 0 pass, 77 skip, else the step that failed.
 */
static int as_nobody(void)
{
	char warn[512] = "", *p;
	FILE *w;
	struct uffd u;
	int fds[2];
	int ret;

	w = fmemopen(warn, sizeof(warn), "w");
	if (!w)
		return 2;
	/* EVENT_FORK is offered to all, granted only with CAP_SYS_PTRACE. */
	ret = uffd_open(&u, UFFD_FEATURE_EVENT_FORK | UFFD_FEATURE_THREAD_ID, w);
	fclose(w);
	if (ret == -EPERM || ret == -EACCES)
		return 77;		/* user-mode-only refused too */
	if (ret)
		return 3;
	if (u.how != UFFD_VIA_SYSCALL_USER_ONLY)
		return 77;		/* unprivileged_userfaultfd=1 */
	if (!strstr(warn, "EFAULT") || !strchr(warn, '\n'))
		return 4;
	if (strchr(warn, '\n') != warn + strlen(warn) - 1)
		return 5;		/* one line */
	if (u.features != UFFD_FEATURE_THREAD_ID)
		return 9;

	p = mmap(NULL, 4096, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED || uffd_register(&u, (unsigned long)p, 4096))
		return 6;
	if (pipe(fds) || write(fds[1], "x", 1) != 1)
		return 7;
	if (read(fds[0], p, 1) != -1 || errno != EFAULT)
		return 8;
	uffd_close(&u);
	return 0;
}

Test(uffd_open, user_mode_only_fallback_warns)
{
	t_run_as_nobody(as_nobody);
}

/*
 * uffd/fd.c: the runtime's descriptors sit high, are close-on-exec and
 * known; the program's lowest free number stays its own.
 */
Test(uffd_open, fd_is_high_and_kept)
{
	struct uffd u;
	int low;

	cr_assert_eq(uffd_open(&u, 0, NULL), 0);
	cr_assert_geq(u.fd, 3 + 64, "uffd at %d: in the program's range", u.fd);
	cr_assert(uffd_fd_kept(u.fd));
	cr_assert(fcntl(u.fd, F_GETFD) & FD_CLOEXEC);
	low = open("/dev/null", O_RDONLY);
	cr_assert_lt(low, u.fd);
	cr_assert(!uffd_fd_kept(low));
	close(low);
	uffd_close(&u);
	cr_assert(!uffd_fd_kept(u.fd));
}

/* An fd closed by the program's hand while it was low must not be moved. */
Test(uffd_open, keep_passes_negative_and_ranges)
{
	unsigned int first;
	int a, b;

	cr_assert_eq(uffd_fd_keep(-EBADF), -EBADF);
	a = uffd_fd_keep(open("/dev/null", O_RDONLY));
	b = uffd_fd_keep(open("/dev/null", O_RDONLY));
	cr_assert(a > 3 && b > a, "kept at %d and %d", a, b);
	cr_assert(uffd_fd_kept_range(0, ~0U, &first));
	cr_assert_eq(first, (unsigned int)a);
	cr_assert(uffd_fd_kept_range(a + 1, ~0U, &first));
	cr_assert_eq(first, (unsigned int)b);
	cr_assert(!uffd_fd_kept_range(b + 1, ~0U, &first));
	cr_assert(!uffd_fd_kept_range(0, a - 1, &first));
	uffd_fd_forget(a);
	cr_assert(!uffd_fd_kept(a));
	close(a);
	uffd_fd_close(b);
	cr_assert_eq(fcntl(b, F_GETFD), -1);
}
