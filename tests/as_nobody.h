/* SPDX-License-Identifier: MIT */
/*
 * as_nobody.h - run one step of a test as an unprivileged user.
 *
 * The user-mode-only userfaultfd is what a user without privilege gets
 * (vm.unprivileged_userfaultfd=0): the tests reach it by forking, dropping
 * to nobody in the child and running the step there, so the test process
 * keeps its privileges.  The step returns 0 (pass), 77 (not reachable on
 * this machine: skip) or the number of the check that failed.
 *
 * The build tree may be where nobody cannot go (a clone under /root, or
 * in a `mktemp -d` directory: mode 0700).  A step runs in the test binary
 * already loaded, with / as its working directory, so it needs nothing
 * from there; a program run as nobody (exec'd, or LD_PRELOADed) is run
 * from a copy: t_nobody_copy() puts one in a directory of its own that
 * nobody can reach, t_nobody_cleanup() (the test's .fini) removes it.
 */
#ifndef USPF_TESTS_AS_NOBODY_H
#define USPF_TESTS_AS_NOBODY_H

#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#define T_NOBODY	65534

static inline void t_run_as_nobody(int (*step)(void))
{
	pid_t pid, parent = getpid();
	int status;

	if (geteuid() != 0)
		cr_skip_test("needs root to drop to nobody");
	pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		/* the working directory (the build tree?) may be closed to nobody */
		if (chdir("/") || setgroups(0, NULL) ||
		    setresgid(T_NOBODY, T_NOBODY, T_NOBODY) ||
		    setresuid(T_NOBODY, T_NOBODY, T_NOBODY))
			_exit(77);
		/*
		 * A step that hangs dies with the worker Criterion kills at the
		 * timeout, not left holding the test's output open.  Set after
		 * the drop, which clears it.
		 */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(1);
		_exit(step());
	}
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	cr_assert(WIFEXITED(status), "child status %#x", status);
	if (WEXITSTATUS(status) == 77)
		cr_skip_test("user-mode-only path not reachable here");
	cr_assert_eq(WEXITSTATUS(status), 0, "child step %d failed", WEXITSTATUS(status));
}

/* ---- copies of what runs as nobody ------------------------------------- */

#define T_NOBODY_MAX_FILES 8

static char t_nobody_dir[PATH_MAX];
static char t_nobody_files[T_NOBODY_MAX_FILES][PATH_MAX];
static unsigned int t_nobody_nfiles;

/* Every directory from / down to dir searchable by others (nobody). */
static inline bool t_nobody_can_reach(const char *dir)
{
	char real[PATH_MAX], prefix[PATH_MAX];
	struct stat sb;
	size_t i, len;

	if (!realpath(dir, real))
		return false;
	len = strlen(real);
	for (i = 1; i <= len; i++) {
		if (i > 1 && real[i] != '/' && real[i] != '\0')
			continue;
		/* "/", then each directory down to real itself */
		memcpy(prefix, real, i);
		prefix[i] = '\0';
		if (stat(prefix, &sb) || !S_ISDIR(sb.st_mode) || !(sb.st_mode & S_IXOTH))
			return false;
	}
	return true;
}

/*
 * Make the directory on first use: 0755, under the first of /tmp,
 * /var/tmp, /dev/shm that nobody can reach and that allows exec (not
 * mounted noexec: the copies are programs and libraries).  None: skip.
 */
static inline const char *t_nobody_mkdir(void)
{
	static const char *const bases[] = { "/tmp", "/var/tmp", "/dev/shm" };
	struct statvfs vfs;

	if (t_nobody_dir[0])
		return t_nobody_dir;
	for (size_t i = 0; i < sizeof(bases) / sizeof(bases[0]); i++) {
		if (!t_nobody_can_reach(bases[i]) || statvfs(bases[i], &vfs) ||
		    (vfs.f_flag & ST_NOEXEC))
			continue;
		snprintf(t_nobody_dir, sizeof(t_nobody_dir), "%s/uspf-nobody-XXXXXX", bases[i]);
		if (!mkdtemp(t_nobody_dir)) {
			t_nobody_dir[0] = '\0';
			continue;
		}
		cr_assert_eq(chmod(t_nobody_dir, 0755), 0, "chmod %s: %s", t_nobody_dir,
			     strerror(errno));
		return t_nobody_dir;
	}
	cr_skip_test("no directory nobody can reach and exec from "
		     "(/tmp, /var/tmp, /dev/shm) for the programs it runs");
	return NULL;
}

/*
 * Copy src (an ELF program or shared library: a libtool wrapper script
 * would still run the build tree's binary) into the directory, mode 0755,
 * under the same name; return the copy's path.
 */
static inline const char *t_nobody_copy(const char *src)
{
	const char *dir = t_nobody_mkdir(), *base = strrchr(src, '/');
	char *dst, buf[65536], magic[4];
	ssize_t n, got = 0;
	int in, out;

	cr_assert_lt(t_nobody_nfiles, T_NOBODY_MAX_FILES);
	base = base ? base + 1 : src;
	dst = t_nobody_files[t_nobody_nfiles];
	cr_assert_lt((size_t)snprintf(dst, PATH_MAX, "%s/%s", dir, base), (size_t)PATH_MAX);
	in = open(src, O_RDONLY | O_CLOEXEC);
	cr_assert_geq(in, 0, "open %s: %s", src, strerror(errno));
	cr_assert(pread(in, magic, 4, 0) == 4 && !memcmp(magic, "\177ELF", 4),
		  "%s is not an ELF file (a libtool wrapper script?): a copy would not run "
		  "on its own", src);
	out = open(dst, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0755);
	cr_assert_geq(out, 0, "create %s: %s", dst, strerror(errno));
	t_nobody_nfiles++;	/* t_nobody_cleanup() removes it from here on */
	while ((n = read(in, buf, sizeof(buf))) > 0) {
		cr_assert_eq(write(out, buf, (size_t)n), n, "write %s: %s", dst, strerror(errno));
		got += n;
	}
	cr_assert_eq(n, 0, "read %s: %s", src, strerror(errno));
	cr_assert_eq(fchmod(out, 0755), 0);	/* whatever the umask */
	cr_assert_eq(close(out), 0, "close %s: %s", dst, strerror(errno));
	close(in);
	cr_assert_gt(got, 0, "%s is empty", src);
	return dst;
}

/* Remove the copies and their directory (a no-op if none was made). */
static inline void t_nobody_cleanup(void)
{
	while (t_nobody_nfiles)
		unlink(t_nobody_files[--t_nobody_nfiles]);
	if (t_nobody_dir[0])
		rmdir(t_nobody_dir);
	t_nobody_dir[0] = '\0';
}

#endif
