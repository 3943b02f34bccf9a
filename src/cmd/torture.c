/* SPDX-License-Identifier: MIT */
/*
 * torture.c - `uspf torture`, in the manner of rcutorture.
 *
 * Each of --mms runtimes (an address-space model with its own userfaultfd;
 * all of them share the process-wide VMA cache, so with a type-safe cache
 * a VMA freed by one mm is really reused by another) holds --slots slots
 * of SLOT_PAGES pages.  A slot is a pattern-backed mapping with a
 * generation of its own, and a placeholder mapping it can move onto.
 *
 * Writers pick a random slot of a random mm and change it through the API:
 * munmap and map again with a new generation, MAP_FIXED over it, mprotect
 * of the whole or a part to PROT_NONE or PROT_READ and back (splits and
 * merges), MADV_DONTNEED, mremap onto its placeholder; or they map and
 * unmap short-lived extra mappings (VMA churn that feeds the cache's
 * reuse), touching and checking each.  A slot's (location, generation) is
 * published seqlock style: its seq is odd while a writer changes it.
 *
 * Faulting threads read or write a random page of a random slot and check
 * the whole page against uspf_pattern_fill(generation, page).  When seq
 * did not change across the access, the page must match exactly: stale
 * data from a commit that missed a writer shows here, and so does a
 * SIGSEGV on a slot nobody was changing.  An access that overlapped a
 * writer is followed by a revisit of the same page: a fault that raced the
 * writer is exactly the one a broken protocol resolves with stale data,
 * and its page keeps that data until the slot changes again.  A write is a compare-and-swap of
 * the thread's own word of the page, from a value of the slot's generation
 * to a tagged value of the same generation, then read back: a thread whose
 * slot moved meanwhile writes nothing into memory that now belongs to
 * someone else.
 *
 * Ownership: after munmap or a move, the hole may be taken by anyone -
 * another mm's extra mapping, the runtime's own raw mmaps, libc.  Refills
 * use MAP_FIXED_NOREPLACE, and a slot whose place was taken is mapped
 * again wherever the kernel puts it; nothing is ever mapped with MAP_FIXED
 * over memory the torture does not own.  And since a faulting thread with
 * a stale address may touch whatever the kernel hands out next, every
 * mapping made while the threads run carries a hint (or is fixed): the
 * runtime keeps such a mapping PROT_NONE until it is registered, where an
 * unhinted one is born accessible, and a touch before its registration
 * would get a kernel zero page that stays.
 *
 * A watchdog thread polls the runtimes' invariant checks (inject.h) every
 * 100 ms and fails the run on the first violation.  It also watches every
 * thread's current access or operation: one in progress longer than
 * --watchdog seconds is a lost fault, reported at once, and the process
 * exits (_exit(1)) because that thread can never be woken.  At the end the
 * runtimes are destroyed and the VMA and anon_vma caches must be back
 * where they were before the first runtime was created.
 */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "mm/call_rcu.h"
#include "cmd/cli.h"
#include "hooks.h"
#include "cmd/torture.h"
#include "uspf.h"
#include "mm/vma.h"

#define SLOT_PAGES	16
#define SLOT_SIZE	(SLOT_PAGES * PAGE_SIZE)
#define WORDS		(PAGE_SIZE / sizeof(uint64_t))
#define MAX_THREADS	256		/* faulting thread i writes word i of a page */
#define MAX_WRITERS	64
#define MAX_MMS		16
#define MAX_SLOTS	1024
#define MAX_EXTRAS	8		/* live extra mappings per writer */
#define EXTRA_WORD	(WORDS - 1)	/* the word a writer writes in its extras */
#define HISTORY		8		/* past generations per slot, to name stale data */
#define WRITE_PCT	30		/* accesses that are writes */
#define TAG_MASK	(~0xffffffull)	/* a written word: generation tag | counter */
#define TICK_NS		100000000ull	/* the watchdog's period: 100 ms */

struct torture_opts {
	enum uspf_policy_id policy;
	bool policy_set;
	double seconds;
	uint64_t seed;
	unsigned int threads;
	unsigned int writers;
	unsigned int mms;
	unsigned int slots;
	double watchdog;
	uint64_t inject_mask;
	unsigned int ops_mask;		/* 1 << index in op_mix[]: what writers do */
	uint64_t stall_mask;		/* 1 << enum stall_point: where threads stall (0: random) */
	bool stall_random;		/* --stall random: a subset drawn from the seed */
	bool debug_checks;		/* the runtimes' invariant checks (default on) */
	bool files;			/* --files: half the refills map a file */
	bool quiet;
	struct uspf_config cfg;
};

enum op {
	OP_REMAP,		/* munmap, then MAP_FIXED_NOREPLACE with a new generation */
	OP_RELOCATE,		/* (counted only) the refill's place was taken: mapped elsewhere */
	OP_MAP_OVER,		/* MAP_FIXED over the slot, new generation */
	OP_MPROTECT,		/* the whole slot PROT_NONE or PROT_READ, and back */
	OP_MPROTECT_PART,	/* a half or a random part, and back: split, then merge */
	OP_DONTNEED,		/* MADV_DONTNEED of the whole or a part: same generation */
	OP_MREMAP,		/* move onto the placeholder; a new placeholder where it was */
	OP_MREMAP_SPLIT,	/* (counted only) not moved: the slot is split in VMAs */
	OP_PLACEHOLDER,		/* (counted only) a placeholder mapped where the kernel chose */
	OP_EXTRA_MAP,		/* a short-lived extra mapping, touched and checked */
	OP_EXTRA_UNMAP,
	OP_REUSE,		/* unmap; another mm maps the range; unmapped; refilled */
	NR_OPS
};

static const char *const op_names[NR_OPS] = {
	[OP_REMAP] = "remap",
	[OP_RELOCATE] = "relocate",
	[OP_MAP_OVER] = "map-over",
	[OP_MPROTECT] = "mprotect",
	[OP_MPROTECT_PART] = "mprotect-part",
	[OP_DONTNEED] = "dontneed",
	[OP_MREMAP] = "mremap",
	[OP_MREMAP_SPLIT] = "mremap-split",
	[OP_PLACEHOLDER] = "placeholder",
	[OP_EXTRA_MAP] = "extra-map",
	[OP_EXTRA_UNMAP] = "extra-unmap",
	[OP_REUSE] = "reuse",
};

/* What a writer picks, and how often (relative weights); --ops selects by name. */
static const struct { enum op op; const char *name; unsigned int weight; } op_mix[] = {
	{ OP_REMAP, "remap", 3 },
	{ OP_MAP_OVER, "map-over", 2 },
	{ OP_MPROTECT, "mprotect", 2 },
	{ OP_MPROTECT_PART, "mprotect-part", 3 },
	{ OP_DONTNEED, "dontneed", 3 },
	{ OP_MREMAP, "mremap", 2 },
	{ OP_EXTRA_MAP, "extra", 4 },	/* map or unmap an extra */
	{ OP_REUSE, "reuse", 2 },
};

#define NR_OP_MIX (sizeof(op_mix) / sizeof(op_mix[0]))

struct slot {
	_Atomic uint64_t seq;		/* odd while a writer changes the slot */
	_Atomic uint64_t gen;		/* its pattern generation */
	_Atomic uintptr_t loc;		/* where it lives */
	_Atomic uint64_t hist[HISTORY];	/* earlier generations, newest first */
	_Atomic uint64_t last_ops;	/* the last 8 operations, one byte each, newest low */
	pthread_mutex_t lock;		/* one writer at a time */
	uintptr_t alt;			/* writer only: placeholder to move onto, 0: none */
};

struct tmm {
	struct uspf *u;
	struct slot *slots;
};

struct extra {
	uintptr_t addr;
	size_t len;
	unsigned int mm;
	_Atomic uint64_t gen;		/* read by other threads naming stale data */
};

struct worker {
	struct torture *t;
	pthread_t thread;
	unsigned int id;		/* faulting threads 0..threads-1, then writers */
	bool writer;
	uint64_t rng;
	uint64_t wseq;			/* counter in the words this thread writes */
	unsigned int revisit;		/* accesses left in a revisit chain; 0: none */
	unsigned int rv_mm, rv_slot, rv_page;

	/* Published for the watchdog. */
	_Atomic uint64_t busy_since;	/* ns; 0: not inside an access or operation */
	_Atomic uintptr_t busy_addr;
	_Atomic(const char *) busy_what;

	/* Statistics, written by this thread only. */
	_Atomic uint64_t accesses;
	_Atomic uint64_t checked;	/* the slot was stable: compared exactly */
	_Atomic uint64_t unstable;	/* the slot changed during the access */
	_Atomic uint64_t tolerated;	/* SIGSEGV/SIGBUS while the slot changed */
	_Atomic uint64_t writes;
	_Atomic uint64_t ops[NR_OPS];

	/* Writers: extra mappings. */
	struct extra extras[MAX_EXTRAS];
	_Atomic unsigned int nr_extras;
	uintptr_t last_unmapped;
} __attribute__((aligned(64)));

#define TORTURE_FILES 4

struct torture {
	struct torture_opts o;
	struct tmm mm[MAX_MMS];
	unsigned int nr_mms;		/* created so far */
	struct worker *workers;		/* set up before the watchdog starts */
	unsigned int nr_workers;
	unsigned int nr_started;	/* main thread only */
	_Atomic uint64_t next_gen;
	/* --files: memfds holding one generation's pattern each, shared by every mm. */
	int file_fd[TORTURE_FILES];
	uint64_t file_gen[TORTURE_FILES];
	atomic_bool stop;
	uint64_t start_ns;

	/* The first failure wins; later ones are only counted. */
	atomic_bool failed;
	atomic_bool fail_ready;
	_Atomic uint64_t failures;
	char fail_msg[768];

	/* The watchdog. */
	pthread_t watchdog;
	atomic_bool watchdog_stop;
	pthread_mutex_t poll_lock;
	bool poll_runtimes;		/* under poll_lock: the runtimes may be polled */
	_Atomic uint64_t phase_since;	/* teardown: when the current step began */
	_Atomic(const char *) phase;
};

/* ---- small helpers ---- */

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static uint64_t mix64(uint64_t x)
{
	x ^= x >> 30;
	x *= 0xbf58476d1ce4e5b9ull;
	x ^= x >> 27;
	x *= 0x94d049bb133111ebull;
	x ^= x >> 31;
	return x;
}

/* xorshift64*, one state per thread, seeded from --seed and the thread index. */
static uint64_t rnd(uint64_t *s)
{
	uint64_t x = *s;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*s = x;
	return x * 0x2545f4914f6cdd1dull;
}

static unsigned int rnd_below(uint64_t *s, unsigned int n)
{
	return (unsigned int)(((rnd(s) >> 32) * n) >> 32);
}

static void bump(_Atomic uint64_t *c)
{
	atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + 1,
			      memory_order_relaxed);
}

static uint64_t get(_Atomic uint64_t *c)
{
	return atomic_load_explicit(c, memory_order_relaxed);
}

static bool stopping(struct torture *t)
{
	return atomic_load_explicit(&t->stop, memory_order_relaxed);
}

/* The tag of words written into page pgoff of generation gen. */
static uint64_t tag_of(uint64_t gen, uint64_t pgoff)
{
	return mix64(gen * 0x9e3779b97f4a7c15ull + pgoff + 0x7461676761676167ull) & TAG_MASK;
}

/* ---- failures ---- */

static void torture_fail(struct torture *t, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void torture_fail(struct torture *t, const char *fmt, ...)
{
	va_list ap;

	atomic_fetch_add(&t->failures, 1);
	atomic_store(&t->stop, true);
	if (atomic_exchange(&t->failed, true))
		return;
	va_start(ap, fmt);
	vsnprintf(t->fail_msg, sizeof(t->fail_msg), fmt, ap);
	va_end(ap);
	atomic_store_explicit(&t->fail_ready, true, memory_order_release);
}

/* The first failure's message, once its writer has finished it. */
static const char *first_failure(struct torture *t)
{
	uint64_t deadline = now_ns() + 1000000000ull;

	while (!atomic_load_explicit(&t->fail_ready, memory_order_acquire)) {
		if (now_ns() > deadline)
			return "(a failure whose description was not finished)";
		sched_yield();
	}
	return t->fail_msg;
}

/* ---- touching memory that may go away ---- */

/*
 * A SIGSEGV or SIGBUS while a thread is inside read_page() or cas_word()
 * jumps back there; anywhere else it is a real crash.  sigsetjmp(jb, 0)
 * saves no signal mask, so an access costs no sigprocmask; the handler is
 * installed with SA_NODEFER, and after a jump the signals are unblocked
 * anyway (segv_caught()), since a sanitizer's own handler may run the
 * program's with them blocked - and a SIGSEGV that arrives blocked kills.
 */
static __thread sigjmp_buf *segv_jmp;

static void segv_caught(void)
{
	sigset_t set;

	segv_jmp = NULL;
	sigemptyset(&set);
	sigaddset(&set, SIGSEGV);
	sigaddset(&set, SIGBUS);
	pthread_sigmask(SIG_UNBLOCK, &set, NULL);
}

static void on_segv(int sig, siginfo_t *si, void *uc)
{
	static const char hex[] = "0123456789abcdef";
	char msg[] = "uspf torture: SIGSEGV/SIGBUS outside a checked access, at 0x0000000000000000\n";
	uintptr_t a = (uintptr_t)si->si_addr;
	char *p = msg + sizeof(msg) - 2;
	int i;

	(void)uc;
	if (segv_jmp)
		siglongjmp(*segv_jmp, 1);
	/* A real crash: say where (async-signal-safe), then die of it. */
	for (i = 0; i < 16; i++, a >>= 4)
		*--p = hex[a & 15];
	if (write(STDERR_FILENO, msg, sizeof(msg) - 1) < 0)
		(void)0;
	signal(sig, SIG_DFL);	/* the access faults again, and kills */
}

static int install_segv_handler(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = on_segv;
	sa.sa_flags = SA_SIGINFO | SA_NODEFER;
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGSEGV, &sa, NULL) || sigaction(SIGBUS, &sa, NULL))
		return -errno;
	return 0;
}

/*
 * The two functions that touch memory that may go away are not
 * instrumented by ThreadSanitizer: its atomic wrappers would take the
 * fault inside its runtime, and jumping out of there breaks it.  Nothing
 * is lost: their accesses race only with the kernel (UFFDIO_COPY, zaps),
 * which TSan cannot see, and each thread writes only its own word.
 */
#define NO_TSAN __attribute__((no_sanitize_thread))

/* Copy a page word by word; false if it faulted instead. */
NO_TSAN static bool read_page(const uint64_t *page, uint64_t *dst)
{
	sigjmp_buf jb;
	unsigned int i;

	if (sigsetjmp(jb, 0)) {
		segv_caught();
		return false;
	}
	segv_jmp = &jb;
	for (i = 0; i < WORDS; i++)
		dst[i] = __atomic_load_n(&page[i], __ATOMIC_RELAXED);
	segv_jmp = NULL;
	return true;
}

/*
 * Write one word: compare-and-swap it from the generation's pattern value
 * (or a value tagged with the generation) to a new tagged value.  The
 * first CAS is the write fault on a missing page.  0: written (*nv), 1: the
 * word holds nothing of this generation, nothing written; -1: it faulted.
 */
NO_TSAN static int cas_word(uint64_t *word, uint64_t expect, uint64_t tag, uint64_t seq,
			   uint64_t *nv)
{
	sigjmp_buf jb;
	uint64_t old, v;
	bool ok;

	if (sigsetjmp(jb, 0)) {
		segv_caught();
		return -1;
	}
	v = tag | (seq & ~TAG_MASK);
	if (v == expect)
		v ^= 1;
	segv_jmp = &jb;
	old = expect;
	ok = __atomic_compare_exchange_n(word, &old, v, false, __ATOMIC_RELAXED, __ATOMIC_RELAXED);
	if (!ok && (old & TAG_MASK) == tag)
		ok = __atomic_compare_exchange_n(word, &old, v, false, __ATOMIC_RELAXED,
						 __ATOMIC_RELAXED);
	segv_jmp = NULL;
	if (!ok)
		return 1;
	*nv = v;
	return 0;
}

/*
 * Compare a page with the generation's pattern; word i < nscratch and the
 * extras' word may hold a tagged value instead.  Returns the number of
 * wrong words and the first in *first.
 */
static unsigned int check_page(const uint64_t *got, const uint64_t *exp, uint64_t tag,
			       unsigned int nscratch, unsigned int *first)
{
	unsigned int i, bad = 0;

	for (i = 0; i < WORDS; i++) {
		if (got[i] == exp[i])
			continue;
		if ((i < nscratch || i == EXTRA_WORD) && (got[i] & TAG_MASK) == tag)
			continue;
		if (!bad++)
			*first = i;
	}
	return bad;
}

static bool page_is_zero(const uint64_t *got)
{
	unsigned int i;

	for (i = 0; i < WORDS; i++)
		if (got[i])
			return false;
	return true;
}

/* Does got hold generation gen's page pgoff, its scratch words aside? */
static bool page_matches(const uint64_t *got, uint64_t gen, uint64_t pgoff, unsigned int nscratch)
{
	uint64_t exp[WORDS];
	unsigned int i;

	uspf_pattern_fill(gen, pgoff, exp);
	for (i = nscratch; i < EXTRA_WORD; i++)
		if (got[i] != exp[i])
			return false;
	return true;
}

/*
 * Name the data found where generation gen was expected: which known
 * generation and page it is (a slot's earlier or current one, another
 * slot's, an extra's, a placeholder's), zeros, or nothing known.
 */
static void describe_found(struct torture *t, const uint64_t *got, unsigned int nscratch,
			   char *buf, size_t len)
{
	unsigned int m, s, h, pg, i, n;
	struct worker *w;
	uint64_t g;

	if (page_is_zero(got)) {
		snprintf(buf, len, "a page of zeros");
		return;
	}
	for (m = 0; m < t->nr_mms; m++) {
		for (s = 0; s < t->o.slots; s++) {
			struct slot *sl = &t->mm[m].slots[s];

			for (h = 0; h <= HISTORY; h++) {
				g = h ? get(&sl->hist[h - 1]) : get(&sl->gen);
				if (h && !g)
					break;
				for (pg = 0; pg < SLOT_PAGES; pg++) {
					if (!page_matches(got, g, pg, nscratch))
						continue;
					if (h)
						snprintf(buf, len, "generation %llu page %u (mm %u slot %u's, %u generations ago)",
							 (unsigned long long)g, pg, m, s, h);
					else
						snprintf(buf, len, "generation %llu page %u (mm %u slot %u's current one)",
							 (unsigned long long)g, pg, m, s);
					return;
				}
			}
		}
	}
	for (i = 0; i < t->nr_workers; i++) {
		w = &t->workers[i];
		n = atomic_load_explicit(&w->nr_extras, memory_order_acquire);
		for (h = 0; h < n && h < MAX_EXTRAS; h++) {
			g = get(&w->extras[h].gen);
			for (pg = 0; pg < SLOT_PAGES; pg++) {
				if (page_matches(got, g, pg, nscratch)) {
					snprintf(buf, len, "generation %llu page %u (an extra mapping's)",
						 (unsigned long long)g, pg);
					return;
				}
			}
		}
	}
	for (pg = 0; pg < SLOT_PAGES; pg++) {
		if (page_matches(got, 0, pg, nscratch)) {
			snprintf(buf, len, "generation 0 page %u (a placeholder's)", pg);
			return;
		}
	}
	snprintf(buf, len, "data of no known generation");
}

/* The slot's last operations, oldest first: "remap, dontneed, ...". */
static void describe_ops(struct slot *sl, char *buf, size_t len)
{
	uint64_t ops = get(&sl->last_ops);
	size_t off = 0;
	int i;

	buf[0] = '\0';
	for (i = 7; i >= 0 && off < len; i--) {
		unsigned int op = (unsigned int)(ops >> (8 * i)) & 0xff;

		if (op && op <= NR_OPS)
			off += (size_t)snprintf(buf + off, len - off, "%s%s", off ? ", " : "",
						op_names[op - 1]);
	}
	if (!off)
		snprintf(buf, len, "none");
}

/*
 * The kernel's VMA at addr, from /proc/self/smaps: its range, protection
 * and whether it is registered with a userfaultfd ("um" in VmFlags).  A
 * page the kernel filled itself (zeros) in an unregistered range points
 * at the runtime's registration, not at a policy.
 */
static void describe_kernel_vma(uintptr_t addr, char *buf, size_t len)
{
	unsigned long start, end;
	char line[512], perms[8];
	bool in = false;
	size_t off;
	FILE *f;

	snprintf(buf, len, "no kernel VMA there");
	f = fopen("/proc/self/smaps", "re");
	if (!f)
		return;
	while (fgets(line, sizeof(line), f)) {
		/* A VMA's first line: "start-end perms offset dev inode [path]". */
		if (sscanf(line, "%lx-%lx %7s", &start, &end, perms) == 3) {
			in = addr >= start && addr < end;
			if (in)
				snprintf(buf, len, "kernel VMA %#lx-%#lx %s", start, end, perms);
			continue;
		}
		if (in && !strncmp(line, "VmFlags:", 8)) {
			off = strlen(buf);
			snprintf(buf + off, len - off, ", %s", strstr(line, " um") ?
				 "registered with a userfaultfd" : "NOT registered with a userfaultfd");
			break;
		}
	}
	fclose(f);
}

/* ---- the watchdog's view of each thread ---- */

static void busy(struct worker *w, uintptr_t addr, const char *what)
{
	atomic_store_explicit(&w->busy_addr, addr, memory_order_relaxed);
	atomic_store_explicit(&w->busy_what, what, memory_order_relaxed);
	atomic_store_explicit(&w->busy_since, now_ns(), memory_order_release);
}

static void idle(struct worker *w)
{
	atomic_store_explicit(&w->busy_since, 0, memory_order_release);
}

/* ---- faulting threads ---- */

#define REVISITS	3	/* at most this many revisits in a row */

static void access_once(struct worker *w)
{
	struct torture *t = w->t;
	unsigned int m = rnd_below(&w->rng, t->o.mms);
	unsigned int s = rnd_below(&w->rng, t->o.slots);
	unsigned int pg = rnd_below(&w->rng, SLOT_PAGES);
	bool write = rnd_below(&w->rng, 100) < WRITE_PCT;
	unsigned int chain = 0;
	struct slot *sl;
	uint64_t got[WORDS], exp[WORDS];
	uint64_t s1, s2, g, tag, nv = 0;
	unsigned int bad, first = 0;
	char found[160], ops[128], kvma[128];
	uint64_t *page;
	uintptr_t loc;
	int wr = 0;
	bool ok;

	if (w->revisit) {
		chain = w->revisit;
		w->revisit = 0;
		m = w->rv_mm;
		s = w->rv_slot;
		pg = w->rv_page;
	}
	sl = &t->mm[m].slots[s];
	s1 = atomic_load_explicit(&sl->seq, memory_order_acquire);
	g = atomic_load_explicit(&sl->gen, memory_order_relaxed);
	loc = atomic_load_explicit(&sl->loc, memory_order_relaxed);
	page = (uint64_t *)(loc + pg * PAGE_SIZE);
	uspf_pattern_fill(g, pg, exp);
	tag = tag_of(g, pg);

	busy(w, (uintptr_t)page, write ? "write" : "read");
	if (write)
		wr = cas_word(&page[w->id], exp[w->id], tag, ++w->wseq, &nv);
	ok = wr >= 0 && read_page(page, got);
	idle(w);

	atomic_thread_fence(memory_order_acquire);
	s2 = atomic_load_explicit(&sl->seq, memory_order_relaxed);
	bump(&w->accesses);
	if (write && wr == 0)
		bump(&w->writes);
	if (s1 != s2 || (s1 & 1)) {
		bump(ok ? &w->unstable : &w->tolerated);
		if (chain < REVISITS) {
			w->revisit = chain + 1;
			w->rv_mm = m;
			w->rv_slot = s;
			w->rv_page = pg;
		}
		return;
	}
	if (!ok) {
		torture_fail(t, "%s fault on a stable slot: thread %u got SIGSEGV/SIGBUS at %p "
			     "(mm %u slot %u page %u, generation %llu), nobody was changing it",
			     write ? "write" : "read", w->id, (void *)page, m, s, pg,
			     (unsigned long long)g);
		return;
	}
	bump(&w->checked);
	if (write && wr == 0 && got[w->id] != nv) {
		torture_fail(t, "write lost: thread %u wrote %#llx at %p (mm %u slot %u page %u, "
			     "generation %llu) and read back %#llx",
			     w->id, (unsigned long long)nv, (void *)&page[w->id], m, s, pg,
			     (unsigned long long)g, (unsigned long long)got[w->id]);
		return;
	}
	bad = check_page(got, exp, tag, t->o.threads, &first);
	if (!bad)
		return;
	describe_found(t, got, t->o.threads, found, sizeof(found));
	describe_ops(sl, ops, sizeof(ops));
	describe_kernel_vma((uintptr_t)page, kvma, sizeof(kvma));
	torture_fail(t, "stale data: mm %u slot %u page %u at %p, stable across the %s: "
		     "expected generation %llu, found %s; %u of %u words wrong, "
		     "first word %u: %#llx, expected %#llx; the slot's last operations: %s; %s",
		     m, s, pg, (void *)page, write ? "write" : "read", (unsigned long long)g,
		     found, bad, (unsigned int)WORDS, first, (unsigned long long)got[first],
		     (unsigned long long)exp[first], ops, kvma);
}

static void *faulter_main(void *arg)
{
	struct worker *w = arg;

	while (!stopping(w->t))
		access_once(w);
	return NULL;
}

/* ---- writers ---- */

static uint64_t new_gen(struct torture *t)
{
	return atomic_fetch_add_explicit(&t->next_gen, 1, memory_order_relaxed);
}

static int map_pattern(struct uspf *u, uintptr_t addr, size_t len, uint64_t gen, int flags,
		       uintptr_t *out)
{
	struct uspf_backing b = { .kind = USPF_BACKING_PATTERN, .pattern.generation = gen };
	void *p;
	int ret;

	ret = uspf_mmap(u, (void *)addr, len, PROT_READ | PROT_WRITE,
			MAP_PRIVATE | MAP_ANONYMOUS | flags, &b, &p);
	if (!ret)
		*out = (uintptr_t)p;
	return ret;
}

/*
 * --files: a slot's refill maps, half the time, one of the files: a memfd
 * holding generation file_gen[f]'s pattern, so that readers check it as
 * any slot.  File VMAs bring i_mmap_rwsem into every split and merge.
 */
static int files_create(struct torture *t)
{
	char page[PAGE_SIZE];
	unsigned int f, i;

	for (f = 0; f < TORTURE_FILES; f++) {
		t->file_fd[f] = memfd_create("uspf-torture", MFD_CLOEXEC);
		if (t->file_fd[f] < 0)
			return -errno;
		t->file_gen[f] = new_gen(t);
		for (i = 0; i < SLOT_PAGES; i++) {
			uspf_pattern_fill(t->file_gen[f], i, page);
			if (pwrite(t->file_fd[f], page, PAGE_SIZE, (off_t)i * PAGE_SIZE) != PAGE_SIZE)
				return -EIO;
		}
	}
	return 0;
}

static void files_close(struct torture *t)
{
	unsigned int f;

	for (f = 0; f < TORTURE_FILES; f++)
		if (t->file_fd[f] > 0)
			close(t->file_fd[f]);
}

/* A refill: a new pattern generation, or (--files, half the time) a file's. */
static int map_refill(struct worker *w, struct uspf *u, uintptr_t addr, int flags,
		      uintptr_t *out, uint64_t *gen)
{
	struct torture *t = w->t;
	struct uspf_backing b = { .kind = USPF_BACKING_FILE };
	unsigned int f;
	void *p;
	int ret;

	if (!t->o.files || rnd_below(&w->rng, 2)) {
		*gen = new_gen(t);
		return map_pattern(u, addr, SLOT_SIZE, *gen, flags, out);
	}
	f = rnd_below(&w->rng, TORTURE_FILES);
	b.file.fd = t->file_fd[f];
	*gen = t->file_gen[f];
	ret = uspf_mmap(u, (void *)addr, SLOT_SIZE, PROT_READ | PROT_WRITE,
			MAP_PRIVATE | flags, &b, &p);
	if (!ret)
		*out = (uintptr_t)p;
	return ret;
}

/* seq odd: readers that overlap this ignore what they saw (and tolerate SIGSEGV). */
static void slot_begin(struct slot *sl)
{
	atomic_fetch_add(&sl->seq, 1);
}

static void slot_end(struct slot *sl)
{
	atomic_fetch_add(&sl->seq, 1);
}

/* Inside slot_begin/end: a new place and/or generation. */
static void slot_set(struct slot *sl, uintptr_t loc, uint64_t gen)
{
	uint64_t old = get(&sl->gen);
	int h;

	if (gen != old) {
		for (h = HISTORY - 1; h > 0; h--)
			atomic_store_explicit(&sl->hist[h], get(&sl->hist[h - 1]),
					      memory_order_relaxed);
		atomic_store_explicit(&sl->hist[0], old, memory_order_relaxed);
		atomic_store_explicit(&sl->gen, gen, memory_order_relaxed);
	}
	atomic_store_explicit(&sl->loc, loc, memory_order_relaxed);
}

static void writer_error(struct worker *w, const char *call, unsigned int m, unsigned int s,
			 uintptr_t addr, int ret)
{
	torture_fail(w->t, "writer %u: %s at %p (mm %u slot %u) failed: %s",
		     w->id - w->t->o.threads, call, (void *)addr, m, s, strerror(-ret));
}

/* A random part of a slot: a half, or any run of pages. */
static void pick_part(struct worker *w, unsigned int *p0, unsigned int *np)
{
	switch (rnd_below(&w->rng, 3)) {
	case 0:
		*p0 = 0;
		*np = SLOT_PAGES / 2;
		break;
	case 1:
		*p0 = SLOT_PAGES / 2;
		*np = SLOT_PAGES / 2;
		break;
	default:
		*p0 = rnd_below(&w->rng, SLOT_PAGES);
		*np = 1 + rnd_below(&w->rng, SLOT_PAGES - *p0);
		break;
	}
}

static void slot_op(struct worker *w, unsigned int m, unsigned int s, enum op op)
{
	struct torture *t = w->t;
	struct uspf *u = t->mm[m].u;
	struct slot *sl = &t->mm[m].slots[s];
	uintptr_t a = atomic_load_explicit(&sl->loc, memory_order_relaxed), out, where;
	unsigned int p0 = 0, np = SLOT_PAGES;
	bool dontunmap;
	int prot, ret = 0;
	void *moved;
	uint64_t g;

	slot_begin(sl);
	busy(w, a, op_names[op]);
	switch (op) {
	case OP_REMAP:
		ret = uspf_munmap(u, (void *)a, SLOT_SIZE);
		if (ret) {
			writer_error(w, "uspf_munmap", m, s, a, ret);
			break;
		}
		ret = map_refill(w, u, a, MAP_FIXED_NOREPLACE, &out, &g);
		if (ret == -EEXIST) {
			/*
			 * The hole was taken by someone else: live elsewhere
			 * from now on.  The hint (taken) keeps the new mapping
			 * PROT_NONE until registered (see the top of the file).
			 */
			bump(&w->ops[OP_RELOCATE]);
			ret = map_refill(w, u, a, 0, &out, &g);
		}
		if (ret) {
			writer_error(w, "uspf_mmap (refill)", m, s, a, ret);
			break;
		}
		slot_set(sl, out, g);
		break;
	case OP_MAP_OVER:
		ret = map_refill(w, u, a, MAP_FIXED, &out, &g);
		if (ret) {
			writer_error(w, "uspf_mmap (MAP_FIXED)", m, s, a, ret);
			break;
		}
		slot_set(sl, a, g);
		break;
	case OP_MPROTECT:
	case OP_MPROTECT_PART:
		if (op == OP_MPROTECT_PART)
			pick_part(w, &p0, &np);
		where = a + p0 * PAGE_SIZE;
		prot = rnd_below(&w->rng, 2) ? PROT_READ : PROT_NONE;
		ret = uspf_mprotect(u, (void *)where, np * PAGE_SIZE, prot);
		if (!ret)
			ret = uspf_mprotect(u, (void *)where, np * PAGE_SIZE, PROT_READ | PROT_WRITE);
		if (ret)
			writer_error(w, "uspf_mprotect", m, s, where, ret);
		break;
	case OP_DONTNEED:
		if (rnd_below(&w->rng, 2))
			pick_part(w, &p0, &np);
		where = a + p0 * PAGE_SIZE;
		ret = uspf_madvise(u, (void *)where, np * PAGE_SIZE, MADV_DONTNEED);
		if (ret)
			writer_error(w, "uspf_madvise", m, s, where, ret);
		break;
	case OP_REUSE:
		/*
		 * SLAB_TYPESAFE_BY_RCU's question (the 2025 refcount series):
		 * the slot's VMA unmapped, another mm maps the same range at
		 * once - with pervma-refcnt the freed VMA object is what it
		 * gets - holds it a moment, unmaps it, and the slot is refilled.
		 * A reader of this mm that found the old VMA before the unmap
		 * (held at a stall point) now references another mm's VMA over
		 * the very address it faults on: only vm_mm == mm tells them
		 * apart.
		 */
		ret = uspf_munmap(u, (void *)a, SLOT_SIZE);
		if (ret) {
			writer_error(w, "uspf_munmap", m, s, a, ret);
			break;
		}
		if (t->o.mms > 1) {
			unsigned int other = (m + 1 + rnd_below(&w->rng, t->o.mms - 1)) % t->o.mms;
			struct uspf *ou = t->mm[other].u;
			struct timespec ts = { 0, (long)rnd_below(&w->rng, 300000) };

			if (!map_pattern(ou, a, SLOT_SIZE, new_gen(t), MAP_FIXED_NOREPLACE, &out)) {
				nanosleep(&ts, NULL);
				ret = uspf_munmap(ou, (void *)out, SLOT_SIZE);
				if (ret) {
					writer_error(w, "uspf_munmap (reuse)", other, s, out, ret);
					break;
				}
			}
		}
		ret = map_refill(w, u, a, MAP_FIXED_NOREPLACE, &out, &g);
		if (ret == -EEXIST) {
			bump(&w->ops[OP_RELOCATE]);
			ret = map_refill(w, u, a, 0, &out, &g);
		}
		if (ret) {
			writer_error(w, "uspf_mmap (refill)", m, s, a, ret);
			break;
		}
		slot_set(sl, out, g);
		break;
	case OP_MREMAP:
		if (!sl->alt) {
			/* Hinted at the slot itself: the kernel picks a free place. */
			ret = map_pattern(u, a, SLOT_SIZE, 0, 0, &out);
			if (ret) {
				writer_error(w, "uspf_mmap (placeholder)", m, s, 0, ret);
				break;
			}
			bump(&w->ops[OP_PLACEHOLDER]);
			sl->alt = out;
		}
		/*
		 * Half the moves keep the old range (MREMAP_DONTUNMAP): mapped,
		 * emptied, refilling from the same generation - the next
		 * move's target.  A move that takes its VMA whole unlinks the
		 * kept VMA's anon_vma (dontunmap_complete()).
		 */
		dontunmap = rnd_below(&w->rng, 2);
		ret = uspf_mremap(u, (void *)a, SLOT_SIZE, SLOT_SIZE, MREMAP_MAYMOVE | MREMAP_FIXED |
				  (dontunmap ? MREMAP_DONTUNMAP : 0), (void *)sl->alt, &moved);
		if (ret == -EFAULT) {
			/*
			 * The slot is more than one VMA: its parts did not
			 * merge after an mprotect (different anon_vmas), and
			 * mremap moves one VMA only - as the kernel's.
			 */
			op = OP_MREMAP_SPLIT;
			ret = 0;
			break;
		}
		if (ret) {
			writer_error(w, "uspf_mremap", m, s, a, ret);
			break;
		}
		slot_set(sl, (uintptr_t)moved, get(&sl->gen));
		if (dontunmap) {
			sl->alt = a;	/* the kept range: the next placeholder */
			break;
		}
		/* A new placeholder where it was, unless that place was taken already. */
		ret = map_pattern(u, a, SLOT_SIZE, 0, MAP_FIXED_NOREPLACE, &out);
		sl->alt = ret ? 0 : out;
		if (ret == -EEXIST)
			ret = 0;
		else if (ret)
			writer_error(w, "uspf_mmap (placeholder)", m, s, a, ret);
		break;
	default:
		break;
	}
	idle(w);
	if (!ret)
		bump(&w->ops[op]);
	atomic_store_explicit(&sl->last_ops, (get(&sl->last_ops) << 8) | (uint64_t)(op + 1),
			      memory_order_relaxed);
	slot_end(sl);
}

/*
 * Where an extra mapping asks to go: a random slot's place (usually taken:
 * the kernel picks a free place, often a hole just made; sometimes that
 * very slot's hole, which the slot must then leave), or the hole of this
 * writer's last extra.  Never no hint: see the top of the file.
 */
static uintptr_t extra_hint(struct worker *w)
{
	struct torture *t = w->t;
	unsigned int m, s;

	if (w->last_unmapped && rnd_below(&w->rng, 2))
		return w->last_unmapped;
	m = rnd_below(&w->rng, t->o.mms);
	s = rnd_below(&w->rng, t->o.slots);
	return atomic_load_explicit(&t->mm[m].slots[s].loc, memory_order_relaxed);
}

/* Touch one page of an extra mapping: it is this writer's alone, so it must be exact. */
static void extra_touch(struct worker *w, const struct extra *e)
{
	struct torture *t = w->t;
	unsigned int pg = rnd_below(&w->rng, (unsigned int)(e->len / PAGE_SIZE));
	uint64_t *page = (uint64_t *)(e->addr + pg * PAGE_SIZE);
	uint64_t got[WORDS], exp[WORDS], g = get((_Atomic uint64_t *)&e->gen), tag, nv = 0;
	unsigned int bad, first = 0;
	char found[160];
	int wr = 0;

	uspf_pattern_fill(g, pg, exp);
	tag = tag_of(g, pg);
	if (rnd_below(&w->rng, 2))
		wr = cas_word(&page[EXTRA_WORD], exp[EXTRA_WORD], tag, ++w->wseq, &nv);
	if (wr || !read_page(page, got)) {
		torture_fail(t, "writer %u: %s of its own extra mapping at %p (mm %u, generation %llu) %s",
			     w->id - t->o.threads, wr ? "write" : "read", (void *)page, e->mm,
			     (unsigned long long)g, wr > 0 ? "found another generation's word" :
			     "got SIGSEGV/SIGBUS");
		return;
	}
	bad = check_page(got, exp, tag, 0, &first);
	if (!bad && (!nv || got[EXTRA_WORD] == nv))
		return;
	if (!bad) {
		torture_fail(t, "write lost: writer %u wrote %#llx at %p (its extra mapping, mm %u) "
			     "and read back %#llx", w->id - t->o.threads, (unsigned long long)nv,
			     (void *)&page[EXTRA_WORD], e->mm, (unsigned long long)got[EXTRA_WORD]);
		return;
	}
	describe_found(t, got, 0, found, sizeof(found));
	torture_fail(t, "stale data: writer %u's extra mapping at %p (mm %u) page %u: expected "
		     "generation %llu, found %s; %u of %u words wrong, first word %u: %#llx, expected %#llx",
		     w->id - t->o.threads, (void *)page, e->mm, pg, (unsigned long long)g, found,
		     bad, (unsigned int)WORDS, first, (unsigned long long)got[first],
		     (unsigned long long)exp[first]);
}

static void extra_op(struct worker *w)
{
	struct torture *t = w->t;
	unsigned int n = atomic_load_explicit(&w->nr_extras, memory_order_relaxed), i;
	struct extra *e;
	uintptr_t out, hint;
	uint64_t g;
	size_t len;
	int ret;

	if (n && (n == MAX_EXTRAS || rnd_below(&w->rng, 2))) {
		i = rnd_below(&w->rng, n);
		e = &w->extras[i];
		busy(w, e->addr, op_names[OP_EXTRA_UNMAP]);
		ret = uspf_munmap(t->mm[e->mm].u, (void *)e->addr, e->len);
		idle(w);
		if (ret) {
			torture_fail(t, "writer %u: uspf_munmap of its extra mapping at %p (mm %u) failed: %s",
				     w->id - t->o.threads, (void *)e->addr, e->mm, strerror(-ret));
			return;
		}
		w->last_unmapped = e->addr;
		/* Last one into the hole; the count drops first, so nobody reads a torn entry. */
		atomic_store_explicit(&w->nr_extras, n - 1, memory_order_release);
		if (i != n - 1) {
			e->addr = w->extras[n - 1].addr;
			e->len = w->extras[n - 1].len;
			e->mm = w->extras[n - 1].mm;
			atomic_store_explicit(&e->gen, get(&w->extras[n - 1].gen),
					      memory_order_relaxed);
		}
		bump(&w->ops[OP_EXTRA_UNMAP]);
		return;
	}
	e = &w->extras[n];
	e->mm = rnd_below(&w->rng, t->o.mms);
	len = (1 + rnd_below(&w->rng, SLOT_PAGES)) * PAGE_SIZE;
	g = new_gen(t);
	hint = extra_hint(w);
	busy(w, hint, op_names[OP_EXTRA_MAP]);
	ret = map_pattern(t->mm[e->mm].u, hint, len, g, 0, &out);
	if (ret) {
		idle(w);
		torture_fail(t, "writer %u: uspf_mmap of an extra mapping (mm %u, %zu bytes) failed: %s",
			     w->id - t->o.threads, e->mm, len, strerror(-ret));
		return;
	}
	e->addr = out;
	e->len = len;
	atomic_store_explicit(&e->gen, g, memory_order_relaxed);
	atomic_store_explicit(&w->nr_extras, n + 1, memory_order_release);
	bump(&w->ops[OP_EXTRA_MAP]);
	busy(w, out, "extra-touch");
	extra_touch(w, e);
	idle(w);
}

static enum op pick_op(struct worker *w)
{
	unsigned int i, total = 0, r, mask = w->t->o.ops_mask;

	for (i = 0; i < NR_OP_MIX; i++)
		if (mask & (1u << i))
			total += op_mix[i].weight;
	r = rnd_below(&w->rng, total);
	for (i = 0; !(mask & (1u << i)) || r >= op_mix[i].weight; i++)
		if (mask & (1u << i))
			r -= op_mix[i].weight;
	return op_mix[i].op;
}

static void *writer_main(void *arg)
{
	struct worker *w = arg;
	struct torture *t = w->t;
	unsigned int m, s;
	struct slot *sl;
	enum op op;

	while (!stopping(t)) {
		op = pick_op(w);
		if (op == OP_EXTRA_MAP) {
			extra_op(w);
			continue;
		}
		m = rnd_below(&w->rng, t->o.mms);
		s = rnd_below(&w->rng, t->o.slots);
		sl = &t->mm[m].slots[s];
		if (pthread_mutex_trylock(&sl->lock))
			continue;
		slot_op(w, m, s, op);
		pthread_mutex_unlock(&sl->lock);
	}
	return NULL;
}

/* ---- the watchdog ---- */

static void print_failure_and_exit(struct torture *t);

static void poll_violations(struct torture *t)
{
	char msg[256];
	unsigned int m;
	uint64_t n;

	pthread_mutex_lock(&t->poll_lock);
	for (m = 0; t->poll_runtimes && m < t->nr_mms; m++) {
		n = runtime_violations(t->mm[m].u, msg, sizeof(msg));
		if (n)
			torture_fail(t, "invariant violated in mm %u: %s (%llu violations there so far)",
				     m, msg[0] ? msg : "(no description)", (unsigned long long)n);
	}
	pthread_mutex_unlock(&t->poll_lock);
}

static void check_lost(struct torture *t)
{
	uint64_t bound = (uint64_t)(t->o.watchdog * 1e9), now = now_ns(), since;
	const char *what;
	struct worker *w;
	unsigned int i;

	for (i = 0; i < t->nr_workers; i++) {
		w = &t->workers[i];
		since = atomic_load_explicit(&w->busy_since, memory_order_acquire);
		if (!since || now < since || now - since <= bound)
			continue;
		what = atomic_load_explicit(&w->busy_what, memory_order_relaxed);
		if (!w->writer)
			torture_fail(t, "fault lost: thread %u waiting %.1fs at %p (a %s)", w->id,
				     (double)(now - since) / 1e9,
				     (void *)atomic_load_explicit(&w->busy_addr, memory_order_relaxed),
				     what);
		else
			torture_fail(t, "writer stuck: writer %u in %s for %.1fs at %p",
				     w->id - t->o.threads, what, (double)(now - since) / 1e9,
				     (void *)atomic_load_explicit(&w->busy_addr, memory_order_relaxed));
		/* That thread can never be woken: nothing to join, nothing to tear down. */
		print_failure_and_exit(t);
	}
	since = atomic_load_explicit(&t->phase_since, memory_order_acquire);
	if (since && now > since && now - since > 2 * bound) {
		torture_fail(t, "teardown stuck: %s for %.1fs",
			     atomic_load_explicit(&t->phase, memory_order_relaxed),
			     (double)(now - since) / 1e9);
		print_failure_and_exit(t);
	}
}

static void *watchdog_main(void *arg)
{
	struct torture *t = arg;
	struct timespec ts = { 0, (long)(TICK_NS / 4) };
	uint64_t next_poll = now_ns() + TICK_NS;

	while (!atomic_load(&t->watchdog_stop)) {
		nanosleep(&ts, NULL);
		if (now_ns() < next_poll)
			continue;
		next_poll += TICK_NS;
		poll_violations(t);
		check_lost(t);
	}
	return NULL;
}

static void set_phase(struct torture *t, const char *what)
{
	atomic_store_explicit(&t->phase, what, memory_order_relaxed);
	atomic_store_explicit(&t->phase_since, what ? now_ns() : 0, memory_order_release);
}

/* ---- options ---- */

enum {
	OPT_POLICY = 256,
	OPT_SECONDS,
	OPT_SEED,
	OPT_THREADS,
	OPT_WRITERS,
	OPT_MMS,
	OPT_SLOTS,
	OPT_HANDLERS,
	OPT_FOLIO_PAGES,
	OPT_INJECT,
	OPT_LIST_INJECTIONS,
	OPT_WATCHDOG,
	OPT_OPS,
	OPT_NO_DEBUG_CHECKS,
	OPT_QUIET,
	OPT_STALL,
	OPT_FILES,
};

static const struct option long_options[] = {
	{ "policy",		required_argument,	NULL, OPT_POLICY },
	{ "seconds",		required_argument,	NULL, OPT_SECONDS },
	{ "seed",		required_argument,	NULL, OPT_SEED },
	{ "threads",		required_argument,	NULL, OPT_THREADS },
	{ "writers",		required_argument,	NULL, OPT_WRITERS },
	{ "mms",		required_argument,	NULL, OPT_MMS },
	{ "slots",		required_argument,	NULL, OPT_SLOTS },
	{ "handlers",		required_argument,	NULL, OPT_HANDLERS },
	{ "folio-pages",	required_argument,	NULL, OPT_FOLIO_PAGES },
	{ "fault-around",	required_argument,	NULL, OPT_FOLIO_PAGES },	/* the old name */
	{ "inject",		required_argument,	NULL, OPT_INJECT },
	{ "list-injections",	no_argument,		NULL, OPT_LIST_INJECTIONS },
	{ "watchdog",		required_argument,	NULL, OPT_WATCHDOG },
	{ "ops",		required_argument,	NULL, OPT_OPS },
	{ "no-debug-checks",	no_argument,		NULL, OPT_NO_DEBUG_CHECKS },
	{ "quiet",		no_argument,		NULL, OPT_QUIET },
	{ "stall",		required_argument,	NULL, OPT_STALL },
	{ "files",		no_argument,		NULL, OPT_FILES },
	{ "help",		no_argument,		NULL, 'h' },
	{ NULL, 0, NULL, 0 },
};

static void policy_list(char *buf, size_t len)
{
	size_t off = 0;
	unsigned int p;

	buf[0] = '\0';
	for (p = 0; p < USPF_NR_POLICIES && off < len; p++)
		off += (size_t)snprintf(buf + off, len - off, "%s%s",
					p == 0 ? "" : p + 1 < USPF_NR_POLICIES ? ", " : " or ",
					uspf_policy_name((enum uspf_policy_id)p));
}

static void torture_usage(FILE *out)
{
	char policies[160];

	policy_list(policies, sizeof(policies));
	fprintf(out,
"usage: uspf torture [options]\n"
"\n"
"Writer threads change mappings at random (munmap and remap, MAP_FIXED over,\n"
"mprotect, MADV_DONTNEED, mremap, extra mappings) while faulting threads read\n"
"and write random pages and check every page against its generation, with the\n"
"policy's invariant checks on, a watchdog for lost faults and a VMA leak check.\n"
"Prints PASS and exits 0, or FAIL: <the first violation> and exits 1.\n"
"\n"
"  --policy NAME          the policy under test (default spf, or the --inject's):\n"
"                         %s\n"
"  --seconds N            how long, fractions allowed (default 10)\n"
"  --seed N               random seed (default: from the clock; always printed)\n"
"  --threads N            faulting threads, 1..%u (default 4)\n"
"  --writers N            writer threads, 0..%u (default 2)\n"
"  --mms N                address spaces (runtimes) in this process, 1..%u (default 2)\n"
"  --slots N              slots of %u pages per address space, 1..%u (default 16)\n"
"  --handlers N           uspf handler threads per runtime (0: one per two online CPUs)\n"
"  --folio-pages N        pages uspf installs per fault (1, the default: one;\n"
"                         --fault-around: the old name)\n"
"  --inject NAME          switch a bug injection on (repeatable; see --list-injections)\n"
"  --list-injections      list the bug injections: name, policy, what it breaks\n"
"  --watchdog SECONDS     an access in progress longer than this is a lost fault (default 5)\n"
"  --ops LIST             what writers do, a comma list of remap, map-over, mprotect,\n"
"                         mprotect-part, dontneed, mremap, extra, reuse; or all (default)\n"
"  --stall LIST           where threads stall now and then, a comma list of lookup,\n"
"                         checked, locked, snapshot, filled, end-read, prot-changed; all;\n"
"                         or random: a subset drawn from the seed (default)\n"
"  --files                half the refills map a file (memfds holding a generation's\n"
"                         pattern): i_mmap_rwsem in every split and merge\n"
"  --no-debug-checks      leave the runtimes' invariant checks off: data checks only\n"
"  --quiet                print only the result line\n"
"  -h, --help             this text\n",
		policies, MAX_THREADS, MAX_WRITERS, MAX_MMS, SLOT_PAGES, MAX_SLOTS);
}

static int bad_value(const char *flag, const char *val, const char *accepts)
{
	return cli_bad_value("torture", flag, val, accepts);
}

static int parse_ull(const char *s, unsigned long long min, unsigned long long max,
		     unsigned long long *out)
{
	return cli_parse_ull(s, min, max, out);
}

/* Decimal seconds with an optional fraction, in (0, max]. */
static int parse_seconds(const char *s, double min, double max, double *out)
{
	const char *c;
	char *end;
	double v;

	if (!*s)
		return -EINVAL;
	for (c = s; *c; c++)
		if ((*c < '0' || *c > '9') && *c != '.')
			return -EINVAL;
	errno = 0;
	v = strtod(s, &end);
	if (errno || *end || !isfinite(v) || v < min || v > max)
		return -EINVAL;
	*out = v;
	return 0;
}

static int check_config(const struct torture_opts *o, const char *flag, const char *val)
{
	char msg[256];
	int ret;

	ret = uspf_config_validate(&o->cfg, msg, sizeof(msg));
	if (!ret)
		return 0;
	if (!msg[0])
		snprintf(msg, sizeof(msg), "%s", strerror(-ret));
	fprintf(stderr, "uspf torture: %s '%s': %s\n", flag, val, msg);
	return 2;
}

/* A comma list of op_mix[] names, or all. */
static int parse_stall(const char *s, uint64_t *mask, bool *random)
{
	const char *p = s, *end;
	enum stall_point sp;
	char name[32];
	size_t len;
	uint64_t m = 0;

	*random = !strcmp(s, "random");
	if (*random || !strcmp(s, "all")) {
		*mask = (1ull << NR_STALL_POINTS) - 1;
		return 0;
	}
	for (;;) {
		end = strchr(p, ',');
		len = end ? (size_t)(end - p) : strlen(p);
		if (len >= sizeof(name))
			return -EINVAL;
		memcpy(name, p, len);
		name[len] = '\0';
		if (stall_point_from_name(name, &sp))
			return -EINVAL;
		m |= 1ull << sp;
		if (!end)
			break;
		p = end + 1;
	}
	*mask = m;
	return 0;
}

static int parse_ops(const char *s, unsigned int *mask)
{
	const char *p = s, *end;
	unsigned int i, m = 0;
	size_t len;

	if (!strcmp(s, "all")) {
		*mask = (1u << NR_OP_MIX) - 1;
		return 0;
	}
	for (;;) {
		end = strchr(p, ',');
		len = end ? (size_t)(end - p) : strlen(p);
		for (i = 0; i < NR_OP_MIX; i++)
			if (strlen(op_mix[i].name) == len && !strncmp(p, op_mix[i].name, len))
				break;
		if (i == NR_OP_MIX)
			return -EINVAL;
		m |= 1u << i;
		if (!end)
			break;
		p = end + 1;
	}
	*mask = m;
	return 0;
}

static int bad_injection(const char *val)
{
	unsigned int i;

	fprintf(stderr, "uspf torture: --inject '%s': expected one of ", val);
	for (i = 0; i < NR_INJECTIONS; i++)
		fprintf(stderr, "%s%s", i ? ", " : "", inject_info[i].name);
	fprintf(stderr, " (see --list-injections)\n");
	return 2;
}

static int parse_one(struct torture_opts *o, int opt, const char *val)
{
	unsigned long long v;
	enum uspf_inject inj;
	enum uspf_policy_id p;
	char names[160];

	switch (opt) {
	case OPT_POLICY:
		if (uspf_policy_from_name(val, &p)) {
			policy_list(names, sizeof(names));
			return bad_value("--policy", val, names);
		}
		o->policy = p;
		o->policy_set = true;
		return 0;
	case OPT_SECONDS:
		if (parse_seconds(val, 0.001, 1e6, &o->seconds))
			return bad_value("--seconds", val,
					 "a number of seconds, fractions allowed, 0.001..1000000");
		return 0;
	case OPT_SEED:
		if (parse_ull(val, 0, UINT64_MAX, &v))
			return bad_value("--seed", val, "a non-negative integer");
		o->seed = v;
		return 0;
	case OPT_THREADS:
		if (parse_ull(val, 1, MAX_THREADS, &v))
			return bad_value("--threads", val, "an integer 1..256");
		o->threads = (unsigned int)v;
		return 0;
	case OPT_WRITERS:
		if (parse_ull(val, 0, MAX_WRITERS, &v))
			return bad_value("--writers", val, "an integer 0..64");
		o->writers = (unsigned int)v;
		return 0;
	case OPT_MMS:
		if (parse_ull(val, 1, MAX_MMS, &v))
			return bad_value("--mms", val, "an integer 1..16");
		o->mms = (unsigned int)v;
		return 0;
	case OPT_SLOTS:
		if (parse_ull(val, 1, MAX_SLOTS, &v))
			return bad_value("--slots", val, "an integer 1..1024");
		o->slots = (unsigned int)v;
		return 0;
	case OPT_HANDLERS:
		if (parse_ull(val, 0, 1000000, &v))
			return bad_value("--handlers", val, "a number of threads, 0 for one per two online CPUs");
		o->cfg.handlers = (unsigned int)v;
		return check_config(o, "--handlers", val);
	case OPT_FOLIO_PAGES:
		if (parse_ull(val, 0, 1000000, &v))
			return bad_value("--folio-pages", val, "a number of pages, 1 to 512");
		o->cfg.folio_pages = (unsigned int)v;
		return check_config(o, "--folio-pages", val);
	case OPT_INJECT:
		if (inject_from_name(val, &inj))
			return bad_injection(val);
		o->inject_mask |= 1ull << inj;
		return 0;
	case OPT_WATCHDOG:
		if (parse_seconds(val, 0.1, 3600, &o->watchdog))
			return bad_value("--watchdog", val, "a number of seconds, 0.1..3600");
		return 0;
	case OPT_OPS:
		if (parse_ops(val, &o->ops_mask))
			return bad_value("--ops", val, "a comma list of remap, map-over, mprotect, "
					 "mprotect-part, dontneed, mremap, extra, reuse; or all");
		return 0;
	case OPT_FILES:
		o->files = true;
		return 0;
	case OPT_STALL:
		if (parse_stall(val, &o->stall_mask, &o->stall_random))
			return bad_value("--stall", val, "a comma list of lookup, checked, locked, "
					 "snapshot, filled, end-read; all; or random");
		return 0;
	case OPT_NO_DEBUG_CHECKS:
		o->debug_checks = false;
		return 0;
	case OPT_QUIET:
		o->quiet = true;
		return 0;
	}
	return 2;
}

static void list_injections(void)
{
	unsigned int i;

	printf("%-28s %-14s %s\n", "NAME", "POLICY", "WHAT IT BREAKS");
	for (i = 0; i < NR_INJECTIONS; i++)
		printf("%-28s %-14s %s\n", inject_info[i].name, inject_info[i].policy,
		       inject_info[i].what);
}

/* Every injection must break the policy under test; without --policy, take theirs. */
static int check_injections(struct torture_opts *o)
{
	enum uspf_policy_id p;
	unsigned int i;

	for (i = 0; i < NR_INJECTIONS; i++) {
		if (!(o->inject_mask & (1ull << i)))
			continue;
		if (uspf_policy_from_name(inject_info[i].policy, &p))
			continue;	/* breaks something no single policy owns */
		if (!o->policy_set) {
			o->policy = p;
			o->policy_set = true;
		}
		if (p != o->policy) {
			fprintf(stderr, "uspf torture: --inject '%s': breaks %s, not %s (give --policy %s)\n",
				inject_info[i].name, inject_info[i].policy,
				uspf_policy_name(o->policy), inject_info[i].policy);
			return 2;
		}
	}
	return 0;
}

static uint64_t clock_seed(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return mix64((uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec +
		     ((uint64_t)getpid() << 40)) % 1000000000ull;
}

/* Returns -1 to go on, or an exit status. */
static int parse_args(int argc, char **argv, struct torture_opts *o)
{
	bool list = false, seed_set = false;
	int opt, ret;

	memset(o, 0, sizeof(*o));
	o->policy = USPF_POLICY_SPF;
	o->seconds = 10;
	o->seed = UINT64_MAX;
	o->threads = 4;
	o->writers = 2;
	o->mms = 2;
	o->slots = 16;
	o->watchdog = 5;
	o->ops_mask = (1u << NR_OP_MIX) - 1;
	o->stall_mask = (1ull << NR_STALL_POINTS) - 1;
	o->stall_random = true;		/* each run arms a subset drawn from its seed */
	o->debug_checks = true;
	uspf_config_init(&o->cfg);

	opterr = 0;
	optind = 1;
	while ((opt = getopt_long(argc, argv, ":h", long_options, NULL)) != -1) {
		if (opt == 'h') {
			torture_usage(stdout);
			return 0;
		}
		if (opt == '?' || opt == ':')
			return cli_unknown_option("torture", argv, opt, long_options);
		if (opt == OPT_LIST_INJECTIONS) {
			list = true;
			continue;
		}
		if (opt == OPT_SEED)
			seed_set = true;
		ret = parse_one(o, opt, optarg);
		if (ret)
			return ret;
	}
	if (optind < argc) {
		fprintf(stderr, "uspf torture: unexpected argument '%s' (torture takes options only; see uspf torture --help)\n",
			argv[optind]);
		return 2;
	}
	if (list) {
		list_injections();
		return 0;
	}
	ret = check_injections(o);
	if (ret)
		return ret;
	if (!seed_set)
		o->seed = clock_seed();
	/* Drawn from the seed, never empty: the run is reproducible from what it prints. */
	while (o->stall_random && !(o->stall_mask = mix64(o->seed ^ o->stall_mask) &
				    ((1ull << NR_STALL_POINTS) - 1)))
		;
	o->cfg.policy = o->policy;
	return -1;
}

/* ---- output ---- */

static void stall_names(uint64_t mask, char *buf, size_t len)
{
	size_t off = 0;
	unsigned int i;

	buf[0] = '\0';
	for (i = 0; i < NR_STALL_POINTS && off < len; i++)
		if (mask & (1ull << i))
			off += (size_t)snprintf(buf + off, len - off, "%s%s", off ? "," : "",
						stall_point_name((enum stall_point)i));
}

static void injection_names(uint64_t mask, char *buf, size_t len)
{
	size_t off = 0;
	unsigned int i;

	snprintf(buf, len, "none");
	for (i = 0; i < NR_INJECTIONS && off < len; i++)
		if (mask & (1ull << i))
			off += (size_t)snprintf(buf + off, len - off, "%s%s", off ? ", " : "",
						inject_info[i].name);
}

static void print_reproduce(const struct torture_opts *o)
{
	bool first;
	unsigned int i;

	printf("reproduce:   uspf torture --policy %s --seed %llu --seconds %g --threads %u "
	       "--writers %u --mms %u --slots %u",
	       uspf_policy_name(o->policy), (unsigned long long)o->seed, o->seconds,
	       o->threads, o->writers, o->mms, o->slots);
	if (o->cfg.handlers)
		printf(" --handlers %u", o->cfg.handlers);
	if (o->cfg.folio_pages != 1)
		printf(" --folio-pages %u", o->cfg.folio_pages);
	for (i = 0; i < NR_INJECTIONS; i++)
		if (o->inject_mask & (1ull << i))
			printf(" --inject %s", inject_info[i].name);
	if (o->ops_mask != (1u << NR_OP_MIX) - 1) {
		printf(" --ops ");
		for (i = 0, first = true; i < NR_OP_MIX; i++) {
			if (o->ops_mask & (1u << i)) {
				printf("%s%s", first ? "" : ",", op_mix[i].name);
				first = false;
			}
		}
	}
	if (o->stall_mask != (1ull << NR_STALL_POINTS) - 1) {
		char names[128];

		stall_names(o->stall_mask, names, sizeof(names));
		printf(" --stall %s", names);
	}
	if (o->files)
		printf(" --files");
	if (!o->debug_checks)
		printf(" --no-debug-checks");
	printf("\n");
}

static void print_result_line(const struct torture_opts *o, const char *fail)
{
	if (o->quiet)
		printf("uspf torture: policy %s, seed %llu: ", uspf_policy_name(o->policy),
		       (unsigned long long)o->seed);
	if (fail)
		printf("FAIL: %s\n", fail);
	else
		printf("PASS\n");
}

/* The watchdog's way out: a thread is stuck for good, so no teardown. */
static void print_failure_and_exit(struct torture *t)
{
	fflush(stdout);
	if (!t->o.quiet) {
		printf("failures:    %llu\n", (unsigned long long)atomic_load(&t->failures));
		print_reproduce(&t->o);
	}
	print_result_line(&t->o, first_failure(t));
	fflush(stdout);
	_exit(1);
}

static void print_header(const struct torture *t)
{
	const struct torture_opts *o = &t->o;
	char inj[512], stalls[128];

	injection_names(o->inject_mask, inj, sizeof(inj));
	stall_names(o->stall_mask, stalls, sizeof(stalls));
	printf("uspf torture: policy %s, seed %llu, %g s, %u faulting threads, %u writers, "
	       "%u mms of %u slots x %u pages, watchdog %g s, stalls at %s, injections: %s\n",
	       uspf_policy_name(o->policy), (unsigned long long)o->seed, o->seconds, o->threads,
	       o->writers, o->mms, o->slots, SLOT_PAGES, o->watchdog, stalls, inj);
	fflush(stdout);
}

struct totals {
	uint64_t accesses, checked, unstable, tolerated, writes;
	uint64_t ops[NR_OPS], all_ops;
};

static void sum_workers(struct torture *t, struct totals *tot)
{
	struct worker *w;
	unsigned int i, k;

	memset(tot, 0, sizeof(*tot));
	for (i = 0; i < t->nr_workers; i++) {
		w = &t->workers[i];
		tot->accesses += get(&w->accesses);
		tot->checked += get(&w->checked);
		tot->unstable += get(&w->unstable);
		tot->tolerated += get(&w->tolerated);
		tot->writes += get(&w->writes);
		for (k = 0; k < NR_OPS; k++) {
			tot->ops[k] += get(&w->ops[k]);
			if (k != OP_RELOCATE && k != OP_PLACEHOLDER && k != OP_MREMAP_SPLIT)
				tot->all_ops += get(&w->ops[k]);
		}
	}
}

static uint64_t sum_faults(struct torture *t)
{
	struct uspf_stats st;
	uint64_t n = 0;
	unsigned int m;

	for (m = 0; m < t->nr_mms; m++)
		if (!uspf_stats(t->mm[m].u, &st))
			n += st.counters[USPF_C_FAULTS];
	return n;
}

static void print_progress(struct torture *t, unsigned int second)
{
	struct totals tot;

	sum_workers(t, &tot);
	printf("%4u s: faults %llu, accesses %llu (checked %llu), writer ops %llu\n", second,
	       (unsigned long long)sum_faults(t), (unsigned long long)tot.accesses,
	       (unsigned long long)tot.checked, (unsigned long long)tot.all_ops);
	fflush(stdout);
}

/* name value pairs, wrapped under a label. */
static void print_list_item(unsigned int *col, const char *label, bool *first, const char *item)
{
	size_t len = strlen(item);

	if (*first) {
		printf("%-12s %s", label, item);
		*col = 13 + (unsigned int)len;
		*first = false;
		return;
	}
	if (*col + 2 + len > 78) {
		printf(",\n%-12s %s", "", item);
		*col = 13 + (unsigned int)len;
		return;
	}
	printf(", %s", item);
	*col += 2 + (unsigned int)len;
}

static void print_summary(struct torture *t, const uint64_t *counters, double ran,
			  const uint64_t *violations)
{
	const struct torture_opts *o = &t->o;
	unsigned int col = 0, k, m;
	struct totals tot;
	char item[96], inj[512];
	bool first;

	sum_workers(t, &tot);
	printf("policy:      %s\n", uspf_policy_name(o->policy));
	printf("seed:        %llu\n", (unsigned long long)o->seed);
	printf("seconds:     %g (ran %.2f)\n", o->seconds, ran);
	printf("faults:      %llu (pages installed %llu)\n",
	       (unsigned long long)counters[USPF_C_FAULTS], (unsigned long long)counters[USPF_C_PAGES]);
	printf("accesses:    %llu: %llu checked exactly, %llu while the slot changed, "
	       "%llu SIGSEGV tolerated; %llu writes\n",
	       (unsigned long long)tot.accesses, (unsigned long long)tot.checked,
	       (unsigned long long)tot.unstable, (unsigned long long)tot.tolerated,
	       (unsigned long long)tot.writes);
	first = true;
	snprintf(item, sizeof(item), "%llu", (unsigned long long)tot.all_ops);
	print_list_item(&col, "writer ops:", &first, item);
	for (k = 0; k < NR_OPS; k++) {
		snprintf(item, sizeof(item), "%s %llu", op_names[k], (unsigned long long)tot.ops[k]);
		print_list_item(&col, "", &first, item);
	}
	printf("\n");
	first = true;
	for (k = 0; k < USPF_NR_COUNTERS; k++) {
		if (k == USPF_C_FAULTS || k == USPF_C_PAGES || !counters[k])
			continue;
		snprintf(item, sizeof(item), "%s %llu", uspf_counter_name((enum uspf_counter)k),
			 (unsigned long long)counters[k]);
		print_list_item(&col, "counters:", &first, item);
	}
	if (!first)
		printf("\n");
	injection_names(o->inject_mask, inj, sizeof(inj));
	printf("injections:  %s\n", inj);
	first = true;
	for (m = 0; m < t->nr_mms; m++) {
		snprintf(item, sizeof(item), "mm%u %llu", m, (unsigned long long)violations[m]);
		print_list_item(&col, "violations:", &first, item);
	}
	printf("\n");
	if (atomic_load(&t->failed)) {
		printf("failures:    %llu\n", (unsigned long long)atomic_load(&t->failures));
		print_reproduce(o);
	}
}

/* ---- setup and teardown ---- */

/*
 * Will the mappings fit under vm.max_map_count?  A slot is at most 3 VMAs
 * (split by an mprotect of its middle) and its placeholder 1; each writer
 * keeps up to MAX_EXTRAS extras; the runtime, libc and the threads need
 * some too.  A run that ran out would fail with ENOMEM, blaming no policy.
 */
static int check_map_count(const struct torture_opts *o)
{
	unsigned long long need = (unsigned long long)o->mms * o->slots * 4 +
				  (unsigned long long)o->writers * MAX_EXTRAS + 1024;
	long max = 65530;
	FILE *f = fopen("/proc/sys/vm/max_map_count", "re");

	if (f) {
		if (fscanf(f, "%ld", &max) != 1)
			max = 65530;
		fclose(f);
	}
	if (need <= (unsigned long long)max)
		return 0;
	fprintf(stderr, "uspf torture: --mms %u x --slots %u needs about %llu mappings, "
		"more than vm.max_map_count (%ld)\n", o->mms, o->slots, need, max);
	return -ENOMEM;
}

static int setup_mm(struct torture *t, unsigned int m)
{
	struct tmm *mm = &t->mm[m];
	uintptr_t base, out;
	unsigned int s;
	uint64_t g;
	int ret;

	ret = uspf_create(&mm->u, &t->o.cfg);
	if (ret) {
		fprintf(stderr, "uspf torture: cannot create runtime %u: %s\n", m, strerror(-ret));
		return ret;
	}
	t->nr_mms = m + 1;
	runtime_set_debug(mm->u, t->o.inject_mask, t->o.debug_checks);
	runtime_arm_stalls(mm->u, t->o.stall_mask);
	mm->slots = calloc(t->o.slots, sizeof(*mm->slots));
	if (!mm->slots)
		return -ENOMEM;
	/* Slots and their placeholders, interleaved: each its own VMA and generation. */
	ret = map_pattern(mm->u, 0, 2 * (size_t)t->o.slots * SLOT_SIZE, 0, 0, &base);
	if (ret) {
		fprintf(stderr, "uspf torture: cannot map %u slots in runtime %u: %s\n",
			t->o.slots, m, strerror(-ret));
		return ret;
	}
	for (s = 0; s < t->o.slots; s++) {
		struct slot *sl = &mm->slots[s];

		pthread_mutex_init(&sl->lock, NULL);
		g = new_gen(t);
		out = base + 2 * s * SLOT_SIZE;
		ret = map_pattern(mm->u, out, SLOT_SIZE, g, MAP_FIXED, &out);
		if (ret) {
			fprintf(stderr, "uspf torture: cannot map slot %u in runtime %u: %s\n",
				s, m, strerror(-ret));
			return ret;
		}
		atomic_store(&sl->gen, g);
		atomic_store(&sl->loc, out);
		sl->alt = out + SLOT_SIZE;
	}
	return 0;
}

static int alloc_workers(struct torture *t)
{
	const struct torture_opts *o = &t->o;
	struct worker *w;
	unsigned int i;
	void *mem;

	t->nr_workers = o->threads + o->writers;
	if (posix_memalign(&mem, 64, t->nr_workers * sizeof(struct worker)))
		return -ENOMEM;
	memset(mem, 0, t->nr_workers * sizeof(struct worker));
	t->workers = mem;
	for (i = 0; i < t->nr_workers; i++) {
		w = &t->workers[i];
		w->t = t;
		w->id = i;
		w->writer = i >= o->threads;
		w->rng = mix64(o->seed + (i + 1) * 0x9e3779b97f4a7c15ull) | 1;
	}
	return 0;
}

static void start_workers(struct torture *t)
{
	struct worker *w;
	unsigned int i;
	int ret;

	for (i = 0; i < t->nr_workers; i++) {
		w = &t->workers[i];
		ret = pthread_create(&w->thread, NULL, w->writer ? writer_main : faulter_main, w);
		if (ret) {
			torture_fail(t, "cannot start thread %u: %s", i, strerror(ret));
			return;
		}
		t->nr_started = i + 1;
	}
}

static void join_workers(struct torture *t)
{
	unsigned int i;

	atomic_store(&t->stop, true);
	for (i = 0; i < t->nr_started; i++)
		pthread_join(t->workers[i].thread, NULL);
}

static void run_loop(struct torture *t)
{
	uint64_t end = t->start_ns + (uint64_t)(t->o.seconds * 1e9), now;
	bool progress = !t->o.quiet && isatty(STDOUT_FILENO);
	unsigned int second = 0;
	struct timespec ts;

	while (!stopping(t) && (now = now_ns()) < end) {
		uint64_t left = end - now, step = left < 50000000ull ? left : 50000000ull;

		ts.tv_sec = 0;
		ts.tv_nsec = (long)step;
		nanosleep(&ts, NULL);
		if (progress && (now_ns() - t->start_ns) / 1000000000ull > second) {
			second++;
			print_progress(t, second);
		}
	}
}

static int torture_run(struct torture *t)
{
	uint64_t counters[USPF_NR_COUNTERS] = { 0 }, violations[MAX_MMS] = { 0 };
	size_t vmas_before, anon_before, vmas_after, anon_after;
	struct uspf_stats st;
	char msg[256];
	unsigned int m, k;
	double ran;
	int ret;

	ret = check_map_count(&t->o);
	if (ret)
		return ret;
	if (!t->o.quiet)
		print_header(t);
	/* Every earlier free has run: the caches' counts are the baseline. */
	mm_rcu_barrier();
	vmas_before = vm_area_in_use();
	anon_before = anon_vma_in_use();

	atomic_store(&t->next_gen, 1);
	if (t->o.files) {
		ret = files_create(t);
		if (ret) {
			fprintf(stderr, "uspf torture: cannot create the --files memfds: %s\n",
				strerror(-ret));
			return ret;
		}
	}
	for (m = 0; m < t->o.mms; m++) {
		ret = setup_mm(t, m);
		if (ret)
			return ret;
	}
	ret = install_segv_handler();
	if (ret) {
		fprintf(stderr, "uspf torture: sigaction: %s\n", strerror(-ret));
		return ret;
	}
	ret = alloc_workers(t);
	if (ret) {
		fprintf(stderr, "uspf torture: out of memory\n");
		return ret;
	}
	t->poll_runtimes = true;
	ret = pthread_create(&t->watchdog, NULL, watchdog_main, t);
	if (ret) {
		fprintf(stderr, "uspf torture: cannot start the watchdog: %s\n", strerror(ret));
		return -ret;
	}
	t->start_ns = now_ns();
	start_workers(t);
	run_loop(t);
	join_workers(t);
	ran = (double)(now_ns() - t->start_ns) / 1e9;

	/* The runtimes may be destroyed once the watchdog has stopped polling them. */
	pthread_mutex_lock(&t->poll_lock);
	t->poll_runtimes = false;
	pthread_mutex_unlock(&t->poll_lock);
	for (m = 0; m < t->nr_mms; m++) {
		violations[m] = runtime_violations(t->mm[m].u, msg, sizeof(msg));
		if (violations[m])
			torture_fail(t, "invariant violated in mm %u: %s (%llu violations there)",
				     m, msg[0] ? msg : "(no description)",
				     (unsigned long long)violations[m]);
		if (!uspf_stats(t->mm[m].u, &st))
			for (k = 0; k < USPF_NR_COUNTERS; k++)
				counters[k] += st.counters[k];
	}
	for (m = 0; m < t->nr_mms; m++) {
		set_phase(t, "uspf_destroy");
		uspf_destroy(t->mm[m].u);
		t->mm[m].u = NULL;
	}
	set_phase(t, "rcu_barrier");
	mm_rcu_barrier();
	set_phase(t, NULL);
	vmas_after = vm_area_in_use();
	anon_after = anon_vma_in_use();
	if (vmas_after != vmas_before || anon_after != anon_before)
		torture_fail(t, "leak: after every runtime was destroyed %zu VMAs and %zu anon_vmas "
			     "are in use, %zu and %zu were before",
			     vmas_after, anon_after, vmas_before, anon_before);
	atomic_store(&t->watchdog_stop, true);
	pthread_join(t->watchdog, NULL);

	if (!t->o.quiet)
		print_summary(t, counters, ran, violations);
	print_result_line(&t->o, atomic_load(&t->failed) ? first_failure(t) : NULL);
	return 0;
}

int cmd_torture(int argc, char **argv)
{
	struct torture *t;
	unsigned int m;
	int ret;

	t = calloc(1, sizeof(*t));
	if (!t) {
		fprintf(stderr, "uspf torture: out of memory\n");
		return 1;
	}
	ret = parse_args(argc, argv, &t->o);
	if (ret >= 0) {
		free(t);
		return ret;
	}
	pthread_mutex_init(&t->poll_lock, NULL);
	ret = torture_run(t);
	if (ret && !atomic_load(&t->failed)) {
		/* Could not set up: no verdict on the policy. */
		for (m = 0; m < t->nr_mms; m++)
			if (t->mm[m].u)
				uspf_destroy(t->mm[m].u);
		return 1;
	}
	ret = atomic_load(&t->failed) ? 1 : 0;
	for (m = 0; m < t->nr_mms; m++)
		free(t->mm[m].slots);
	files_close(t);
	free(t->workers);
	free(t);
	return ret;
}
