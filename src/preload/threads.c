/* SPDX-License-Identifier: MIT */
/*
 * preload/threads.c - the process ends when the program's last thread does.
 *
 * glibc counts every thread made with pthread_create() and, when the last
 * one ends without exit() - the main thread called pthread_exit() and the
 * others returned - calls exit(0) from it (start_thread()).  The runtime's
 * own threads (handlers, the RCU callback worker) are pthreads too, so
 * with them alive glibc's count never reaches zero: the process would
 * live on with nothing but threads that block every signal, so that only
 * SIGKILL could end it.
 *
 * So the program's threads are counted here: the main thread, and every
 * pthread_create() made from program code (the runtime's and liburcu's
 * pass through uncounted).  A thread-specific value's destructor runs as
 * each counted thread ends, however it ends (return, pthread_exit,
 * cancellation); the last one calls exit(0), as glibc would have.  The
 * destructor puts its value back once so that it runs in a later round,
 * after the program's own destructors for that thread.
 *
 * A thread the count cannot see (one glibc makes for itself - a timer's
 * SIGEV_THREAD, POSIX AIO - or a raw clone()) must not be cut short, nor
 * outlive the exit: the last counted thread looks at the process's tasks
 * and calls exit(0) once every other live one is the runtime's own (named
 * "uspf-...") or the kernel's io_uring workers ("iou-..."), looking again
 * every 10 ms until then - unless a new counted thread appears, which is
 * then the one to end it.  (glibc would not wait for a raw clone(): that
 * thread is cut short natively, finished here.)
 */
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <threads.h>
#include <unistd.h>

#include "preload/preload.h"
#include "mm/fork_state.h"

#define EXPORT __attribute__((visibility("default")))

#define MARK_RUNNING	((void *)1)
#define MARK_ENDING	((void *)2)

typedef int (*create_fn)(pthread_t *, const pthread_attr_t *, void *(*)(void *), void *);
typedef int (*thrd_create_fn)(thrd_t *, thrd_start_t, void *);

static create_fn real_create_p;
static thrd_create_fn real_thrd_create_p;
static pthread_key_t key;
static bool key_ok;
static pthread_once_t key_once = PTHREAD_ONCE_INIT;
static __fork_state atomic_long program_threads = 1;		/* the main thread */

/* Is task `tid` of this process live and the program's? */
static bool program_task(const char *tid)
{
	char path[64], buf[256], *l, *r;
	int fd;
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/self/task/%s/stat", tid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;			/* gone meanwhile */
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return false;
	buf[n] = '\0';
	l = strchr(buf, '(');
	r = strrchr(buf, ')');
	if (!l || !r || r[1] != ' ')
		return true;
	if (r[2] == 'Z' || r[2] == 'X')	/* an ended main thread stays as a zombie */
		return false;
	*r = '\0';
	return strncmp(l + 1, "uspf-", 5) && strncmp(l + 1, "iou-", 4);
}

/* True when no task but the caller and the runtime's (and io_uring's) is alive. */
static bool alone(void)
{
	char self[24];
	struct dirent *d;
	bool only = true;
	DIR *dir;

	dir = opendir("/proc/self/task");
	if (!dir)
		return true;		/* no /proc: trust the count */
	snprintf(self, sizeof(self), "%ld", (long)syscall(SYS_gettid));
	while (only && (d = readdir(dir)))
		if (d->d_name[0] != '.' && strcmp(d->d_name, self) && program_task(d->d_name))
			only = false;
	closedir(dir);
	return only;
}

static void thread_gone(void *v)
{
	if (v == MARK_RUNNING) {
		/* Once more, in the next round: the program's destructors first. */
		pthread_setspecific(key, MARK_ENDING);
		return;
	}
	if (atomic_fetch_sub_explicit(&program_threads, 1, memory_order_acq_rel) != 1 ||
	    !preload_owner())
		return;
	while (!alone()) {
		usleep(10000);
		if (atomic_load_explicit(&program_threads, memory_order_acquire))
			return;
	}
	exit(0);
}

static void key_init(void)
{
	key_ok = !pthread_key_create(&key, thread_gone);
	real_create_p = (create_fn)dlsym(RTLD_NEXT, "pthread_create");
	real_thrd_create_p = (thrd_create_fn)dlsym(RTLD_NEXT, "thrd_create");
}

void preload_threads_init(void)
{
	pthread_once(&key_once, key_init);
	if (key_ok)
		pthread_setspecific(key, MARK_RUNNING);	/* the main thread */
}

/* The forking thread is the child's only one (and the runtime's are gone). */
void preload_threads_fork_child(void)
{
	atomic_store_explicit(&program_threads, 1, memory_order_relaxed);
	if (key_ok)
		pthread_setspecific(key, MARK_RUNNING);
}

struct start {
	void *(*fn)(void *);
	void *arg;
};

static void *counted_start(void *p)
{
	struct start s = *(struct start *)p;

	free(p);
	pthread_setspecific(key, MARK_RUNNING);
	return s.fn(s.arg);
}

EXPORT int pthread_create(pthread_t *t, const pthread_attr_t *attr,
			  void *(*fn)(void *), void *arg)
{
	struct start *s;
	int ret;

	pthread_once(&key_once, key_init);
	if (!real_create_p)
		return EAGAIN;
	if (!key_ok || preload_caller_bypass(__builtin_return_address(0)))
		return real_create_p(t, attr, fn, arg);
	s = malloc(sizeof(*s));
	if (!s)
		return EAGAIN;
	s->fn = fn;
	s->arg = arg;
	atomic_fetch_add_explicit(&program_threads, 1, memory_order_relaxed);
	ret = real_create_p(t, attr, counted_start, s);
	if (ret) {
		atomic_fetch_sub_explicit(&program_threads, 1, memory_order_relaxed);
		free(s);
	}
	return ret;
}

/* C11 threads reach glibc's pthread_create internally: counted here too. */
struct thrd_start {
	thrd_start_t fn;
	void *arg;
};

static int counted_thrd_start(void *p)
{
	struct thrd_start s = *(struct thrd_start *)p;

	free(p);
	pthread_setspecific(key, MARK_RUNNING);
	return s.fn(s.arg);
}

EXPORT int thrd_create(thrd_t *t, thrd_start_t fn, void *arg)
{
	struct thrd_start *s;
	int ret;

	pthread_once(&key_once, key_init);
	if (!real_thrd_create_p)
		return thrd_error;
	if (!key_ok || preload_caller_bypass(__builtin_return_address(0)))
		return real_thrd_create_p(t, fn, arg);
	s = malloc(sizeof(*s));
	if (!s)
		return thrd_nomem;
	s->fn = fn;
	s->arg = arg;
	atomic_fetch_add_explicit(&program_threads, 1, memory_order_relaxed);
	ret = real_thrd_create_p(t, counted_thrd_start, s);
	if (ret != thrd_success) {
		atomic_fetch_sub_explicit(&program_threads, 1, memory_order_relaxed);
		free(s);
	}
	return ret;
}
