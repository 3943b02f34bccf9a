/* SPDX-License-Identifier: MIT */
/*
 * differential.c - issue 12's differential tester.
 *
 * One seeded random sequence of mapping changes and memory accesses runs
 * on two arenas of the same size: the PLAIN arena is driven with the
 * kernel's own system calls (syscall(2), so nothing is interposed), the
 * USPF arena with uspf_*() on one real userfaultfd runtime.  Every result
 * (errno, address as an offset in the arena), every access (the bytes,
 * whether it faulted) and, every K operations, the whole arena (mapped or
 * not, protection, first and last bytes of each accessible page, where
 * the VMAs end) must be the same on both.  The uspf model is compared
 * too: its VMAs must cover what the kernel maps, with the same
 * protection, and end where the kernel's end.
 *
 * Reads.  A read of a page never touched is not the same on both sides,
 * by the kernel's design: natively it maps the zero page and leaves the
 * VMA without an anon_vma; uspf resolves it with UFFDIO_ZEROPAGE or
 * UFFDIO_COPY, which call anon_vma_prepare() on the real VMA.  That
 * changes the kernel's later merge decisions (anon_vma compatibility;
 * mprotect(2) drops VM_ACCOUNT only from a VMA with no anon_vma), so the
 * arenas' real VMAs would part for reasons no library can avoid (uspf(7),
 * LIMITS, VMA merges).  So during a sequence no read faults in a page
 * never touched: every read (the read operation, the state checks) asks
 * mincore(2) first, on each side; a resident page is read, an accessible
 * one that is not reads as zeros untouched (all arena memory is anonymous
 * and zero-filled), one with no access (unmapped, PROT_NONE) is touched
 * (the signal installs nothing).  Writes go anywhere: a write fault gives
 * the VMA an anon_vma on both sides.  At the end of each run, after the
 * last comparison of boundaries, one sweep reads every accessible page of
 * both arenas for real (class read-sweep): uspf's read-fault path.
 * --read-untouched reads for real throughout instead, makes no mremap call
 * (its EFAULT across two VMAs hangs on where they end), and compares
 * results, accesses, pages, protections and bytes but no boundary with
 * the plain arena's (only the model's with uspf's own real VMAs).
 *
 * Allowed differences (--list-allowed; each names its man page):
 *
 *   mremap-wrap           result: an old range that wraps: uspf EINVAL,
 *                         mremap(2) EFAULT (uspf_mremap(3) ERRORS)
 *   mremap-len-0          result: old_len 0: uspf EINVAL, mremap(2)
 *                         EFAULT or EINVAL (uspf_mremap(3) ERRORS)
 *   mmap-wrap             result: a MAP_FIXED range that wraps, or a
 *                         length over 64 TiB: uspf EINVAL, mmap(2) ENOMEM
 *                         (uspf_mmap(3) ERRORS)
 *   mremap-fixed-bad-old  skipped: MREMAP_FIXED with an old range the
 *                         kernel refuses only after it has unmapped the
 *                         target (6.17+: a shrink whose old range wraps,
 *                         something mapped at the target); uspf checks the
 *                         old range first and leaves the target
 *                         (uspf_mremap(3) ERRORS)
 *   mremap-multi-vma      skipped: a MREMAP_FIXED move of the same length
 *                         whose old range starts in a VMA but spans more
 *                         (or holes): Linux 6.17+ moves them for ordinary
 *                         memory, refuses it (EFAULT) for
 *                         userfaultfd-registered memory, which all uspf
 *                         memory is (uspf_mremap(3) ERRORS)
 *
 * A `result` entry covers a result after which both arenas are the same;
 * a `skipped` entry is decided on the plain arena before the call, from
 * the kernel's order of checks, and the call is skipped on both sides.
 * Anything else that differs is a difference.
 *
 * The first difference of a run is printed, then the sequence is shrunk
 * (delta debugging: chunks, then single operations, each candidate on
 * fresh arenas and a fresh runtime, the state checked after every
 * operation) to a short sequence that still shows a difference of the
 * same class, which is printed operation by operation.
 *
 * Layout, one reservation made at a fixed low address, far below where
 * the kernel places mappings top-down, so that a move or a hint the
 * kernel resolves elsewhere never lands in an arena:
 *
 *   [guard | PLAIN arena | guard | USPF arena | guard]
 *
 * The guards stay mapped PROT_NONE (nothing grows in place into them);
 * the arenas start unmapped, and every range an operation names lies
 * inside its arena, except wrapping lengths, which both sides refuse.
 *
 * Exit status: 0 no difference, 1 a difference or a hang, 2 bad arguments.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "uspf.h"
#include "runtime.h"
#include "mm/vma.h"
#include "mm/vma_index.h"

#ifndef MAP_FIXED_NOREPLACE
#define MAP_FIXED_NOREPLACE 0x100000
#endif
#ifndef MREMAP_DONTUNMAP
#define MREMAP_DONTUNMAP 4
#endif

#define PG		4096ul
#define GUARD_PAGES	16ul
#define SAMPLE		24	/* bytes compared per page: 16 at its start, 8 at its end */
#define MAX_PAGES	4096ul

enum op_kind { OP_MMAP, OP_MUNMAP, OP_MPROTECT, OP_MREMAP, OP_MADVISE, OP_WRITE, OP_READ,
	       NR_OP_KINDS, OP_ANY = NR_OP_KINDS };

static const char *const op_names[] = {
	"mmap", "munmap", "mprotect", "mremap", "madvise", "write", "read", "any",
};

struct op {
	enum op_kind kind;
	unsigned int idx;	/* index in the generated sequence: seeds the write pattern */
	unsigned long off;	/* address, as an offset in the arena (may be unaligned) */
	size_t len;		/* mremap: old_len */
	size_t new_len;
	unsigned long new_off;	/* mremap new_addr / hint */
	int prot;
	int flags;
};

struct result {
	int err;		/* 0 or a positive errno */
	bool has_addr;
	bool outside;		/* the address is not in the arena */
	unsigned long addr;
	unsigned long off;	/* when inside: its offset in the arena */
	size_t len;		/* the mapping made there */
	bool sig;		/* an access faulted */
	unsigned char bytes[SAMPLE];
};

/*
 * Difference classes.  "boundary" and "real-boundary" are kept apart from
 * "state" because issue 12 asks for the model's VMA boundaries to be the
 * kernel's, a stricter promise than same pages, same protection.
 */
struct diff {
	bool found;
	const char *cls;	/* result, access, moved, state, model, boundary, real-boundary,
				   read-sweep, hang */
	enum op_kind kind;	/* the operation class, for result and access */
	unsigned int at;	/* position in the sequence run */
	char detail[512];
};

struct options {
	uint64_t seed;
	unsigned int seeds;
	unsigned int ops;
	unsigned long pages;
	unsigned int check_every;
	bool all_policies;
	enum uspf_policy_id policy;
	unsigned int folio_pages[8];
	unsigned int nr_folio_pages;
	char allow[16][32];		/* extra allowed classes or table entries */
	unsigned int nr_allow;
	bool verbose;
	bool read_untouched;		/* read pages never touched; no boundary checks */
	bool shrink;
	unsigned int shrink_seconds;
	unsigned int max_shrinks;	/* differences shrunk per invocation; the rest reported */
	unsigned int watchdog;
};

static struct options opt = {
	.seed = 1, .seeds = 2, .ops = 1500, .pages = 64, .check_every = 16,
	.all_policies = true, .folio_pages = { 1 }, .nr_folio_pages = 1,
	.shrink = true, .shrink_seconds = 20, .max_shrinks = ~0u, .watchdog = 60,
};

/*
 * Differences allowed by design, each documented in a man page, always on.
 * Two kinds.  A `match` entry covers a result after the fact: it may only
 * cover a difference after which both arenas are still the same (both
 * calls refused, or both did nothing).  A `skip` entry covers a call whose
 * effects differ (one side changes memory the other leaves): those cannot
 * be made equal after the fact, so the entry is decided on the plain
 * arena before the call, from the kernel's order of checks, and the call
 * is then skipped on both sides.  Each must match exactly the calls that
 * differ; anything else that differs is reported.
 *
 * An entry with `finding` set is a difference this tester found that no
 * man page documents: off unless named in --allow, so that a run can look
 * past it (with `skip`).  Delete an entry once fixed.
 */
/* One run: the two arenas, the runtime. */
struct run {
	uint64_t seed;
	enum uspf_policy_id policy;
	unsigned int folio_pages;
	unsigned int check_every;	/* 0: only at the end */
	unsigned long resv;		/* the reservation */
	size_t resv_len;
	unsigned long plain, uspf;	/* the arenas */
	size_t arena_len;
	struct uspf *u;
	char *maps;			/* /proc/self/maps, reused */
	size_t maps_size;
};

struct allowed {
	const char *name;
	const char *cls;
	enum op_kind kind;
	const char *doc;
	bool finding;		/* off unless named in --allow */
	bool (*match)(const struct op *op, const struct result *p, const struct result *u);
	bool (*skip)(struct run *r, const struct op *op);
};

/*
 * The generator's only huge lengths are ones that wrap from any arena
 * address (2^64 minus at most 1 MiB): more than the 47-bit user space.
 */
static bool wraps(unsigned long off, size_t len)
{
	(void)off;
	return len > 1ul << 47;
}

static bool len0_err_einval(const struct op *op, const struct result *p, const struct result *u)
{
	return op->len == 0 && p->err && u->err == EINVAL;
}

static bool wrap_einval(const struct op *op, const struct result *p, const struct result *u)
{
	return wraps(op->off, op->len) && p->err && u->err == EINVAL;
}


/*
 * mremap(2) with MREMAP_FIXED, in the order Linux 6.17 and later check it
 * (mm/mremap.c: do_mremap(), check_mremap_params(), remap_move(),
 * check_prep_vma(), mremap_to()).  True when the call gets past the
 * parameter checks (EINVAL, before anything is touched) to the VMAs;
 * *ol, *nl are the page-aligned lengths, as the kernel rounds them.
 */
#define USER_TOP	((1ul << 47) - PG)	/* x86-64 TASK_SIZE, 4-level paging */

static unsigned long page_align(unsigned long len)
{
	return (len + PG - 1) & ~(PG - 1);
}

static bool mremap_fixed_reaches_vmas(unsigned long addr, unsigned long new_addr,
				      const struct op *op, unsigned long *ol, unsigned long *nl)
{
	const int need = MREMAP_MAYMOVE | MREMAP_FIXED;

	*ol = page_align(op->len);
	*nl = page_align(op->new_len);
	if (op->kind != OP_MREMAP || (op->flags & need) != need || addr % PG || new_addr % PG ||
	    !*nl || *nl > USER_TOP || new_addr > USER_TOP - *nl ||
	    (op->flags & MREMAP_DONTUNMAP && *ol != *nl))
		return false;
	/* vrm_overlaps(), with the kernel's wrapping sums. */
	return !(addr + *ol > new_addr && new_addr + *nl > addr);
}

static bool plain_pages(struct run *r);
static bool plain_one_vma(unsigned long first, unsigned long last);
static bool plain_mapped(unsigned long page);

/*
 * mremap-fixed-bad-old: the only MREMAP_FIXED call with a bad old range
 * that 6.17+ fails after it has unmapped the target is a shrink whose
 * old range wraps: check_prep_vma() checks only the part kept (it must lie
 * in the VMA at old_addr, else EFAULT first), mremap_to() unmaps the
 * target, then cutting the tail fails (EINVAL or ENOMEM).  It differs
 * only where something is mapped at the target.  A hole, nothing at old_addr or a
 * grow across VMAs fails EFAULT before the target is touched, as uspf does;
 * a move of the same length is mremap-multi-vma.
 */
static bool mremap_fixed_bad_old(struct run *r, const struct op *op)
{
	unsigned long addr = r->plain + op->off, ol, nl, first = op->off / PG;

	/* shrink_vma(): do_vmi_munmap() of the tail refuses one past USER_TOP. */
	if (!mremap_fixed_reaches_vmas(addr, r->plain + op->new_off, op, &ol, &nl) || ol <= nl ||
	    ol - nl <= USER_TOP - (addr + nl))
		return false;
	if (first + nl / PG > opt.pages || op->new_off / PG + nl / PG > opt.pages ||
	    !plain_pages(r) || !plain_one_vma(first, first + nl / PG))
		return false;
	/* Something to unmap at the target, or nothing differs. */
	for (unsigned long i = op->new_off / PG; i < op->new_off / PG + nl / PG; i++)
		if (plain_mapped(i))
			return true;
	return false;
}

/*
 * mremap-multi-vma: a move of the same length (MREMAP_FIXED, old and new
 * lengths equal once rounded: remap_move()) whose old range starts in a
 * VMA (else EFAULT, both) but does not lie in it: more VMAs, or holes,
 * after it.  6.17+ moves each VMA (keeping the gaps) for ordinary memory;
 * for userfaultfd-registered memory vma_multi_allowed() is false and the
 * call fails EFAULT, before the target is touched.  All uspf memory is
 * registered.
 */
static bool mremap_multi_vma(struct run *r, const struct op *op)
{
	unsigned long ol, nl, first = op->off / PG, last;

	if (!mremap_fixed_reaches_vmas(r->plain + op->off, r->plain + op->new_off, op, &ol, &nl) ||
	    ol != nl)
		return false;
	last = first + ol / PG;
	return last <= opt.pages && plain_pages(r) && plain_mapped(first) &&
	       !plain_one_vma(first, last);
}

static const struct allowed allowed_table[] = {
	{ "mremap-wrap", "result", OP_MREMAP,
	  "uspf_mremap(3) ERRORS: an old range that wraps is -EINVAL (mremap(2): EFAULT)",
	  false, wrap_einval, NULL },
	{ "mremap-len-0", "result", OP_MREMAP,
	  "uspf_mremap(3) ERRORS: old_len 0 is -EINVAL (mremap(2): EFAULT where nothing is "
	  "mapped; it duplicates a shared mapping, which uspf has none of)",
	  false, len0_err_einval, NULL },
	{ "mmap-wrap", "result", OP_MMAP,
	  "uspf_mmap(3) ERRORS: MAP_FIXED(_NOREPLACE) range that wraps, or len over 64 TiB, "
	  "is -EINVAL (mmap(2): ENOMEM)",
	  false, wrap_einval, NULL },
	{ "mremap-fixed-bad-old", "state", OP_MREMAP,
	  "uspf_mremap(3) ERRORS: MREMAP_FIXED with an invalid old range (here: a shrink whose "
	  "old range wraps) fails with the target left mapped; mremap(2) unmaps the target "
	  "before it fails", false, NULL, mremap_fixed_bad_old },
	{ "mremap-multi-vma", "result", OP_MREMAP,
	  "uspf_mremap(3) ERRORS: a MREMAP_FIXED move of the same length whose old range spans "
	  "several VMAs (or holes) is -EFAULT, as mremap(2) is for userfaultfd-registered memory; "
	  "Linux 6.17+ moves the VMAs of ordinary memory", false, NULL, mremap_multi_vma },
};

/* ---- the PRNG: splitmix64, one stream per seed ---- */

static uint64_t splitmix(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static uint64_t rnd(uint64_t *s, uint64_t n)
{
	return n ? splitmix(s) % n : 0;
}

/* ---- guarded accesses: a fault is a result, not a crash ---- */

static _Thread_local sigjmp_buf access_jmp;
static _Thread_local volatile sig_atomic_t access_armed;

static void on_fault(int sig, siginfo_t *si, void *uc)
{
	(void)si;
	(void)uc;
	if (!access_armed) {
		/* Not ours (a handler thread, or a bug here): die as without us. */
		signal(sig, SIG_DFL);
		return;
	}
	access_armed = 0;
	siglongjmp(access_jmp, sig);
}

static bool sample_page(unsigned long addr, unsigned char *out)
{
	volatile unsigned char *p = (volatile unsigned char *)addr;

	memset(out, 0, SAMPLE);
	if (sigsetjmp(access_jmp, 1))
		return true;
	access_armed = 1;
	for (int i = 0; i < 16; i++)
		out[i] = p[i];
	for (int i = 0; i < 8; i++)
		out[16 + i] = p[PG - 8 + i];
	access_armed = 0;
	return false;
}

static void pattern(uint64_t seed, unsigned int idx, unsigned long page, unsigned char *b)
{
	uint64_t s = seed ^ ((uint64_t)idx << 24) ^ page, w;

	for (int i = 0; i < SAMPLE; i += 8) {
		w = splitmix(&s);
		memcpy(b + i, &w, 8);
	}
}

static bool write_page(unsigned long addr, const unsigned char *b)
{
	volatile unsigned char *p = (volatile unsigned char *)addr;

	if (sigsetjmp(access_jmp, 1))
		return true;
	access_armed = 1;
	for (int i = 0; i < 16; i++)
		p[i] = b[i];
	for (int i = 0; i < 8; i++)
		p[PG - 8 + i] = b[16 + i];
	access_armed = 0;
	return false;
}

/* ---- the watchdog: a lost fault must end the run, not hang make check ---- */

static volatile unsigned int cur_op;
static char cur_text[256], cur_run[96];

static void on_alarm(int sig)
{
	char msg[400];
	int n;

	(void)sig;
	n = snprintf(msg, sizeof(msg), "differential: HANG %s, at op #%u: %s (no answer in %u s)\n",
		     cur_run, cur_op, cur_text, opt.watchdog);
	if (n > 0)
		(void)!write(2, msg, (size_t)n);
	_exit(1);
}

/* ---- operations: generated, printed, run ---- */

static const char *prot_str(int prot, char *buf)
{
	buf[0] = prot & PROT_READ ? 'r' : '-';
	buf[1] = prot & PROT_WRITE ? 'w' : '-';
	buf[2] = prot & PROT_EXEC ? 'x' : '-';
	buf[3] = '\0';
	return buf;
}

static const char *flags_str(const struct op *op, char *buf, size_t len)
{
	static const struct { int bit; const char *name; } mmap_f[] = {
		{ MAP_FIXED, "FIXED" }, { MAP_FIXED_NOREPLACE, "FIXED_NOREPLACE" },
		{ MAP_NORESERVE, "NORESERVE" },
	}, mremap_f[] = {
		{ MREMAP_MAYMOVE, "MAYMOVE" }, { MREMAP_FIXED, "FIXED" },
		{ MREMAP_DONTUNMAP, "DONTUNMAP" },
	};
	const bool is_mmap = op->kind == OP_MMAP;
	size_t n = 0;

	buf[0] = '\0';
	for (int i = 0; i < 3; i++) {
		int bit = is_mmap ? mmap_f[i].bit : mremap_f[i].bit;

		if (op->flags & bit)
			n += (size_t)snprintf(buf + n, len - n, "%s%s", n ? "|" : "",
					      is_mmap ? mmap_f[i].name : mremap_f[i].name);
	}
	if (!n)
		snprintf(buf, len, "%s", is_mmap ? "hint" : "0");
	return buf;
}

static const char *op_str(const struct op *op, char *buf, size_t len)
{
	char p[4], f[64];

	switch (op->kind) {
	case OP_MMAP:
		snprintf(buf, len, "mmap(A+%#lx, %#zx, %s, %s)", op->off, op->len,
			 prot_str(op->prot, p), flags_str(op, f, sizeof(f)));
		break;
	case OP_MUNMAP:
	case OP_MADVISE:
		snprintf(buf, len, "%s(A+%#lx, %#zx%s)", op_names[op->kind], op->off, op->len,
			 op->kind == OP_MADVISE ? ", MADV_DONTNEED" : "");
		break;
	case OP_MPROTECT:
		snprintf(buf, len, "mprotect(A+%#lx, %#zx, %s)", op->off, op->len,
			 prot_str(op->prot, p));
		break;
	case OP_MREMAP:
		snprintf(buf, len, "mremap(A+%#lx, %#zx, %#zx, %s, A+%#lx)", op->off, op->len,
			 op->new_len, flags_str(op, f, sizeof(f)), op->new_off);
		break;
	case OP_WRITE:
	case OP_READ:
		snprintf(buf, len, "%s page %lu (A+%#lx)%s", op_names[op->kind], op->off / PG,
			 op->off, op->kind == OP_WRITE ? " pattern(seed, op idx, page)" : "");
		break;
	default:
		snprintf(buf, len, "?");
	}
	return buf;
}

/*
 * A length of 1..max pages that fits in the arena from page `first`,
 * sometimes not a page multiple, sometimes 0, sometimes one that wraps
 * the address space (both sides must refuse it: never one that is merely
 * huge, which the kernel would apply to memory outside the arena).
 */
static size_t gen_len(uint64_t *s, unsigned long first)
{
	unsigned long room = opt.pages - first, max = opt.pages / 4 ? opt.pages / 4 : 1;
	unsigned long pages = 1 + rnd(s, room < max ? room : max);
	unsigned int r = (unsigned int)rnd(s, 100);

	if (r < 80)
		return pages * PG;
	if (r < 91)
		return pages * PG - 1 - rnd(s, PG - 1);
	if (r < 95)
		return 0;
	return ~0ul - rnd(s, 1ul << 20);
}

static int gen_prot(uint64_t *s)
{
	static const int prots[] = {
		PROT_NONE, PROT_READ, PROT_READ | PROT_WRITE, PROT_READ | PROT_WRITE,
		PROT_READ | PROT_EXEC, PROT_READ | PROT_WRITE | PROT_EXEC, PROT_WRITE,
		PROT_EXEC,
	};

	return prots[rnd(s, sizeof(prots) / sizeof(prots[0]))];
}

static unsigned long gen_off(uint64_t *s, unsigned long *page)
{
	*page = rnd(s, opt.pages);
	if (rnd(s, 100) < 4)
		return *page * PG + 1 + rnd(s, PG - 1);
	return *page * PG;
}

static void gen_mremap(uint64_t *s, struct op *op, unsigned long page)
{
	unsigned long old_pages = (op->len + PG - 1) / PG, new_pages;
	unsigned int r = (unsigned int)rnd(s, 100);

	if (op->len >= ~0ul - (1ul << 20) || !old_pages)
		old_pages = 1;
	/* Lengths: shrink, same, grow (in place or moving), sometimes odd. */
	if (r < 30)
		new_pages = 1 + rnd(s, old_pages);
	else if (r < 50)
		new_pages = old_pages;
	else
		new_pages = old_pages + 1 + rnd(s, opt.pages / 4 ? opt.pages / 4 : 1);
	if (new_pages > opt.pages)
		new_pages = opt.pages;
	op->new_len = new_pages * PG;
	r = (unsigned int)rnd(s, 100);
	if (r < 5)
		op->new_len -= 1 + rnd(s, PG - 1);
	else if (r < 7)
		op->new_len = rnd(s, 2) ? 0 : ~0ul - rnd(s, PG - 1);

	r = (unsigned int)rnd(s, 100);
	if (r < 25)
		op->flags = 0;
	else if (r < 45)
		op->flags = MREMAP_MAYMOVE;
	else if (r < 85)
		op->flags = MREMAP_MAYMOVE | MREMAP_FIXED;
	else if (r < 92)
		op->flags = MREMAP_MAYMOVE | MREMAP_DONTUNMAP |
			    (rnd(s, 2) ? MREMAP_FIXED : 0);
	else
		op->flags = rnd(s, 2) ? MREMAP_FIXED : MREMAP_DONTUNMAP;	/* no MAYMOVE */
	if (op->flags & MREMAP_DONTUNMAP && rnd(s, 100) < 85)
		op->new_len = op->len;
	/* The target: inside the arena, where the new length fits. */
	new_pages = (op->new_len + PG - 1) / PG;
	if (!new_pages || new_pages > opt.pages)
		new_pages = 1;
	op->new_off = rnd(s, opt.pages - new_pages + 1) * PG;
	(void)page;
}

static void gen_ops(uint64_t seed, struct op *ops, unsigned int n)
{
	uint64_t s = seed;

	for (unsigned int i = 0; i < n; i++) {
		struct op *op = &ops[i];
		unsigned int r = (unsigned int)rnd(&s, 100);
		unsigned long page;

		memset(op, 0, sizeof(*op));
		op->idx = i;
		op->kind = r < 20 ? OP_MMAP : r < 31 ? OP_MUNMAP : r < 45 ? OP_MPROTECT :
			   r < 59 ? OP_MREMAP : r < 66 ? OP_MADVISE : r < 84 ? OP_WRITE : OP_READ;
		/*
		 * --read-untouched: no mremap, the one call whose result hangs
		 * on where VMAs end (EFAULT across two), which an anon_vma from
		 * uspf's read faults may change; everything else is compared.
		 */
		if (opt.read_untouched && op->kind == OP_MREMAP)
			op->kind = OP_READ;
		if (op->kind == OP_WRITE || op->kind == OP_READ) {
			op->off = rnd(&s, opt.pages) * PG;
			continue;
		}
		op->off = gen_off(&s, &page);
		op->len = gen_len(&s, page);
		switch (op->kind) {
		case OP_MMAP:
			op->prot = gen_prot(&s);
			r = (unsigned int)rnd(&s, 100);
			op->flags = r < 40 ? MAP_FIXED : r < 80 ? MAP_FIXED_NOREPLACE :
				    r < 85 ? MAP_FIXED | MAP_FIXED_NOREPLACE : 0;
			if (rnd(&s, 100) < 20)
				op->flags |= MAP_NORESERVE;
			break;
		case OP_MPROTECT:
			op->prot = gen_prot(&s);
			break;
		case OP_MREMAP:
			gen_mremap(&s, op, page);
			break;
		default:
			break;
		}
	}
}

/* ---- one run: the two arenas, the runtime ---- */

static int reserve(struct run *r)
{
	/* Low and fixed: top-down placement never comes down here. */
	unsigned long hint = 0x100000000000ul;

	r->arena_len = opt.pages * PG;
	r->resv_len = 2 * r->arena_len + 3 * GUARD_PAGES * PG;
	for (int i = 0; i < 64; i++, hint += 0x4000000000ul) {
		long a = syscall(SYS_mmap, hint, r->resv_len, PROT_NONE,
				 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE | MAP_NORESERVE,
				 -1, 0);

		if (a == -1)
			continue;
		r->resv = (unsigned long)a;
		r->plain = r->resv + GUARD_PAGES * PG;
		r->uspf = r->plain + r->arena_len + GUARD_PAGES * PG;
		if (syscall(SYS_munmap, r->plain, r->arena_len) ||
		    syscall(SYS_munmap, r->uspf, r->arena_len))
			return -errno;
		return 0;
	}
	return -ENOMEM;
}

static int run_start(struct run *r)
{
	struct uspf_config cfg;
	int ret;

	uspf_config_init(&cfg);
	cfg.policy = r->policy;
	cfg.folio_pages = r->folio_pages;
	ret = uspf_create(&r->u, &cfg);
	if (ret) {
		fprintf(stderr, "differential: uspf_create: %s\n", strerror(-ret));
		return ret;
	}
	ret = reserve(r);
	if (ret) {
		fprintf(stderr, "differential: no room for the arenas: %s\n", strerror(-ret));
		uspf_destroy(r->u);
	}
	return ret;
}

static void run_end(struct run *r)
{
	uspf_destroy(r->u);
	r->u = NULL;
	syscall(SYS_munmap, r->resv, r->resv_len);
}

static void set_addr(struct result *res, unsigned long addr, size_t len, unsigned long base,
		     size_t arena_len)
{
	res->has_addr = true;
	res->addr = addr;
	res->len = (len + PG - 1) & ~(PG - 1);
	res->outside = addr < base || addr >= base + arena_len;
	res->off = res->outside ? 0 : addr - base;
}

static void plain_op(struct run *r, const struct op *op, struct result *res)
{
	unsigned long a = r->plain + op->off, b = r->plain + op->new_off;
	long ret = 0;

	switch (op->kind) {
	case OP_MMAP:
		ret = syscall(SYS_mmap, a, op->len, op->prot,
			      MAP_PRIVATE | MAP_ANONYMOUS | op->flags, -1, 0);
		if (ret != -1)
			set_addr(res, (unsigned long)ret, op->len, r->plain, r->arena_len);
		break;
	case OP_MUNMAP:
		ret = syscall(SYS_munmap, a, op->len);
		break;
	case OP_MPROTECT:
		ret = syscall(SYS_mprotect, a, op->len, op->prot);
		break;
	case OP_MADVISE:
		ret = syscall(SYS_madvise, a, op->len, MADV_DONTNEED);
		break;
	case OP_MREMAP:
		ret = syscall(SYS_mremap, a, op->len, op->new_len, op->flags, b);
		if (ret != -1)
			set_addr(res, (unsigned long)ret, op->new_len, r->plain, r->arena_len);
		break;
	default:
		break;
	}
	res->err = ret == -1 ? errno : 0;
}

static void uspf_op(struct run *r, const struct op *op, struct result *res)
{
	void *a = (void *)(r->uspf + op->off), *b = (void *)(r->uspf + op->new_off), *out = NULL;
	int ret = 0;

	switch (op->kind) {
	case OP_MMAP:
		ret = uspf_mmap(r->u, a, op->len, op->prot, MAP_PRIVATE | MAP_ANONYMOUS | op->flags,
				NULL, &out);
		if (!ret)
			set_addr(res, (unsigned long)out, op->len, r->uspf, r->arena_len);
		break;
	case OP_MUNMAP:
		ret = uspf_munmap(r->u, a, op->len);
		break;
	case OP_MPROTECT:
		ret = uspf_mprotect(r->u, a, op->len, op->prot);
		break;
	case OP_MADVISE:
		ret = uspf_madvise(r->u, a, op->len, MADV_DONTNEED);
		break;
	case OP_MREMAP:
		ret = uspf_mremap(r->u, a, op->len, op->new_len, op->flags, b, &out);
		if (!ret)
			set_addr(res, (unsigned long)out, op->new_len, r->uspf, r->arena_len);
		break;
	default:
		break;
	}
	res->err = ret < 0 ? -ret : 0;
}

/* A write (reads: read_op()). */
static void access_op(struct run *r, const struct op *op, unsigned long base, struct result *res)
{
	unsigned char b[SAMPLE];

	pattern(r->seed, op->idx, op->off / PG, b);
	res->sig = write_page(base + op->off, b);
}

static void diff_set(struct diff *d, const char *cls, enum op_kind kind, unsigned int at,
		     const char *fmt, ...) __attribute__((format(printf, 5, 6)));

static void diff_set(struct diff *d, const char *cls, enum op_kind kind, unsigned int at,
		     const char *fmt, ...)
{
	va_list ap;

	d->found = true;
	d->cls = cls;
	d->kind = kind;
	d->at = at;
	va_start(ap, fmt);
	vsnprintf(d->detail, sizeof(d->detail), fmt, ap);
	va_end(ap);
}

static bool class_allowed(const char *cls)
{
	for (unsigned int i = 0; i < opt.nr_allow; i++)
		if (!strcmp(opt.allow[i], cls))
			return true;
	return false;
}

static const struct allowed *allowed_match(const char *cls, const struct op *op,
					   const struct result *p, const struct result *u)
{
	for (size_t i = 0; i < sizeof(allowed_table) / sizeof(allowed_table[0]); i++) {
		const struct allowed *a = &allowed_table[i];

		if (!a->match || (a->finding && !class_allowed(a->name)) || strcmp(a->cls, cls) ||
		    (a->kind != OP_ANY && a->kind != op->kind))
			continue;
		if (a->match(op, p, u))
			return a;
	}
	return NULL;
}

/* An allowed difference this operation would start from: skip it on both sides. */
static const struct allowed *allowed_skip(struct run *r, const struct op *op)
{
	for (size_t i = 0; i < sizeof(allowed_table) / sizeof(allowed_table[0]); i++) {
		const struct allowed *a = &allowed_table[i];

		if (a->skip && (!a->finding || class_allowed(a->name)) && a->kind == op->kind &&
		    a->skip(r, op))
			return a;
	}
	return NULL;
}

static const char *res_str(const struct result *res, char *buf, size_t len)
{
	if (res->err)
		snprintf(buf, len, "%s (%d)", strerrorname_np(res->err) ?: "?", res->err);
	else if (res->has_addr && res->outside)
		snprintf(buf, len, "0, outside the arena at %#lx", res->addr);
	else if (res->has_addr)
		snprintf(buf, len, "0, at A+%#lx", res->off);
	else
		snprintf(buf, len, "0");
	return buf;
}

static void bytes_str(const unsigned char *b, char *buf)
{
	for (int i = 0; i < SAMPLE; i++)
		sprintf(buf + 2 * i, "%02x", b[i]);
}

/*
 * Both landed outside the arenas (a move or a hint the kernel placed):
 * compare what they hold, then unmap both, so the arenas alone remain.
 */
static void compare_outside(struct run *r, const struct result *p, const struct result *u,
			    const struct op *op, unsigned int at, struct diff *d)
{
	unsigned char pb[SAMPLE], ub[SAMPLE];
	char ps[2 * SAMPLE + 1], us[2 * SAMPLE + 1];

	for (unsigned long i = 0; i < p->len / PG && i < u->len / PG && !d->found; i++) {
		bool psig = sample_page(p->addr + i * PG, pb);
		bool usig = sample_page(u->addr + i * PG, ub);

		if (psig == usig && !memcmp(pb, ub, SAMPLE))
			continue;
		bytes_str(pb, ps);
		bytes_str(ub, us);
		diff_set(d, "moved", op->kind, at, "page %lu of the mapping placed outside: "
			 "plain %s %s, uspf %s %s", i, psig ? "signal" : "ok", ps,
			 usig ? "signal" : "ok", us);
	}
	if (p->len != u->len && !d->found)
		diff_set(d, "moved", op->kind, at, "lengths placed outside: plain %#zx, uspf %#zx",
			 p->len, u->len);
}

static void unmap_outside(struct run *r, const struct result *p, const struct result *u)
{
	if (p->has_addr && p->outside)
		syscall(SYS_munmap, p->addr, p->len);
	if (u->has_addr && u->outside)
		uspf_munmap(r->u, (void *)u->addr, u->len);
}

static void compare_op(struct run *r, const struct op *op, unsigned int at,
		       const struct result *p, const struct result *u, struct diff *d)
{
	char ps[128], us[128], pb[2 * SAMPLE + 1], ub[2 * SAMPLE + 1];
	const char *cls = op->kind == OP_READ || op->kind == OP_WRITE ? "access" : "result";
	bool same;

	if (!strcmp(cls, "access")) {
		if (p->sig == u->sig && !memcmp(p->bytes, u->bytes, SAMPLE))
			return;
		bytes_str(p->bytes, pb);
		bytes_str(u->bytes, ub);
		diff_set(d, cls, op->kind, at, "plain %s %s, uspf %s %s",
			 p->sig ? "signal" : "ok", op->kind == OP_READ ? pb : "",
			 u->sig ? "signal" : "ok", op->kind == OP_READ ? ub : "");
		return;
	}
	same = p->err == u->err && p->has_addr == u->has_addr && p->outside == u->outside &&
	       p->off == u->off;
	if (same) {
		if (p->has_addr && p->outside)
			compare_outside(r, p, u, op, at, d);
		return;
	}
	if (allowed_match(cls, op, p, u))
		return;
	diff_set(d, cls, op->kind, at, "plain %s, uspf %s", res_str(p, ps, sizeof(ps)),
		 res_str(u, us, sizeof(us)));
}

/* ---- the whole arena: /proc/self/maps, the model, the bytes ---- */

struct page_state {
	bool mapped;
	int prot;
};

struct arena_state {
	struct page_state pg[MAX_PAGES];
	bool bound[MAX_PAGES + 1];	/* a VMA starts or ends at this page */
};

static int read_maps(struct run *r)
{
	size_t n = 0;
	ssize_t got;
	int fd = open("/proc/self/maps", O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return -errno;
	for (;;) {
		if (r->maps_size - n < 4096) {
			char *m = realloc(r->maps, r->maps_size * 2 + 65536);

			if (!m) {
				close(fd);
				return -ENOMEM;
			}
			r->maps = m;
			r->maps_size = r->maps_size * 2 + 65536;
		}
		got = read(fd, r->maps + n, r->maps_size - n - 1);
		if (got <= 0)
			break;
		n += (size_t)got;
	}
	close(fd);
	r->maps[n] = '\0';
	return got < 0 ? -errno : 0;
}

/* The real VMAs over [base, base + arena_len), clipped to it. */
static void real_state(struct run *r, unsigned long base, struct arena_state *st)
{
	unsigned long end = base + r->arena_len;

	memset(st, 0, sizeof(*st));
	for (char *line = r->maps; line && *line; line = strchr(line, '\n'), line = line ? line + 1 : NULL) {
		unsigned long s, e;
		char perms[5];

		if (sscanf(line, "%lx-%lx %4s", &s, &e, perms) != 3 || e <= base || s >= end)
			continue;
		if (s < base)
			s = base;
		if (e > end)
			e = end;
		st->bound[(s - base) / PG] = st->bound[(e - base) / PG] = true;
		for (unsigned long a = s; a < e; a += PG) {
			struct page_state *ps = &st->pg[(a - base) / PG];

			ps->mapped = true;
			ps->prot = (perms[0] == 'r' ? PROT_READ : 0) |
				   (perms[1] == 'w' ? PROT_WRITE : 0) |
				   (perms[2] == 'x' ? PROT_EXEC : 0);
		}
	}
	/* The arena's own edges are not VMA ends worth comparing. */
	st->bound[0] = st->bound[opt.pages] = false;
}

/* The model's VMAs over the uspf arena; *outside: model VMAs elsewhere. */
static void model_state(struct run *r, struct arena_state *st, size_t *outside)
{
	unsigned long base = r->uspf, end = base + r->arena_len, addr = base, s, e;
	struct uspf_vma *vma;
	size_t in = 0;

	memset(st, 0, sizeof(*st));
	/* No writer runs: this thread is the only one changing the model. */
	rcu_read_lock();
	while ((vma = vma_index_find(&r->u->mm.index, addr, &s, &e)) && s < end) {
		in++;
		st->bound[(s < base ? 0 : s - base) / PG] = true;
		st->bound[((e > end ? end : e) - base) / PG] = true;
		for (unsigned long a = s < base ? base : s; a < e && a < end; a += PG) {
			st->pg[(a - base) / PG].mapped = true;
			st->pg[(a - base) / PG].prot = vma->vm_prot;
		}
		addr = e;
	}
	*outside = vma_index_count(&r->u->mm.index) - in;
	rcu_read_unlock();
	st->bound[0] = st->bound[opt.pages] = false;
}

static void bounds_str(const struct arena_state *st, char *buf, size_t len)
{
	size_t n = 0;

	buf[0] = '\0';
	for (unsigned long i = 1; i < opt.pages && n + 8 < len; i++)
		if (st->bound[i])
			n += (size_t)snprintf(buf + n, len - n, "%s%lu", n ? "," : "", i);
	if (!n)
		snprintf(buf, len, "none");
}

static bool pages_differ(const struct arena_state *a, const struct arena_state *b,
			 const char *an, const char *bn, const char *cls, unsigned int at,
			 struct diff *d)
{
	char ap[4], bp[4];

	for (unsigned long i = 0; i < opt.pages; i++) {
		const struct page_state *x = &a->pg[i], *y = &b->pg[i];

		if (x->mapped == y->mapped && (!x->mapped || x->prot == y->prot))
			continue;
		diff_set(d, cls, OP_ANY, at, "page %lu (A+%#lx): %s %s, %s %s", i, i * PG, an,
			 x->mapped ? prot_str(x->prot, ap) : "unmapped", bn,
			 y->mapped ? prot_str(y->prot, bp) : "unmapped");
		return true;
	}
	return false;
}

static bool bounds_differ(const struct arena_state *a, const struct arena_state *b,
			  const char *an, const char *bn, const char *cls, unsigned int at,
			  struct diff *d)
{
	char as[256], bs[256];

	if (!memcmp(a->bound, b->bound, (opt.pages + 1) * sizeof(bool)))
		return false;
	bounds_str(a, as, sizeof(as));
	bounds_str(b, bs, sizeof(bs));
	diff_set(d, cls, OP_ANY, at, "VMA ends inside the arena, in pages: %s %s; %s %s",
		 an, as, bn, bs);
	return true;
}

static struct arena_state st_plain, st_uspf, st_model, st_pre;

/* The plain arena's VMAs now, in st_pre, for the allowed entries' decisions. */
static bool plain_pages(struct run *r)
{
	if (read_maps(r))
		return false;
	real_state(r, r->plain, &st_pre);
	return true;
}

static bool plain_mapped(unsigned long page)
{
	return st_pre.pg[page].mapped;
}

/* Pages [first, last) of the plain arena lie in one VMA (after plain_pages()). */
static bool plain_one_vma(unsigned long first, unsigned long last)
{
	for (unsigned long i = first; i < last; i++)
		if (!st_pre.pg[i].mapped || (i > first && st_pre.bound[i]))
			return false;
	return first < last;
}

/*
 * Reads.  Reading a page never touched is not the same on both sides:
 * natively the read fault maps the zero page and leaves the VMA without an
 * anon_vma; uspf resolves it with UFFDIO_ZEROPAGE or UFFDIO_COPY, which
 * prepare one on the real VMA, and that changes the kernel's later merge
 * decisions (anon_vma compatibility; mprotect(2) drops VM_ACCOUNT only
 * from a VMA never faulted), as uspf(7) says under VMA merges.  So within a
 * sequence a page is read only where mincore(2) says it is resident
 * (written, moved, or installed by uspf's multi-page faults); an accessible page
 * that is not resident reads as zeros without being touched (all arena
 * memory is anonymous, zero-filled), on each side by its own mincore(2).
 * A page with no access (unmapped, PROT_NONE) is touched: that fault is a
 * signal and installs nothing.  Writes fault a page in as they like (a
 * write fault gives the VMA an anon_vma on both sides).  At the end of a
 * run, read_sweep() reads every accessible page of both arenas for real.
 * --read-untouched reads for real throughout, compares no boundaries and
 * makes no mremap call (whose EFAULT depends on them): uspf's read-fault
 * path under every other call.
 */
static bool accessible(const struct page_state *ps)
{
	return ps->mapped && ps->prot != PROT_NONE;
}

static bool read_page(unsigned long addr, const struct page_state *ps, unsigned char *out)
{
	unsigned char vec = 0;

	if (!opt.read_untouched && accessible(ps) && !syscall(SYS_mincore, addr, PG, &vec) &&
	    !(vec & 1)) {
		memset(out, 0, SAMPLE);
		return false;
	}
	return sample_page(addr, out);
}

/* The read operation, on both arenas. */
static void read_op(struct run *r, const struct op *op, struct result *p, struct result *u)
{
	unsigned long i = op->off / PG;

	if (read_maps(r)) {
		/* Cannot tell: a real read, as --read-untouched. */
		p->sig = sample_page(r->plain + op->off, p->bytes);
		u->sig = sample_page(r->uspf + op->off, u->bytes);
		return;
	}
	real_state(r, r->plain, &st_plain);
	real_state(r, r->uspf, &st_uspf);
	p->sig = read_page(r->plain + op->off, &st_plain.pg[i], p->bytes);
	u->sig = read_page(r->uspf + op->off, &st_uspf.pg[i], u->bytes);
}

/*
 * Compare the whole arena after operation `at`: pages and protection
 * (plain vs uspf), the model against the real uspf mapping, the bytes of
 * every page readable on both sides, then where VMAs end.  Each class is
 * checked unless allowed; the first one found is the run's difference.
 */
static void check_state(struct run *r, unsigned int at, struct diff *d)
{
	unsigned char pb[SAMPLE], ub[SAMPLE];
	char ps[2 * SAMPLE + 1], us[2 * SAMPLE + 1];
	size_t outside;
	int ret = read_maps(r);

	if (ret) {
		diff_set(d, "state", OP_ANY, at, "/proc/self/maps: %s", strerror(-ret));
		return;
	}
	real_state(r, r->plain, &st_plain);
	real_state(r, r->uspf, &st_uspf);
	model_state(r, &st_model, &outside);

	if (!class_allowed("state") &&
	    pages_differ(&st_plain, &st_uspf, "plain", "uspf", "state", at, d))
		return;
	if (!class_allowed("model")) {
		if (pages_differ(&st_uspf, &st_model, "kernel", "model", "model", at, d))
			return;
		if (outside) {
			diff_set(d, "model", OP_ANY, at,
				 "%zu model VMAs outside the arena, where nothing is mapped", outside);
			return;
		}
	}
	for (unsigned long i = 0; i < opt.pages && !class_allowed("state"); i++) {
		bool psig, usig;

		if (!accessible(&st_plain.pg[i]) || !accessible(&st_uspf.pg[i]))
			continue;
		psig = read_page(r->plain + i * PG, &st_plain.pg[i], pb);
		usig = read_page(r->uspf + i * PG, &st_uspf.pg[i], ub);
		if (psig == usig && !memcmp(pb, ub, SAMPLE))
			continue;
		bytes_str(pb, ps);
		bytes_str(ub, us);
		diff_set(d, "state", OP_ANY, at, "page %lu (A+%#lx) contents: plain %s %s, uspf %s %s",
			 i, i * PG, psig ? "signal" : "ok", ps, usig ? "signal" : "ok", us);
		return;
	}
	if (opt.read_untouched) {
		/*
		 * A read of an untouched page gave uspf's VMA an anon_vma the
		 * plain one lacks: their boundaries may part.  The model must
		 * still follow its own kernel's.
		 */
		if (!class_allowed("boundary"))
			bounds_differ(&st_uspf, &st_model, "kernel (uspf)", "model", "boundary", at, d);
		return;
	}
	if (!class_allowed("boundary") &&
	    bounds_differ(&st_plain, &st_model, "kernel (plain)", "model", "boundary", at, d))
		return;
	if (!class_allowed("real-boundary"))
		bounds_differ(&st_plain, &st_uspf, "plain", "uspf's real VMAs", "real-boundary", at, d);
}

/*
 * The end of a run, after the last comparison of boundaries: read every
 * page accessible on both sides for real, faulting in those never touched
 * (uspf's read-fault path: UFFDIO_ZEROPAGE, UFFDIO_COPY, multi-page faults).
 */
static void read_sweep(struct run *r, unsigned int at, struct diff *d)
{
	unsigned char pb[SAMPLE], ub[SAMPLE];
	char ps[2 * SAMPLE + 1], us[2 * SAMPLE + 1];
	int ret = read_maps(r);

	if (ret) {
		diff_set(d, "read-sweep", OP_ANY, at, "/proc/self/maps: %s", strerror(-ret));
		return;
	}
	real_state(r, r->plain, &st_plain);
	real_state(r, r->uspf, &st_uspf);
	for (unsigned long i = 0; i < opt.pages; i++) {
		bool psig, usig;

		if (!accessible(&st_plain.pg[i]) || !accessible(&st_uspf.pg[i]))
			continue;
		psig = sample_page(r->plain + i * PG, pb);
		usig = sample_page(r->uspf + i * PG, ub);
		if (psig == usig && !memcmp(pb, ub, SAMPLE))
			continue;
		bytes_str(pb, ps);
		bytes_str(ub, us);
		diff_set(d, "read-sweep", OP_ANY, at, "final read of page %lu (A+%#lx): plain %s %s, "
			 "uspf %s %s", i, i * PG, psig ? "signal" : "ok", ps, usig ? "signal" : "ok", us);
		return;
	}
}

/*
 * Run ops[0..n) on fresh arenas and a fresh runtime.  Returns 0, or -1 if
 * the run could not start; *d says whether (and where) it differed.
 */
static int run_seq(const struct run *tmpl, const struct op *ops, unsigned int n,
		   bool verbose, struct diff *d)
{
	struct run r = *tmpl;
	char text[256], ps[128], us[128];

	memset(d, 0, sizeof(*d));
	r.maps = NULL;
	r.maps_size = 0;
	if (run_start(&r))
		return -1;
	snprintf(cur_run, sizeof(cur_run), "seed %" PRIu64 " policy %s folio-pages %u", r.seed,
		 uspf_policy_name(r.policy), r.folio_pages);
	alarm(opt.watchdog);
	for (unsigned int i = 0; i < n && !d->found; i++) {
		const struct op *op = &ops[i];
		struct result p = { 0 }, u = { 0 };

		const struct allowed *skip = NULL;

		cur_op = op->idx;
		op_str(op, cur_text, sizeof(cur_text));
		if (op->kind != OP_READ && op->kind != OP_WRITE)
			skip = allowed_skip(&r, op);
		if (skip) {
			if (verbose)
				printf("  #%u %s: skipped (%s allowed)\n", op->idx,
				       op_str(op, text, sizeof(text)), skip->name);
		} else if (op->kind == OP_READ) {
			read_op(&r, op, &p, &u);
		} else if (op->kind == OP_WRITE) {
			access_op(&r, op, r.plain, &p);
			access_op(&r, op, r.uspf, &u);
		} else {
			plain_op(&r, op, &p);
			uspf_op(&r, op, &u);
		}
		if (verbose)
			printf("  #%u %s: plain %s%s, uspf %s%s\n", op->idx,
			       op_str(op, text, sizeof(text)), res_str(&p, ps, sizeof(ps)),
			       p.sig ? " signal" : "", res_str(&u, us, sizeof(us)),
			       u.sig ? " signal" : "");
		compare_op(&r, op, i, &p, &u, d);
		if (d->found && class_allowed(d->cls))
			memset(d, 0, sizeof(*d));
		unmap_outside(&r, &p, &u);
		if (!d->found && (i + 1 == n || (r.check_every && (i + 1) % r.check_every == 0)))
			check_state(&r, i, d);
		if (!d->found && i + 1 == n && !class_allowed("read-sweep"))
			read_sweep(&r, i, d);
	}
	alarm(0);
	run_end(&r);
	free(r.maps);
	return 0;
}

/* ---- shrinking ---- */

static bool same_difference(const struct diff *a, const struct diff *b)
{
	return b->found && !strcmp(a->cls, b->cls) && a->kind == b->kind;
}

/*
 * Delta debugging: drop chunks of the sequence, halving the chunk when no
 * chunk can go, down to single operations; a candidate is kept when a run
 * of it on fresh arenas, checked after every operation, shows a
 * difference of the same class (and operation class).  Each kept run also
 * cuts the sequence after the operation it failed at.
 */
static unsigned int shrink(const struct run *tmpl, struct op *seq, unsigned int n,
			   const struct diff *want, struct diff *last, unsigned int *cadence)
{
	struct run r = *tmpl;
	struct op *cand = malloc(sizeof(*cand) * (n ? n : 1));
	time_t deadline = time(NULL) + opt.shrink_seconds;
	struct diff d;
	unsigned int chunk;

	r.check_every = 1;
	*last = *want;
	if (run_seq(&r, seq, n, false, &d) || !same_difference(want, &d)) {
		/*
		 * With --read-untouched the checks fault pages in, which is not
		 * the same on both sides (UFFDIO_ZEROPAGE prepares an anon_vma,
		 * which changes later merges): shrink at the run's own cadence.
		 */
		r.check_every = tmpl->check_every;
		if (run_seq(&r, seq, n, false, &d) || !same_difference(want, &d)) {
			printf("  (not reproduced on a fresh run: kept whole)\n");
			free(cand);
			return n;
		}
	}
	*cadence = r.check_every;
	*last = d;
	n = d.at + 1;
	for (chunk = n / 2 ? n / 2 : 1; chunk >= 1 && time(NULL) < deadline; ) {
		bool removed = false;

		for (unsigned int start = 0; start < n && n > 1 && time(NULL) < deadline; ) {
			unsigned int end = start + chunk < n ? start + chunk : n, m = 0;

			for (unsigned int i = 0; i < n; i++)
				if (i < start || i >= end)
					cand[m++] = seq[i];
			if (!run_seq(&r, cand, m, false, &d) && same_difference(want, &d)) {
				n = d.at + 1;
				memcpy(seq, cand, sizeof(*seq) * n);
				*last = d;
				removed = true;
			} else {
				start += chunk;
			}
		}
		if (!removed) {
			if (chunk == 1)
				break;
			chunk /= 2;
		} else if (chunk > n / 2 && n > 1) {
			chunk = n / 2;
		}
	}
	if (time(NULL) >= deadline)
		printf("  (shrinking stopped after %u s: the sequence may shrink further)\n",
		       opt.shrink_seconds);
	free(cand);
	return n;
}

static void report(const struct run *r, const struct op *ops, const struct diff *d)
{
	char text[256];

	printf("differential: DIFFERENCE [%s] seed %" PRIu64 " policy %s folio-pages %u, "
	       "op #%u: %s\n", d->cls, r->seed, uspf_policy_name(r->policy), r->folio_pages,
	       ops[d->at].idx, op_str(&ops[d->at], text, sizeof(text)));
	printf("  %s\n", d->detail);
}

static int run_one(uint64_t seed, enum uspf_policy_id policy, unsigned int folio_pages)
{
	struct run r = { .seed = seed, .policy = policy, .folio_pages = folio_pages,
			 .check_every = opt.check_every };
	struct op *ops = malloc(sizeof(*ops) * opt.ops);
	struct diff d, last;
	char text[256];
	unsigned int n, cadence;

	if (!ops)
		return -1;
	gen_ops(seed, ops, opt.ops);
	if (opt.verbose)
		printf("seed %" PRIu64 " policy %s folio-pages %u:\n", seed,
		       uspf_policy_name(policy), folio_pages);
	if (run_seq(&r, ops, opt.ops, opt.verbose, &d)) {
		free(ops);
		return -1;
	}
	if (!d.found) {
		free(ops);
		return 0;
	}
	report(&r, ops, &d);
	if (!opt.shrink || !opt.max_shrinks) {
		free(ops);
		return 1;
	}
	opt.max_shrinks--;
	cadence = r.check_every;
	n = shrink(&r, ops, d.at + 1, &d, &last, &cadence);
	printf("  minimal sequence, %u op%s (fresh arenas, state compared after every %u "
	       "op%s and at the end; 'A+' is the arena's start):\n", n, n == 1 ? "" : "s",
	       cadence, cadence == 1 ? "" : "s");
	for (unsigned int i = 0; i < n; i++)
		printf("    #%u %s\n", ops[i].idx, op_str(&ops[i], text, sizeof(text)));
	printf("  -> [%s] after #%u: %s\n", last.cls, ops[last.at < n ? last.at : n - 1].idx,
	       last.detail);
	free(ops);
	return 1;
}

/* ---- options ---- */

static void usage_error(const char *what, const char *accepted)
{
	fprintf(stderr, "differential: bad %s: accepted: %s\n", what, accepted);
	exit(2);
}

static unsigned long parse_num(const char *s, const char *what, unsigned long min,
			       unsigned long max, const char *accepted)
{
	char *end;
	unsigned long v;

	if (!s || !*s)
		usage_error(what, accepted);
	errno = 0;
	v = strtoul(s, &end, 0);
	if (errno || *end || s[0] == '-' || v < min || v > max)
		usage_error(what, accepted);
	return v;
}

static void parse_allow(const char *list)
{
	static const char *const classes[] = {
		"result", "access", "moved", "state", "model", "boundary", "real-boundary",
		"read-sweep",
	};
	char buf[512], *save = NULL;

	snprintf(buf, sizeof(buf), "%s", list);
	for (char *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
		bool ok = false;

		for (size_t i = 0; i < sizeof(classes) / sizeof(classes[0]); i++)
			ok |= !strcmp(t, classes[i]);
		for (size_t i = 0; i < sizeof(allowed_table) / sizeof(allowed_table[0]); i++)
			ok |= allowed_table[i].finding && !strcmp(t, allowed_table[i].name);
		if (!ok || opt.nr_allow >= 16)
			usage_error("--allow", "a comma-separated list of difference classes (result, "
				    "access, moved, state, model, boundary, real-boundary, read-sweep) "
				    "and known "
				    "findings (see --list-allowed)");
		snprintf(opt.allow[opt.nr_allow++], sizeof(opt.allow[0]), "%s", t);
	}
}

static void parse_args(int argc, char **argv)
{
	const char *env = getenv("USPF_DIFF_LONG");
	bool seeds_set = false, ops_set = false, is_long = env && !strcmp(env, "1");

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (!strcmp(a, "--seed")) {
			opt.seed = parse_num(v, "--seed", 0, ~0ul, "an integer");
			i++;
		} else if (!strcmp(a, "--seeds")) {
			opt.seeds = (unsigned int)parse_num(v, "--seeds", 1, 1000000, "1..1000000");
			seeds_set = true;
			i++;
		} else if (!strcmp(a, "--ops")) {
			opt.ops = (unsigned int)parse_num(v, "--ops", 1, 10000000, "1..10000000");
			ops_set = true;
			i++;
		} else if (!strcmp(a, "--pages")) {
			opt.pages = parse_num(v, "--pages", 4, MAX_PAGES, "4..4096");
			i++;
		} else if (!strcmp(a, "--check-every")) {
			opt.check_every = (unsigned int)parse_num(v, "--check-every", 0, 1000000,
								  "0 (only at the end)..1000000");
			i++;
		} else if (!strcmp(a, "--folio-pages") || !strcmp(a, "--fault-around")) {
			char buf[128], *save = NULL;

			snprintf(buf, sizeof(buf), "%s", v ? v : "");
			opt.nr_folio_pages = 0;
			for (char *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
				if (opt.nr_folio_pages == 8)
					usage_error("--folio-pages", "up to 8 values");
				opt.folio_pages[opt.nr_folio_pages++] = (unsigned int)
					parse_num(t, "--folio-pages", 1, 512,
						  "a comma-separated list of 1..512");
			}
			if (!opt.nr_folio_pages)
				usage_error("--folio-pages", "a comma-separated list of 1..512");
			i++;
		} else if (!strcmp(a, "--policy")) {
			if (v && !strcmp(v, "all")) {
				opt.all_policies = true;
			} else if (!v || uspf_policy_from_name(v, &opt.policy)) {
				usage_error("--policy", "all, spf, mmap-lock, spf-adaptive, "
					    "pervma-rwsem, pervma-refcnt, spf-v12");
			} else {
				opt.all_policies = false;
			}
			i++;
		} else if (!strcmp(a, "--allow")) {
			if (!v)
				usage_error("--allow", "a comma-separated list of difference classes");
			parse_allow(v);
			i++;
		} else if (!strcmp(a, "--shrink-seconds")) {
			opt.shrink_seconds = (unsigned int)parse_num(v, "--shrink-seconds", 0, 86400,
								     "0 (no shrinking)..86400");
			opt.shrink = opt.shrink_seconds > 0;
			i++;
		} else if (!strcmp(a, "--max-shrinks")) {
			opt.max_shrinks = (unsigned int)parse_num(v, "--max-shrinks", 0, ~0u,
								  "0 (report only)..4294967295");
			i++;
		} else if (!strcmp(a, "--watchdog")) {
			opt.watchdog = (unsigned int)parse_num(v, "--watchdog", 1, 86400, "1..86400 seconds");
			i++;
		} else if (!strcmp(a, "--list-allowed")) {
			for (size_t k = 0; k < sizeof(allowed_table) / sizeof(allowed_table[0]); k++)
				printf("%-20s %-7s %-9s %s%s\n", allowed_table[k].name,
				       allowed_table[k].cls, op_names[allowed_table[k].kind],
				       allowed_table[k].finding ? "(--allow) " : "",
				       allowed_table[k].doc);
			exit(0);
		} else if (!strcmp(a, "--read-untouched")) {
			opt.read_untouched = true;
		} else if (!strcmp(a, "--verbose")) {
			opt.verbose = true;
		} else if (!strcmp(a, "--long")) {
			is_long = true;
		} else if (!strcmp(a, "--help")) {
			printf("usage: differential [--seed N] [--seeds N] [--ops N] [--pages N]\n"
			       "  [--policy NAME|all] [--folio-pages N[,N...]] [--check-every K]\n"
			       "  [--allow CLASS[,CLASS...]] [--shrink-seconds S] [--max-shrinks N]\n"
			       "  [--watchdog S] [--list-allowed] [--read-untouched] [--long] [--verbose]\n");
			exit(0);
		} else {
			usage_error("argument", "--seed, --seeds, --ops, --pages, --policy, "
				    "--folio-pages, --check-every, --allow, --shrink-seconds, --max-shrinks, "
				    "--watchdog, --list-allowed, --read-untouched, --long, --verbose, "
				    "--help");
		}
	}
	if (is_long) {
		if (!seeds_set)
			opt.seeds = 40;
		if (!ops_set)
			opt.ops = 20000;
		opt.shrink_seconds = opt.shrink ? 120 : 0;
		opt.watchdog = opt.watchdog < 600 ? 600 : opt.watchdog;
	}
}

int main(int argc, char **argv)
{
	struct sigaction sa = { .sa_sigaction = on_fault, .sa_flags = SA_SIGINFO | SA_NODEFER };
	unsigned int runs = 0, differ = 0;
	int first = 0, last = USPF_NR_POLICIES;

	parse_args(argc, argv);
	setvbuf(stdout, NULL, _IOLBF, 0);
	sigemptyset(&sa.sa_mask);
	sigaction(SIGSEGV, &sa, NULL);
	sigaction(SIGBUS, &sa, NULL);
	signal(SIGALRM, on_alarm);
	if (!opt.all_policies) {
		first = (int)opt.policy;
		last = first + 1;
	}
	for (int p = first; p < last; p++)
		for (unsigned int f = 0; f < opt.nr_folio_pages; f++)
			for (unsigned int s = 0; s < opt.seeds; s++) {
				int ret = run_one(opt.seed + s, (enum uspf_policy_id)p,
						  opt.folio_pages[f]);

				if (ret < 0)
					return 1;
				runs++;
				differ += ret;
			}
	printf("differential: %u run%s of %u ops on %lu pages, %u with a difference\n", runs,
	       runs == 1 ? "" : "s", opt.ops, opt.pages, differ);
	return differ ? 1 : 0;
}
