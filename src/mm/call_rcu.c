/* SPDX-License-Identifier: MIT */
/*
 * mm/call_rcu.c - callbacks after a grace period, on one worker per process.
 */
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <unistd.h>

#include "mm/call_rcu.h"
#include "mm/fork_state.h"
#include "mm/kmem.h"

static __fork_state pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static __fork_state pthread_cond_t more = PTHREAD_COND_INITIALIZER;	/* worker: callbacks queued */
static __fork_state pthread_cond_t ran = PTHREAD_COND_INITIALIZER;	/* barrier: callbacks run */
static __fork_state struct rcu_head *head;
static __fork_state struct rcu_head **tail = &head;
static __fork_state uint64_t queued;
static __fork_state uint64_t done;
static __fork_state pid_t worker_pid;				/* the process whose worker runs */
static __fork_state bool used;					/* lock ever taken in this process */
static __fork_state bool fork_held;					/* fork_prepare() took it */

/* rcu_head's queue node is a plain next pointer here. */
static struct rcu_head **next_of(struct rcu_head *h)
{
	return (struct rcu_head **)&h->next.next;
}

static void *worker(void *arg)
{
	struct rcu_head *list, *next;
	uint64_t n;

	uspf_runtime_thread = true;	/* what callbacks allocate is never uspf memory */
	pthread_setname_np(pthread_self(), "uspf-rcu");
	for (;;) {
		pthread_mutex_lock(&lock);
		while (!head)
			pthread_cond_wait(&more, &lock);
		list = head;
		head = NULL;
		tail = &head;
		n = queued - done;
		pthread_mutex_unlock(&lock);

		synchronize_rcu();
		for (; list; list = next) {
			next = *next_of(list);
			list->func(list);
		}

		pthread_mutex_lock(&lock);
		done += n;
		pthread_cond_broadcast(&ran);
		pthread_mutex_unlock(&lock);
	}
	return NULL;
}

/* Never used (no runtime here): nothing to hold, no page written at fork. */
static void fork_prepare(void)
{
	fork_held = __atomic_load_n(&used, __ATOMIC_ACQUIRE);
	if (fork_held)
		pthread_mutex_lock(&lock);
}

static void fork_parent(void)
{
	if (fork_held)
		pthread_mutex_unlock(&lock);
}

/* No worker here: the parent's queue is forgotten, the next start makes one. */
static void fork_child(void)
{
	pthread_mutex_init(&lock, NULL);
	pthread_cond_init(&more, NULL);
	pthread_cond_init(&ran, NULL);
	head = NULL;
	tail = &head;
	queued = done = 0;
	worker_pid = 0;
}

/* liburcu-bp's fork handlers (<urcu-bp.h> maps the short names to these). */
extern void urcu_bp_before_fork(void);
extern void urcu_bp_after_fork_parent(void);
extern void urcu_bp_after_fork_child(void);

/*
 * Ours, then urcu-bp's (liburcu's README, "Interaction with fork()"): a
 * thread inside synchronize_rcu() at fork() - this worker, often - would
 * leave the child's grace-period lock held for ever, and the child's
 * first grace period would never end.  Prepare runs in reverse: urcu-bp's
 * locks first, the queue's inside them, as the worker takes them.  Once
 * per process: under `uspf run` the preload module registers urcu-bp's
 * itself, in its own order, and says so by exporting
 * uspf_preload_fork_hooks (a program linked with libuspf then finds it).
 */
static void atfork_once(void)
{
	pthread_atfork(fork_prepare, fork_parent, fork_child);
	if (!dlsym(RTLD_DEFAULT, "uspf_preload_fork_hooks"))
		pthread_atfork(urcu_bp_before_fork, urcu_bp_after_fork_parent,
			       urcu_bp_after_fork_child);
}

/* Called with lock held. */
static int start_locked(void)
{
	sigset_t all, old;
	pthread_t t;
	int ret;

	if (worker_pid == getpid())
		return 0;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);	/* the worker inherits: no signal runs there */
	ret = pthread_create(&t, NULL, worker, NULL);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (ret)
		return -ret;
	pthread_detach(t);
	worker_pid = getpid();
	return 0;
}

void mm_call_rcu_atfork(void)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;

	pthread_once(&once, atfork_once);
}

int mm_call_rcu_start(void)
{
	int ret;

	mm_call_rcu_atfork();
	__atomic_store_n(&used, true, __ATOMIC_RELEASE);
	pthread_mutex_lock(&lock);
	ret = start_locked();
	pthread_mutex_unlock(&lock);
	return ret;
}

void mm_call_rcu(struct rcu_head *h, void (*func)(struct rcu_head *h))
{
	h->func = func;
	*next_of(h) = NULL;
	__atomic_store_n(&used, true, __ATOMIC_RELEASE);
	pthread_mutex_lock(&lock);
	/* A runtime started the worker; without one (tests of the model alone) start it now. */
	if (worker_pid != getpid() && start_locked()) {
		pthread_mutex_unlock(&lock);
		synchronize_rcu();	/* no thread to be had: wait here instead */
		func(h);
		return;
	}
	*tail = h;
	tail = next_of(h);
	queued++;
	pthread_cond_signal(&more);
	pthread_mutex_unlock(&lock);
}

void mm_rcu_barrier(void)
{
	uint64_t target;

	__atomic_store_n(&used, true, __ATOMIC_RELEASE);
	pthread_mutex_lock(&lock);
	target = queued;
	while (done < target)
		pthread_cond_wait(&ran, &lock);
	pthread_mutex_unlock(&lock);
}
