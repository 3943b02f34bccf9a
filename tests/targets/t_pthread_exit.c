/* SPDX-License-Identifier: MIT */
/*
 * t_pthread_exit: a process whose last thread is not the main thread.
 *
 *   t_pthread_exit main   the main thread mallocs and touches 1 MiB, starts
 *                         a thread that checks it, prints and returns, and
 *                         calls pthread_exit(NULL): the process exits 0
 *                         when that thread returns (glibc calls exit(0)).
 *   t_pthread_exit fork   a thread other than main forks; in the child that
 *                         thread is the only one, and it returns from its
 *                         start routine: the child exits 0.  The parent
 *                         thread waits for it and reports its status.
 *   t_pthread_exit term   a child whose main thread has called
 *                         pthread_exit() and whose other thread sleeps
 *                         for ever gets SIGTERM: it must die of it (the
 *                         runtime's threads block every signal, so one of
 *                         the program's must take it).
 *   t_pthread_exit c11    as main, with a C11 thrd_create() thread that
 *                         sleeps a little first: the process must neither
 *                         hang nor exit before the thread has printed.
 *
 * Under `uspf run`, threads of the preload module (fault handlers) must
 * not keep such a process alive: a hang here is the bug.  Output is
 * deterministic.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <threads.h>
#include <unistd.h>

#define LEN (1u << 20)

static unsigned char *buf;

static void fill(unsigned char *p, unsigned seed)
{
	size_t i;

	for (i = 0; i < LEN; i++)
		p[i] = (unsigned char)(i * 13u + seed);
}

static unsigned long sum(const unsigned char *p, unsigned seed)
{
	unsigned long s = 0;
	size_t i;

	for (i = 0; i < LEN; i++) {
		if (p[i] != (unsigned char)(i * 13u + seed)) {
			fprintf(stderr, "t_pthread_exit: byte %zu is %u\n", i, p[i]);
			exit(1);
		}
		s += p[i] * (i % 251 + 1);
	}
	return s;
}

static void *printer(void *arg)
{
	(void)arg;
	printf("thread: sum %lu\n", sum(buf, 1));
	fflush(stdout);
	return NULL;
}

static void *forker(void *arg)
{
	unsigned char *mine;
	pid_t pid;
	int st;

	(void)arg;
	fflush(stdout);
	pid = fork();
	if (pid < 0) {
		perror("fork");
		exit(1);
	}
	if (pid == 0) {
		/* The child: one thread, which returns; glibc then calls exit(0). */
		mine = malloc(LEN);
		if (!mine)
			_exit(3);
		fill(mine, 2);
		printf("child: inherited %lu own %lu\n", sum(buf, 1), sum(mine, 2));
		fflush(stdout);
		return NULL;
	}
	if (waitpid(pid, &st, 0) != pid) {
		perror("waitpid");
		exit(1);
	}
	printf("thread: child %s %d\n", WIFEXITED(st) ? "exited" : "killed by signal",
	       WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st));
	fflush(stdout);
	return NULL;
}

static void *sleeper(void *arg)
{
	for (;;)
		pause();
	return NULL;
}

static int term_child(void)
{
	pthread_t t;
	pid_t pid = fork();
	int st, i;

	if (pid < 0)
		return 1;
	if (pid == 0) {
		unsigned char *p = malloc(LEN);

		if (!p)
			_exit(1);
		fill(p, 2);
		if (pthread_create(&t, NULL, sleeper, NULL))
			_exit(1);
		pthread_exit(NULL);
	}
	usleep(200000);
	kill(pid, SIGTERM);
	for (i = 0; i < 500; i++) {		/* 5 s: then it is the hang */
		if (waitpid(pid, &st, WNOHANG) == pid)
			break;
		usleep(10000);
	}
	if (i == 500) {
		kill(pid, SIGKILL);
		waitpid(pid, &st, 0);
		printf("term: child did not die of SIGTERM\n");
		return 1;
	}
	printf("term: child %s %d\n", WIFEXITED(st) ? "exited" : "killed by signal",
	       WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st));
	return 0;
}

static int c11_printer(void *arg)
{
	usleep(100000);
	printer(arg);
	return 0;
}

int main(int argc, char **argv)
{
	const char *mode = argc > 1 ? argv[1] : "main";
	pthread_t t;
	int err;

	buf = malloc(LEN);
	if (!buf)
		return 1;
	fill(buf, 1);
	printf("main: sum %lu\n", sum(buf, 1));
	fflush(stdout);
	if (!strcmp(mode, "main")) {
		err = pthread_create(&t, NULL, printer, NULL);
		if (err) {
			fprintf(stderr, "pthread_create: %s\n", strerror(err));
			return 1;
		}
		pthread_exit(NULL);
	}
	if (!strcmp(mode, "fork")) {
		err = pthread_create(&t, NULL, forker, NULL);
		if (err) {
			fprintf(stderr, "pthread_create: %s\n", strerror(err));
			return 1;
		}
		pthread_join(t, NULL);
		printf("main: done\n");
		return 0;
	}
	if (!strcmp(mode, "term"))
		return term_child();
	if (!strcmp(mode, "c11")) {
		thrd_t c;

		if (thrd_create(&c, c11_printer, NULL) != thrd_success) {
			fprintf(stderr, "thrd_create failed\n");
			return 1;
		}
		pthread_exit(NULL);
	}
	fprintf(stderr, "usage: t_pthread_exit [main|fork|term|c11]\n");
	return 2;
}
