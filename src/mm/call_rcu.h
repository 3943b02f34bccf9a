/* SPDX-License-Identifier: MIT */
/*
 * mm/call_rcu.h - the model's call_rcu() and rcu_barrier() (kernel/rcu/tree.c).
 *
 * Callbacks run on one worker thread per process after a grace period of
 * urcu-bp (synchronize_rcu()), in the order they were queued.
 *
 * Why not liburcu's own call_rcu: its fork handlers, which a program that
 * forks needs, pause the worker with 1 ms poll() loops in the parent and
 * start a new worker thread in every child - measured at ~12 ms per fork
 * of a shell under `uspf run` (a loop of 500 subshells: 0.19 s natively,
 * 6.3 s), and a thread in every child that only execs.  This worker needs
 * nothing at fork: the parent's lock is held across fork() so the child's
 * copy is consistent, and a child starts a worker of its own only when it
 * creates a runtime (mm_call_rcu_start()).  A child forgets callbacks
 * queued in its parent: they free the parent's objects, which the child
 * never uses again.
 *
 * mm_call_rcu() may be called from any thread, under any runtime lock but
 * the callbacks' own (a callback may take kmem locks).  mm_rcu_barrier()
 * waits until every callback queued before it has run; never call it from
 * a callback or inside a read-side section.
 */
#ifndef USPF_CALL_RCU_H
#define USPF_CALL_RCU_H

#include <urcu-bp.h>

/* Register the fork handlers (mm_call_rcu_start() does too). */
void mm_call_rcu_atfork(void);
/* Start this process's worker now (uspf_create): not in the middle of a writer. */
int mm_call_rcu_start(void);
void mm_call_rcu(struct rcu_head *head, void (*func)(struct rcu_head *head));
void mm_rcu_barrier(void);

#endif
