/* SPDX-License-Identifier: MIT */
/*
 * preload_threads.c - the process ends when the program's last thread does.
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
 */
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

#include "preload.h"

#define EXPORT __attribute__((visibility("default")))

#define MARK_RUNNING	((void *)1)
#define MARK_ENDING	((void *)2)

typedef int (*create_fn)(pthread_t *, const pthread_attr_t *, void *(*)(void *), void *);

static create_fn real_create_p;
static pthread_key_t key;
static bool key_ok;
static pthread_once_t key_once = PTHREAD_ONCE_INIT;
static atomic_long program_threads = 1;		/* the main thread */

static void thread_gone(void *v)
{
	if (v == MARK_RUNNING) {
		/* Once more, in the next round: the program's destructors first. */
		pthread_setspecific(key, MARK_ENDING);
		return;
	}
	if (atomic_fetch_sub_explicit(&program_threads, 1, memory_order_acq_rel) == 1 &&
	    preload_owner())
		exit(0);
}

static void key_init(void)
{
	key_ok = !pthread_key_create(&key, thread_gone);
	real_create_p = (create_fn)dlsym(RTLD_NEXT, "pthread_create");
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
