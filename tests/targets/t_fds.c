/* SPDX-License-Identifier: MIT */
/*
 * t_fds: a program that does to its file descriptors what real programs do
 * (daemons, shells, subprocess children), then allocates and touches
 * memory allocated before and after and checks every byte.  Under `uspf
 * run` the preload module holds descriptors of its own (the userfaultfd,
 * an io_uring, ...); the program knows nothing of them and must keep
 * working, and print what it prints natively.
 *
 *   t_fds close_range    close_range(3, ~0U, 0)
 *   t_fds closefrom      closefrom(3)
 *   t_fds close_loop     close(i) for i in 3..1023
 *   t_fds dup2_devnull   dup2(open("/dev/null"), i) for i in 3..1023
 *   t_fds fdstate        start it with fds 0 and 1 closed (`9>&1 <&- >&-`):
 *                        reports (on fd 9 if open, else 1, else 2) whether
 *                        fds 0, 1, 2 are open, at start and once memory is
 *                        in use, and which fds open() and dup() return:
 *                        the lowest free ones.
 *
 * Each mode but fdstate also forks a child that checks the inherited memory
 * and allocates its own.  Output is deterministic.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 34))
#define HAVE_GLIBC_CLOSE_RANGE 1
#endif

struct blk {
	unsigned char *p;
	size_t n;
	int mapped;
};

#define NBLK 7
static const size_t sizes[NBLK] = { 24, 4000, 70000, 300000, 1u << 20, 5u << 20, 2u << 20 };

static void die(const char *what)
{
	fprintf(stderr, "t_fds: %s: %s\n", what, strerror(errno));
	exit(1);
}

static void alloc_blocks(struct blk *b, unsigned seed)
{
	int i;
	size_t j;

	for (i = 0; i < NBLK; i++) {
		b[i].n = sizes[i];
		if (i == NBLK - 1) {
			b[i].p = mmap(NULL, b[i].n, PROT_READ | PROT_WRITE,
				      MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
			if (b[i].p == MAP_FAILED)
				die("mmap");
			b[i].mapped = 1;
		} else {
			b[i].p = malloc(b[i].n);
			if (!b[i].p)
				die("malloc");
			b[i].mapped = 0;
		}
		for (j = 0; j < b[i].n; j++)
			b[i].p[j] = (unsigned char)(j * 31u + seed * 7u + (unsigned)i);
	}
}

/* Checks every byte; returns a checksum, exits 1 on a wrong byte. */
static unsigned long check_blocks(const struct blk *b, unsigned seed, const char *who)
{
	unsigned long h = 1469598103934665603ul;
	int i;
	size_t j;

	for (i = 0; i < NBLK; i++) {
		for (j = 0; j < b[i].n; j++) {
			unsigned char want = (unsigned char)(j * 31u + seed * 7u + (unsigned)i);

			if (b[i].p[j] != want) {
				fprintf(stderr, "t_fds: %s: block %d (%zu bytes) byte %zu is %u, want %u\n",
					who, i, b[i].n, j, b[i].p[j], want);
				exit(1);
			}
			if ((j & 1023) == 0)
				h = (h ^ b[i].p[j]) * 1099511628211ul;
		}
		h = (h ^ b[i].n) * 1099511628211ul;
	}
	return h;
}

static void free_blocks(struct blk *b)
{
	int i;

	for (i = 0; i < NBLK; i++) {
		if (b[i].mapped)
			munmap(b[i].p, b[i].n);
		else
			free(b[i].p);
	}
}

static int fd_limit(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < 1024)
		return (int)rl.rlim_cur;
	return 1024;
}

static int do_close_range(void)
{
#ifdef HAVE_GLIBC_CLOSE_RANGE
	return close_range(3, ~0U, 0);
#elif defined(SYS_close_range)
	return (int)syscall(SYS_close_range, 3u, ~0u, 0u);
#else
	errno = ENOSYS;
	return -1;
#endif
}

static int do_closefrom(void)
{
#ifdef HAVE_GLIBC_CLOSE_RANGE
	closefrom(3);
	return 0;
#else
	int i, n = fd_limit();

	for (i = 3; i < n; i++)
		close(i);
	return 0;
#endif
}

static int fds_mode(const char *mode)
{
	struct blk before[NBLK], after[NBLK], more[NBLK];
	unsigned long s1, s2, s3;
	int i, n = fd_limit(), st, fd;
	pid_t pid;

	alloc_blocks(before, 1);
	s1 = check_blocks(before, 1, "before");

	if (!strcmp(mode, "close_range")) {
		if (do_close_range() && errno != ENOSYS)
			die("close_range");
	} else if (!strcmp(mode, "closefrom")) {
		do_closefrom();
	} else if (!strcmp(mode, "close_loop")) {
		for (i = 3; i < n; i++)
			close(i);
	} else if (!strcmp(mode, "dup2_devnull")) {
		fd = open("/dev/null", O_RDWR);
		if (fd < 0)
			die("open /dev/null");
		for (i = 3; i < n; i++)
			if (i != fd && dup2(fd, i) != i)
				die("dup2");
	} else {
		fprintf(stderr, "t_fds: unknown mode '%s'\n", mode);
		return 2;
	}

	/* The old memory is intact, new memory works, and again after a free. */
	alloc_blocks(after, 2);
	s2 = check_blocks(after, 2, "after");
	if (check_blocks(before, 1, "before, again") != s1)
		return 1;
	free_blocks(before);
	alloc_blocks(more, 3);
	s3 = check_blocks(more, 3, "more");
	if (check_blocks(after, 2, "after, again") != s2)
		return 1;
	printf("%s: before %016lx after %016lx more %016lx\n", mode, s1, s2, s3);
	fflush(stdout);

	/* A child inherits it all and allocates on its own. */
	pid = fork();
	if (pid < 0)
		die("fork");
	if (pid == 0) {
		struct blk c[NBLK];

		if (check_blocks(after, 2, "child: after") != s2 ||
		    check_blocks(more, 3, "child: more") != s3)
			_exit(1);
		alloc_blocks(c, 4);
		printf("%s: child %016lx\n", mode, check_blocks(c, 4, "child"));
		fflush(stdout);
		_exit(0);
	}
	if (waitpid(pid, &st, 0) != pid)
		die("waitpid");
	printf("%s: child status %d\n", mode, WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st));
	free_blocks(after);
	free_blocks(more);
	return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : 1;
}

static const char *fd_state(int fd)
{
	struct stat sb;

	if (fcntl(fd, F_GETFD) < 0)
		return errno == EBADF ? "closed" : "error";
	if (fstat(fd, &sb) < 0)
		return "open (fstat fails)";
	if (S_ISREG(sb.st_mode))
		return "open (file)";
	if (S_ISCHR(sb.st_mode))
		return "open (char device)";
	if (S_ISFIFO(sb.st_mode))
		return "open (pipe)";
	if (S_ISSOCK(sb.st_mode))
		return "open (socket)";
	return "open (other)";
}

static int fdstate_mode(void)
{
	struct blk b[NBLK];
	char line[1024];
	int out, a, c, d, len = 0;
	unsigned long s;

	/* Look before anything else opens a descriptor, */
	len += snprintf(line + len, sizeof(line) - len, "at start: fd 0 %s, fd 1 %s, fd 2 %s\n",
			fd_state(0), fd_state(1), fd_state(2));
	/* and again once memory is in use (uspf may set up on the first fault). */
	alloc_blocks(b, 5);
	s = check_blocks(b, 5, "fdstate");
	len += snprintf(line + len, sizeof(line) - len, "memory: %016lx\n", s);
	len += snprintf(line + len, sizeof(line) - len, "after malloc: fd 0 %s, fd 1 %s, fd 2 %s\n",
			fd_state(0), fd_state(1), fd_state(2));
	/* The lowest free fds come first: 0 and 1 when they are closed. */
	a = open("/dev/null", O_RDONLY);
	c = open("/dev/null", O_WRONLY);
	d = dup(2);
	len += snprintf(line + len, sizeof(line) - len, "open: %d\nopen: %d\ndup(2): %d\n", a, c, d);
	free_blocks(b);
	alloc_blocks(b, 6);
	s = check_blocks(b, 6, "fdstate, again");
	free_blocks(b);
	close(a);
	a = open("/dev/null", O_RDONLY);
	len += snprintf(line + len, sizeof(line) - len, "memory: %016lx\nreopen: %d\n", s, a);

	out = fcntl(9, F_GETFD) >= 0 ? 9 : fcntl(1, F_GETFD) >= 0 ? 1 : 2;
	if (write(out, line, len) != len)
		return 1;
	return 0;
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: t_fds close_range|closefrom|close_loop|dup2_devnull|fdstate\n");
		return 2;
	}
	if (!strcmp(argv[1], "fdstate"))
		return fdstate_mode();
	return fds_mode(argv[1]);
}
