/* SPDX-License-Identifier: MIT */
/*
 * preload.h - libuspf-preload.so: uspf injected into an unmodified program.
 *
 * preload.c interposes the mmap family and owns the process's runtime
 * (created lazily, configured from USPF_* variables); preload/malloc.c is
 * a malloc family whose memory comes from uspf mappings.  This header is
 * what the two share.
 *
 * Re-entry: the runtime's own threads, and any call made while the
 * runtime itself is inside libc or liburcu, must never be served uspf
 * memory (a handler that faulted on it would wait for itself).  Such
 * calls see preload_bypass() true and go straight to the kernel.
 */
#ifndef USPF_PRELOAD_H
#define USPF_PRELOAD_H

#include <stdbool.h>
#include <stddef.h>

#include "mm/kmem.h"	/* uspf_runtime_thread */

struct uspf;

/* The runtime, created at the first call (NULL: uspf is off for this process). */
struct uspf *preload_runtime(void);

/*
 * True on runtime threads and while the runtime is inside a library call.
 * Inline: the malloc family tests it on every call.  The flags are
 * preload.c's (in_runtime, marked_runtime; hidden, not exported) and
 * handler.c's uspf_runtime_thread.
 */
extern __thread int in_runtime __attribute__((tls_model("initial-exec"), visibility("hidden")));
extern __thread bool marked_runtime __attribute__((tls_model("initial-exec"), visibility("hidden")));

static inline bool preload_bypass(void)
{
	return in_runtime | marked_runtime | uspf_runtime_thread;
}

/* Mark the calling thread as the runtime's own for good (handler threads). */
void preload_mark_runtime_thread(void);

/*
 * Bracket a call into the runtime from an interposed function: nested
 * interposed calls (libc, liburcu) bypass uspf, and signals wait until the
 * runtime's locks are released (a handler that faulted on uspf memory
 * while its own thread held them would wait for itself).
 */
void preload_enter(void);
void preload_exit(void);

/* True when ra (a return address) lies in liburcu, liburing or this library. */
bool preload_caller_bypass(const void *ra);

/* USPF_MIN_SIZE: the smallest mapping uspf takes (and heap it starts for). */
size_t preload_min_size(void);

/* USPF_HEAP: serve malloc from uspf mappings (default) or the system allocator. */
bool preload_heap_enabled(void);

/* ---- for preload/fd.c and preload/threads.c (preload.c) ---- */
#include <signal.h>
/* The live runtime, or NULL; never creates one. */
struct uspf *preload_live(void);
/* True in the process whose runtime this is (false in a vfork() child). */
bool preload_owner(void);
/* Serialise runtime changes made from program threads; signals blocked. */
void preload_lock(sigset_t *old);
void preload_unlock(const sigset_t *old);
/* One line on stderr (with errno's text), then abort(). */
void preload_die(const char *why) __attribute__((noreturn));
/* USPF_STATS's descriptor (-1: none), and moving it to another number. */
int preload_stats_fd(void);
void preload_stats_fd_move(void);

/* preload/fd.c: close, close_range, closefrom, dup2, dup3. */
void preload_fd_init(void);
void preload_fd_fork_child(void);

/* preload/threads.c: pthread_create; the last program thread ends the process. */
void preload_threads_init(void);
void preload_threads_fork_child(void);

/* preload/uffd.c: the program's own userfaultfd takes its ranges from uspf. */
void preload_uffd_init(void);
/* The first run of uspf VMAs in [from, end), clipped (preload.c). */
bool preload_next_owned(struct uspf *u, unsigned long from, unsigned long end,
			unsigned long *s, unsigned long *e);

/* Raw mappings for the allocator's own metadata and for bypassed callers. */
void *preload_raw_mmap(size_t len);
void preload_raw_munmap(void *p, size_t len);

#endif
