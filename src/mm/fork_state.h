/* SPDX-License-Identifier: MIT */
/*
 * mm/fork_state.h - where the statics that fork handlers write live.
 *
 * After fork() every private page is shared copy-on-write, and the first
 * write to it - in the parent or the child - is a page fault.  The fork
 * handlers (preload/preload.c, preload/malloc.c, mm/call_rcu.c, mm/kmem.c,
 * preload/threads.c) write their locks and flags at every fork: gathered
 * in one section they cost one fault on each side instead of one per page
 * they happened to land on (BENCHMARKS.md, "What a process costs").
 * Each on its own cache line: some (the callback queue's lock) are hot.
 */
#ifndef USPF_FORK_STATE_H
#define USPF_FORK_STATE_H

#define __fork_state __attribute__((section("uspf_fork_state"), aligned(64)))

#endif
