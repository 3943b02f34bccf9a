/* SPDX-License-Identifier: MIT */
/*
 * uspf.h - user-space page-fault locking laboratory.
 *
 * A runtime (struct uspf) owns one address-space model (an "mm"), one
 * userfaultfd and a pool of handler threads.  Memory mapped through
 * uspf_mmap() is registered with the userfaultfd; every fault on it is
 * resolved by the selected policy, which models one of the kernel's
 * fault-path locking designs.  uspf_munmap(), uspf_mprotect(),
 * uspf_mremap() and uspf_madvise() change the real mapping and the model
 * together under the model's mmap write lock, in the order the kernel would.
 *
 * All functions returning int return 0 on success and a negative errno on
 * failure; none of them sets errno.
 *
 * Thread safety: every function may be called from any thread of the
 * process, concurrently, except uspf_destroy() which must be the last call
 * on its runtime.  Memory returned by uspf_mmap() may be touched by any
 * thread except the runtime's own handler threads and fill callbacks.
 */
#ifndef USPF_H
#define USPF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

#define USPF_VERSION_MAJOR 0
#define USPF_VERSION_MINOR 1

/* Fault-path locking policies: how a fault finds its VMA and keeps it stable. */
enum uspf_policy_id {
	USPF_POLICY_SPF = 0,		/* Dufour's speculative page fault (default) */
	USPF_POLICY_MMAP_LOCK,		/* classic: the mm-wide mmap_lock held for read */
	USPF_POLICY_SPF_ADAPTIVE,	/* Arcangeli: speculate while mmap_lock is contended */
	USPF_POLICY_PERVMA_RWSEM,	/* per-VMA locks as merged in 6.4: vm_lock_seq + rwsem */
	USPF_POLICY_PERVMA_REFCNT,	/* per-VMA locks, 2025: vm_refcnt, type-safe VMA cache */
	USPF_POLICY_SPF_V12,		/* Dufour's v12 as published: spf with no abort backoff */
	USPF_NR_POLICIES
};

#define USPF_SPIN_US_DEFAULT 50

/* How handler threads take fault messages from the userfaultfd. */
enum uspf_intake {
	USPF_INTAKE_URING = 0,	/* io_uring reads, several in flight */
	USPF_INTAKE_POLL,	/* epoll + read(2) (default: the shorter round trip) */
	USPF_INTAKE_BUSY,	/* spin on non-blocking read(2): lowest latency, burns a CPU */
	USPF_NR_INTAKES
};

struct uspf_config {
	enum uspf_policy_id policy;
	unsigned int handlers;		/* handler threads; 0: one per two online CPUs (max 256) */
	enum uspf_intake intake;
	unsigned int uring_depth;	/* io_uring reads in flight per handler (1..64, default 4) */
	unsigned int read_batch;	/* fault messages per read (1..64, default 16) */
	/*
	 * Pages installed per anonymous fault (1..512, default 1: one page,
	 * as the kernel's anonymous faults): above 1, the analogue of a large
	 * anonymous folio (mTHP), never fault-around.  fault_around: the old name.
	 */
	union {
		unsigned int folio_pages;
		unsigned int fault_around;
	};
	unsigned int hz;		/* jiffies per second (10..10000, default 250) */
	bool anon_vma_at_mmap;		/* prepare anon_vma at mmap, not at first write fault */
	bool batch_wake;		/* copy with DONTWAKE, one UFFDIO_WAKE per run (default true) */
	unsigned int spf_backoff_aborts;	/* spf: aborts in one jiffy that start a backoff (1..1000000, default 8) */
	unsigned int spf_backoff_jiffies;	/* spf: jiffies the backoff lasts (0..1000, default 1; 0 = off) */
	unsigned int adaptive_window;	/* spf-adaptive: jiffies to keep speculating after contention (0..1000, default 2) */
	bool immap_reorder;		/* Yu Ma 2023: i_mmap_rwsem only around the file link (default true) */
	bool wake_after_unlock;		/* wake the faulting thread only once the policy unlocked (default false) */
	unsigned int spin_us;		/* a handler looks for the next fault this long before it sleeps (0..10000, default 50) */
	unsigned int probe_ms;		/* time a probe fault's round trip every probe_ms (0: never, default; max 60000) */
};

/* How pages of a mapping get their first contents. */
enum uspf_backing_kind {
	USPF_BACKING_ZERO = 0,	/* zero-filled pages (UFFDIO_ZEROPAGE) */
	USPF_BACKING_PATTERN,	/* uspf_pattern_fill(generation, page offset) */
	USPF_BACKING_FILE,	/* pread(2) from a file; past EOF reads zero */
	USPF_BACKING_FILL,	/* a user callback */
	USPF_NR_BACKINGS
};

/*
 * A fill callback writes len bytes of content for byte offset `offset` of
 * the mapping's backing object (offset = page offset * page size) into dst.
 * It runs on a handler thread: it must not touch memory mapped by uspf.
 * Return 0, or a negative errno: the faulting thread then gets SIGBUS.
 */
typedef int (*uspf_fill_fn)(void *arg, void *dst, uint64_t offset, size_t len);

struct uspf_backing {
	enum uspf_backing_kind kind;
	union {
		struct { uint64_t generation; } pattern;
		struct { int fd; off_t offset; } file;	/* offset: page aligned */
		struct { uspf_fill_fn fn; void *arg; } fill;
	};
};

/* Counters, named after the kernel's vmstat events where one exists. */
enum uspf_counter {
	USPF_C_FAULTS = 0,		/* fault messages handled */
	USPF_C_PAGES,			/* pages installed (copy or zeropage) */
	/* spf (and spf-v12), named as the v12 series' vmstat event and trace points. */
	USPF_C_SPF_ATTEMPT,		/* "spf_attempt": speculative attempts */
	USPF_C_SPF_SUCCESS,		/* "speculative_pgfault": faults committed speculatively */
	USPF_C_SPF_ABORT_NO_VMA,	/* "spf_abort_no_vma": no VMA at the address */
	USPF_C_SPF_ABORT_SEQ_ODD,	/* "spf_vma_changed_seq_odd": a writer is inside */
	USPF_C_SPF_ABORT_NOT_ANON,	/* "spf_vma_notsup": a VMA kind the path does not serve */
	USPF_C_SPF_ABORT_NO_ANON_VMA,	/* "spf_vma_noanon": anon_vma not prepared yet */
	USPF_C_SPF_ABORT_OUTSIDE,	/* "spf_vma_changed_outside": address outside the snapshot */
	USPF_C_SPF_ABORT_SNAPSHOT,	/* "spf_vma_changed_snapshot": changed while snapshotting */
	USPF_C_SPF_ABORT_VMA_CHANGED,	/* "spf_vma_changed": revalidation at the commit failed */
	USPF_C_SPF_BACKOFF,		/* speculation skipped: abort storm in this jiffy */
	USPF_C_MMAP_LOCK_FALLBACK,	/* speculative faults finished under mmap_lock */
	USPF_C_MMAP_LOCK_FAULT,		/* faults handled under mmap_lock (incl. fallbacks) */
	USPF_C_ANON_VMA_PREPARE,	/* anon_vma prepared by a fault */
	USPF_C_RETRY,			/* resolves retried after EAGAIN */
	USPF_C_EEXIST,			/* page already present: woken */
	USPF_C_ENOENT,			/* range left the VMA: woken */
	USPF_C_ESRCH,			/* address space gone */
	USPF_C_BAD_AREA,		/* no VMA under mmap_lock: woken (SIGSEGV on refault) */
	USPF_C_FILL_ERROR,		/* backing could not fill: SIGBUS sent */
	USPF_C_COPY_ERROR,		/* other resolve errors: woken */
	USPF_C_WAKE,			/* UFFDIO_WAKE calls */
	USPF_C_FOLIO_EXTRA_PAGES,	/* pages installed beyond the faulting one (folio_pages > 1) */
	USPF_C_INTAKE_READS,		/* reads (io_uring completions or read(2)) with messages */
	USPF_C_INTAKE_ERRORS,		/* failed or interrupted reads, resubmitted */
	USPF_C_MMAP_LOCK_CONTENDED,	/* mmap_lock acquisitions that had to wait */
	USPF_C_VMA_WRITES,		/* vm_write_begin() calls by mapping changes */
	USPF_C_VMA_LOCK_SUCCESS,	/* per-VMA: faults done under the VMA lock */
	USPF_C_VMA_LOCK_ABORT,		/* per-VMA: lock_vma_under_rcu() failed: mmap_lock path */
	USPF_C_VMA_LOCK_RETRY,		/* per-VMA: the fault asked for a retry under mmap_lock */
	USPF_C_VMA_LOCK_MISS,		/* per-VMA: the VMA was detached after the walk: walk again */
	USPF_C_VMA_LOCK_WRONG_MM,	/* pervma-refcnt: the VMA was reused by another mm */
	USPF_C_SPF_CONTENDED,		/* spf-adaptive: mmap_lock found held: contention recorded */
	USPF_C_SPF_WINDOW,		/* spf-adaptive: speculated within the contention window */
	USPF_C_VMA_WRITE_WAITS,		/* vma_start_write() waited for readers to leave */
	USPF_C_I_MMAP_LOCKS,		/* i_mmap_rwsem write acquisitions by this mm */
	USPF_C_I_MMAP_HOLD_NS,		/* ... and the nanoseconds it was held */
	USPF_C_I_MMAP_CONTENDED,	/* ... that had to wait */
	USPF_C_FAULTS_ENDED,		/* fault messages whose handling is over (== faults when idle) */
	USPF_C_MMAP_LOCK_SPUN,		/* mmap_lock acquisitions that spun on a writer and got it awake */
	/* spf-adaptive's own: its speculation is not Dufour's, its counts are not spf's. */
	USPF_C_ADAPTIVE_ATTEMPT,	/* speculative attempts */
	USPF_C_ADAPTIVE_SUCCESS,	/* faults committed speculatively */
	USPF_C_ADAPTIVE_ABORT_NO_VMA,	/* no VMA at the address */
	USPF_C_ADAPTIVE_ABORT_NOT_ANON,	/* a VMA kind the path does not serve (file) */
	USPF_C_ADAPTIVE_ABORT_NO_ANON_VMA,	/* anon_vma not prepared yet */
	USPF_C_ADAPTIVE_ABORT_OUTSIDE,	/* address outside the VMA snapshot */
	USPF_C_ADAPTIVE_ABORT_VMA_CHANGED,	/* the by-hand revalidation failed */
	USPF_C_INTAKE_SPIN_HITS,	/* handler spins that found the next fault */
	USPF_C_INTAKE_SPIN_MISSES,	/* ... that ran out of budget: the handler slept */
	USPF_C_INTAKE_SPIN_NS,		/* ... and the nanoseconds spent spinning */
	USPF_C_INTAKE_SPIN_BACKOFFS,	/* spinning paused: the spinner was preempted (CPUs wanted) */
	USPF_C_HANDLE_NS,		/* nanoseconds handlers spent on faults (message read -> ended) */
	USPF_C_ROUND_TRIPS,		/* round trips timed by the probe (probe_ms) */
	USPF_C_ROUND_TRIP_NS,		/* ... their nanoseconds: touch -> back in user space */
	USPF_NR_COUNTERS
};

#define USPF_C_FAULT_AROUND_PAGES USPF_C_FOLIO_EXTRA_PAGES	/* the old name */

/* Handling-time histogram: log2 buckets of nanoseconds with 8 linear sub-buckets. */
#define USPF_HIST_SUB 8
#define USPF_HIST_BUCKETS (64 * USPF_HIST_SUB)

struct uspf_stats {
	uint64_t counters[USPF_NR_COUNTERS];
	uint64_t hist[USPF_HIST_BUCKETS];	/* message received -> fault resolved, ns */
	enum uspf_policy_id policy;
	enum uspf_intake intake;		/* the intake actually in use */
	unsigned int handlers;
	bool user_mode_only;			/* the userfaultfd serves user-mode faults only */
	uint64_t vmas;				/* VMAs in the model now */
};

struct uspf;

void uspf_config_init(struct uspf_config *cfg);
int uspf_config_validate(const struct uspf_config *cfg, char *msg, size_t msglen);

int uspf_create(struct uspf **out, const struct uspf_config *cfg);
void uspf_destroy(struct uspf *u);

int uspf_mmap(struct uspf *u, void *addr, size_t len, int prot, int flags,
	      const struct uspf_backing *backing, void **out);
int uspf_munmap(struct uspf *u, void *addr, size_t len);
int uspf_mprotect(struct uspf *u, void *addr, size_t len, int prot);
int uspf_mremap(struct uspf *u, void *old_addr, size_t old_len, size_t new_len,
		int flags, void *new_addr, void **out);
int uspf_madvise(struct uspf *u, void *addr, size_t len, int advice);

int uspf_stats(struct uspf *u, struct uspf_stats *st);
const char *uspf_counter_name(enum uspf_counter c);
uint64_t uspf_stats_percentile(const struct uspf_stats *st, double pct);

const char *uspf_policy_name(enum uspf_policy_id p);
int uspf_policy_from_name(const char *name, enum uspf_policy_id *out);
const char *uspf_intake_name(enum uspf_intake i);
int uspf_intake_from_name(const char *name, enum uspf_intake *out);

/* The pattern backing's content: a function of (generation, page offset). */
void uspf_pattern_fill(uint64_t generation, uint64_t pgoff, void *page);
bool uspf_pattern_check(uint64_t generation, uint64_t pgoff, const void *page);

#ifdef __cplusplus
}
#endif
#endif
