/* SPDX-License-Identifier: MIT */
/*
 * cmd/gnuplot.c - drawing with gnuplot (`bench --plot`, `compare --plot`).
 *
 * gnuplot (the Debian package gnuplot-nox) runs as a child process; the
 * script and the data (gnuplot 5 data blocks) go down a pipe to its stdin,
 * and its stdout goes to our stderr so that the results on stdout stay
 * clean.  It draws into a temporary file next to FILE, renamed over FILE
 * once gnuplot has succeeded, so a failed plot leaves no truncated file.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cmd/cli.h"
#include "cmd/gnuplot.h"

extern char **environ;

enum plot_kind { PLOT_SVG, PLOT_PNG };


static int plot_kind(const char *path, enum plot_kind *kind)
{
	size_t len = strlen(path);
	const char *base = strrchr(path, '/');

	base = base ? base + 1 : path;
	if (len < 4 || strlen(base) <= 4)
		return -EINVAL;
	if (!strcasecmp(path + len - 4, ".svg"))
		*kind = PLOT_SVG;
	else if (!strcasecmp(path + len - 4, ".png"))
		*kind = PLOT_PNG;
	else
		return -EINVAL;
	return 0;
}

/* The first executable `gnuplot` in $PATH, as exec would find it. */
static int find_gnuplot(char *buf, size_t len)
{
	const char *path = getenv("PATH"), *p, *end;
	size_t n;

	if (!path || !*path)
		path = "/usr/local/bin:/usr/bin:/bin";
	for (p = path; ; p = end + 1) {
		end = strchrnul(p, ':');
		n = (size_t)(end - p);
		if (n == 0)
			snprintf(buf, len, "./gnuplot");
		else if ((size_t)snprintf(buf, len, "%.*s/gnuplot", (int)n, p) >= len)
			buf[0] = '\0';
		if (buf[0] && !access(buf, X_OK))
			return 0;
		if (!*end)
			return -ENOENT;
	}
}

int gnuplot_check(const char *cmd, const char *path)
{
	char dir[PATH_MAX], gnuplot[PATH_MAX];
	enum plot_kind kind;
	const char *slash;
	struct stat st;

	if (plot_kind(path, &kind))
		return cli_bad_value(cmd, "--plot", path, "a file name ending in .svg or .png");
	slash = strrchr(path, '/');
	if (!slash)
		snprintf(dir, sizeof(dir), ".");
	else if (slash == path)
		snprintf(dir, sizeof(dir), "/");
	else
		snprintf(dir, sizeof(dir), "%.*s", (int)(slash - path), path);
	if (access(dir, W_OK | X_OK)) {
		fprintf(stderr, "uspf %s: --plot '%s': cannot write in the directory '%s': %s\n",
			cmd, path, dir, strerror(errno));
		return 2;
	}
	if (!stat(path, &st) && (S_ISDIR(st.st_mode) || access(path, W_OK))) {
		fprintf(stderr, "uspf %s: --plot '%s': %s\n", cmd, path,
			S_ISDIR(st.st_mode) ? "is a directory" : strerror(errno));
		return 2;
	}
	if (find_gnuplot(gnuplot, sizeof(gnuplot))) {
		fprintf(stderr, "uspf %s: --plot needs gnuplot, which is not in PATH "
			"(install the Debian package " GNUPLOT_PACKAGE ")\n", cmd);
		return 2;
	}
	return -1;
}

/* A gnuplot single-quoted string: ' is written twice. */
void gnuplot_str(FILE *f, const char *s)
{
	fputc('\'', f);
	for (; *s; s++) {
		if (*s == '\'')
			fputc('\'', f);
		fputc(*s, f);
	}
	fputc('\'', f);
}

void gnuplot_terminal(FILE *f, bool svg, unsigned int width, unsigned int height)
{
	if (svg) {
		fprintf(f, "set terminal svg size %u,%u noenhanced font 'Sans,11' "
			"background rgb 'white'\n", width, height);
		return;
	}
	/* gnuplot-nox has pngcairo; the gd png terminal is the fallback */
	fprintf(f, "if (strstrt(GPVAL_TERMINALS, 'pngcairo') > 0) {\n"
		"  set terminal pngcairo size %u,%u noenhanced font 'Sans,10' background rgb 'white'\n"
		"} else {\n"
		"  set terminal png size %u,%u noenhanced background rgb 'white'\n"
		"}\n", width, height, width, height);
}

/* ---- running gnuplot ---- */

static int write_all(int fd, const char *buf, size_t len)
{
	ssize_t n;

	while (len) {
		n = write(fd, buf, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

static int run_gnuplot(const char *cmd, const char *gnuplot, const char *script, size_t len)
{
	struct sigaction ign = { .sa_handler = SIG_IGN }, old;
	posix_spawn_file_actions_t fa;
	char *argv[] = { "gnuplot", NULL };
	int fds[2], ret, ret2, status;
	pid_t pid;

	if (pipe2(fds, O_CLOEXEC))
		return -errno;
	ret = -posix_spawn_file_actions_init(&fa);
	if (!ret)
		ret = -posix_spawn_file_actions_adddup2(&fa, fds[0], STDIN_FILENO);
	if (!ret)
		ret = -posix_spawn_file_actions_adddup2(&fa, STDERR_FILENO, STDOUT_FILENO);
	if (!ret)
		ret = -posix_spawn(&pid, gnuplot, &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	close(fds[0]);
	if (ret) {
		close(fds[1]);
		fprintf(stderr, "uspf %s: --plot: running %s: %s\n", cmd, gnuplot, strerror(-ret));
		return ret;
	}
	/* gnuplot may stop reading early: a write error, not a SIGPIPE */
	sigaction(SIGPIPE, &ign, &old);
	ret = write_all(fds[1], script, len);
	close(fds[1]);
	sigaction(SIGPIPE, &old, NULL);
	while ((ret2 = (int)waitpid(pid, &status, 0)) < 0 && errno == EINTR)
		;
	if (ret2 < 0) {
		fprintf(stderr, "uspf %s: --plot: waiting for gnuplot: %s\n", cmd, strerror(errno));
		return -ECHILD;
	}
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0 && !ret)
		return 0;
	if (WIFSIGNALED(status))
		fprintf(stderr, "uspf %s: --plot: gnuplot was killed by signal %d\n",
			cmd, WTERMSIG(status));
	else if (!WIFEXITED(status) || WEXITSTATUS(status))
		fprintf(stderr, "uspf %s: --plot: gnuplot exited with status %d\n",
			cmd, WEXITSTATUS(status));
	else
		fprintf(stderr, "uspf %s: --plot: writing to gnuplot: %s\n", cmd, strerror(-ret));
	return -EIO;
}

int gnuplot_draw(const char *cmd, const char *path, gnuplot_script_fn script, const void *arg,
		 const char *nodata)
{
	char gnuplot[PATH_MAX], tmp[PATH_MAX];
	enum plot_kind kind;
	char *text = NULL;
	size_t len = 0;
	struct stat st;
	FILE *f;
	int ret;

	if (plot_kind(path, &kind))
		return -EINVAL;		/* gnuplot_check() said so already */
	if (find_gnuplot(gnuplot, sizeof(gnuplot))) {
		fprintf(stderr, "uspf %s: --plot needs gnuplot, which is not in PATH "
			"(install the Debian package " GNUPLOT_PACKAGE ")\n", cmd);
		return -ENOENT;
	}
	/* the same extension: gnuplot is told the terminal, but a reader is not */
	if ((size_t)snprintf(tmp, sizeof(tmp), "%.*s.tmp%ld%s", (int)(strlen(path) - 4), path,
			     (long)getpid(), path + strlen(path) - 4) >= sizeof(tmp)) {
		fprintf(stderr, "uspf %s: --plot '%s': %s\n", cmd, path, strerror(ENAMETOOLONG));
		return -ENAMETOOLONG;
	}
	f = open_memstream(&text, &len);
	if (!f) {
		fprintf(stderr, "uspf %s: --plot: %s\n", cmd, strerror(errno));
		return -ENOMEM;
	}
	ret = script(f, kind == PLOT_SVG, tmp, arg);
	if (fclose(f) && !ret)
		ret = -ENOMEM;
	if (ret) {
		fprintf(stderr, "uspf %s: --plot: %s\n", cmd,
			ret == -ENODATA ? nodata : strerror(-ret));
		free(text);
		return ret;
	}
	ret = run_gnuplot(cmd, gnuplot, text, len);
	free(text);
	if (!ret && (stat(tmp, &st) || st.st_size == 0)) {
		fprintf(stderr, "uspf %s: --plot: gnuplot left no plot in %s\n", cmd, tmp);
		ret = -EIO;
	}
	if (!ret && rename(tmp, path)) {
		ret = -errno;
		fprintf(stderr, "uspf %s: --plot: renaming %s to %s: %s\n", cmd, tmp, path,
			strerror(-ret));
	}
	if (ret)
		unlink(tmp);
	return ret;
}
