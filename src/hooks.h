/* SPDX-License-Identifier: MIT */
/*
 * hooks.h - what `uspf bench`, `uspf torture` and the tests reach beyond
 * uspf.h: the bench's raw reference, bug injection and debug checks.
 */
#ifndef USPF_HOOKS_H
#define USPF_HOOKS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mm/inject.h"
#include "mm/mm.h"

struct uspf;

/*
 * For `uspf bench` only: faults in [start, end) - zero-backed memory the
 * caller mapped with uspf_mmap() - are resolved by the handlers with no
 * VMA lookup, no lock and no PTL: the same intake, wakes, fault-around
 * window and copy as a policy, and nothing else.  What a policy costs on
 * top is its protocol.  Set before any fault there; end = 0 turns it off.
 */
void runtime_set_raw(struct uspf *u, unsigned long start, unsigned long end);

struct uspf_inject_info {
	const char *name;		/* as given to --inject */
	const char *policy;		/* the policy whose protocol it breaks */
	const char *what;
	/*
	 * Torture options that make its race likely (NULL: the defaults):
	 * a narrower workload concentrates the writers on the step it breaks.
	 */
	const char *const *torture_args;
};

extern const struct uspf_inject_info inject_info[NR_INJECTIONS];

/* -EINVAL for an unknown name. */
int inject_from_name(const char *name, enum uspf_inject *out);

/*
 * Stall points (mm/mm.h enum stall_point).  A test's hook is called at
 * every point a fault path passes with debug checks on, and may hold the
 * thread there (NULL: none).  The torture arms a mask of points instead,
 * at which threads stall at random (0: all of them).
 */
void runtime_set_stall_hook(struct uspf *u, stall_fn fn, void *arg);
void runtime_arm_stalls(struct uspf *u, uint64_t mask);
/* -EINVAL for an unknown name. */
int stall_point_from_name(const char *name, enum stall_point *out);

/* Switch injections on (a mask of 1 << enum uspf_inject) and debug checks. */
void runtime_set_debug(struct uspf *u, uint64_t inject_mask, bool debug_checks);
/*
 * Debug: make the whole shared model read-only - the runtime and mm
 * (all but the PTLs), every VMA, anon_vma and index node - or writable
 * again.  A fault path that writes a shared cacheline other than the PTL
 * then dies with SIGSEGV: Lespinasse's "a single atomic per VMA cost 62%
 * at 48 threads", made checkable.  No writer may run meanwhile.
 */
int runtime_protect_model(struct uspf *u, bool read_only);

/*
 * Check the model's state invariants now (debug checks on), then return
 * the violations seen so far; the first one's description in msg.
 */
uint64_t runtime_violations(struct uspf *u, char *msg, size_t len);

#endif
