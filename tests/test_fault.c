/* SPDX-License-Identifier: MIT */
/*
 * test_fault.c - real faults through every policy and every backing
 * (src/fault.c, src/backing.c): bytes checked, single and multi-threaded,
 * fault-around, fill errors.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "tests/helpers.h"

TestSuite(fault, .timeout = 30);

T_POLICY_PARAMS(fault, zero_read_and_write)
ParameterizedTest(enum uspf_policy_id *policy, fault, zero_read_and_write)
{
	struct uspf *u = t_runtime(*policy, 1);
	size_t len = 64 * T_PAGE, i;
	unsigned char *p = t_map(u, len, NULL);

	/* Read faults map zero pages; write faults a zeroed private page. */
	for (i = 0; i < len / 2; i += T_PAGE)
		cr_assert_eq(p[i], 0);
	for (i = len / 2; i < len; i += T_PAGE)
		p[i + 7] = (unsigned char)(i >> 12);
	for (i = len / 2; i < len; i += T_PAGE) {
		cr_assert_eq(p[i + 7], (unsigned char)(i >> 12));
		cr_assert_eq(p[i], 0);
	}
	/* A write after a read fault is the kernel's copy-on-write of the zero page. */
	p[0] = 0xaa;
	cr_assert_eq(p[0], 0xaa);
	cr_assert_geq(t_counter(u, USPF_C_FAULTS), 64);
	uspf_destroy(u);
}

T_POLICY_PARAMS(fault, pattern_single_thread)
ParameterizedTest(enum uspf_policy_id *policy, fault, pattern_single_thread)
{
	struct uspf *u = t_runtime(*policy, 1);
	size_t len = 256 * T_PAGE;
	void *p = t_map_pattern(u, len, 42);

	t_assert_pattern(p, len, 42, 0);
	t_quiesce(u);
	cr_assert_eq(t_counter(u, USPF_C_FAULTS), 256);
	uspf_destroy(u);
}

struct slice {
	char *base;
	size_t len;
	uint64_t gen;
	uint64_t pgoff;
	bool write;
};

static void *touch_slice(void *arg)
{
	struct slice *s = arg;
	size_t i;

	for (i = 0; i < s->len; i += T_PAGE) {
		if (s->write)
			s->base[i + 1] = 1;	/* a write fault, then the check below */
		if (!uspf_pattern_check(s->gen, s->pgoff + i / T_PAGE, s->base + i) &&
		    !(s->write && s->base[i + 1] == 1))
			return (void *)1;
	}
	return NULL;
}

T_POLICY_PARAMS(fault, pattern_threads_own_slices)
ParameterizedTest(enum uspf_policy_id *policy, fault, pattern_threads_own_slices)
{
	struct uspf *u = t_runtime(*policy, 1);
	size_t per = 128 * T_PAGE;
	char *p = t_map_pattern(u, 4 * per, 9);
	struct slice s[4];
	int i;

	for (i = 0; i < 4; i++)
		s[i] = (struct slice){ p + i * per, per, 9, (uint64_t)i * 128, false };
	t_run_threads(4, touch_slice, s, sizeof(s[0]));
	t_assert_pattern(p, 4 * per, 9, 0);
	t_quiesce(u);
	cr_assert_eq(t_counter(u, USPF_C_FAULTS), 4 * 128);
	uspf_destroy(u);
}

/* Every thread faults every page: resolves race, the losers see EEXIST and wake. */
T_POLICY_PARAMS(fault, pattern_threads_same_pages)
ParameterizedTest(enum uspf_policy_id *policy, fault, pattern_threads_same_pages)
{
	struct uspf *u = t_runtime(*policy, 1);
	size_t len = 512 * T_PAGE;
	char *p = t_map_pattern(u, len, 77);
	struct slice s[4];
	struct uspf_stats st;
	int i;

	for (i = 0; i < 4; i++)
		s[i] = (struct slice){ p, len, 77, 0, false };
	t_run_threads(4, touch_slice, s, sizeof(s[0]));
	t_assert_pattern(p, len, 77, 0);
	t_quiesce(u);
	uspf_stats(u, &st);
	/* Each page installed once; every other fault on it ended in a wake. */
	cr_assert_eq(st.counters[USPF_C_PAGES], 512);
	cr_assert_eq(st.counters[USPF_C_FAULTS], 512 + st.counters[USPF_C_EEXIST]);
	uspf_destroy(u);
}

static int make_file(size_t len, unsigned char seed)
{
	char path[] = "/tmp/uspf-test-XXXXXX";
	unsigned char *buf = malloc(len);
	int fd = mkstemp(path);
	size_t i;

	cr_assert(fd >= 0 && buf);
	unlink(path);
	for (i = 0; i < len; i++)
		buf[i] = (unsigned char)(i * 31 + seed + (i >> 12));
	cr_assert_eq(write(fd, buf, len), (ssize_t)len);
	free(buf);
	return fd;
}

T_POLICY_PARAMS(fault, file_backing)
ParameterizedTest(enum uspf_policy_id *policy, fault, file_backing)
{
	struct uspf *u = t_runtime(*policy, 1);
	size_t flen = 10 * T_PAGE + 100, i;
	int fd = make_file(flen, 3);
	/* Map from file offset one page, 12 pages: the tail is past EOF. */
	struct uspf_backing b = { .kind = USPF_BACKING_FILE, .file = { fd, T_PAGE } };
	unsigned char *p = t_map(u, 12 * T_PAGE, &b);

	for (i = 0; i < 12 * T_PAGE; i++) {
		size_t off = i + T_PAGE;
		unsigned char want = off < flen ? (unsigned char)(off * 31 + 3 + (off >> 12)) : 0;

		cr_assert_eq(p[i], want, "byte %zu: %u, want %u", i, p[i], want);
	}
	/* File VMAs are not served speculatively (the kernel's vm_ops->fault bail-out). */
	if (*policy == USPF_POLICY_SPF)
		cr_assert_eq(t_counter(u, USPF_C_SPF_ABORT_NOT_ANON), 12);
	uspf_destroy(u);
	close(fd);
}

struct fill_arg {
	uint64_t salt;
	int fail;
	int calls;
};

static int fill_cb(void *arg, void *dst, uint64_t offset, size_t len)
{
	struct fill_arg *fa = arg;
	uint64_t *w = dst;
	size_t i;

	__atomic_add_fetch(&fa->calls, 1, __ATOMIC_RELAXED);
	if (fa->fail)
		return -EIO;
	for (i = 0; i < len / 8; i++)
		w[i] = fa->salt ^ (offset + i * 8);
	return 0;
}

T_POLICY_PARAMS(fault, fill_callback)
ParameterizedTest(enum uspf_policy_id *policy, fault, fill_callback)
{
	struct uspf *u = t_runtime(*policy, 1);
	struct fill_arg fa = { .salt = 0x5a5a5a5a12345678ull };
	struct uspf_backing b = { .kind = USPF_BACKING_FILL, .fill = { fill_cb, &fa } };
	size_t len = 32 * T_PAGE, i;
	uint64_t *w = t_map(u, len, &b);

	for (i = 0; i < len / 8; i++)
		cr_assert_eq(w[i], fa.salt ^ (i * 8));
	cr_assert_geq(fa.calls, 32);
	uspf_destroy(u);
}

/* A fill that fails must never hand out memory: the thread gets SIGBUS. */
Test(fault, fill_error_is_sigbus, .signal = SIGBUS)
{
	struct uspf *u = t_runtime(USPF_POLICY_SPF, 1);
	struct fill_arg fa = { .fail = 1 };
	struct uspf_backing b = { .kind = USPF_BACKING_FILL, .fill = { fill_cb, &fa } };
	volatile char *p = t_map(u, T_PAGE, &b);

	(void)p[0];
	cr_assert_fail("read a page the backing could not fill");
}

/*
 * The SIGBUS of a failed fill says where: si_addr is the start of the
 * faulting page (userfaultfd reports no more), as the kernel's
 * force_sig_fault() does for VM_FAULT_SIGBUS.  Its si_code cannot be the
 * kernel's BUS_ADRERR: rt_tgsigqueueinfo(2) lets a thread give a positive
 * si_code only to itself (EPERM for another thread, even of its own
 * group), so the handler thread queues it as SI_QUEUE, the page's address
 * in si_value too.
 */
static sigjmp_buf sigbus_jmp;
static volatile sig_atomic_t sigbus_code;
static void *volatile sigbus_addr, *volatile sigbus_value;

static void record_sigbus(int sig, siginfo_t *si, void *uc)
{
	sigbus_code = si->si_code;
	sigbus_addr = si->si_addr;
	sigbus_value = si->si_value.sival_ptr;
	siglongjmp(sigbus_jmp, 1);
}

T_POLICY_PARAMS(fault, fill_error_sigbus_says_where)
ParameterizedTest(enum uspf_policy_id *policy, fault, fill_error_sigbus_says_where)
{
	struct uspf *u = t_runtime(*policy, 1);
	struct fill_arg fa = { .fail = 1 };
	struct uspf_backing b = { .kind = USPF_BACKING_FILL, .fill = { fill_cb, &fa } };
	struct sigaction sa = { .sa_sigaction = record_sigbus, .sa_flags = SA_SIGINFO };
	char *p = t_map(u, 4 * T_PAGE, &b);
	volatile char *touch = p + 2 * T_PAGE + 123;

	sigemptyset(&sa.sa_mask);
	cr_assert_eq(sigaction(SIGBUS, &sa, NULL), 0);
	if (!sigsetjmp(sigbus_jmp, 1)) {
		(void)*touch;
		cr_assert_fail("read a page the backing could not fill");
	}
	cr_assert_eq(sigbus_addr, p + 2 * T_PAGE, "si_addr %p, the page is at %p",
		     sigbus_addr, (void *)(p + 2 * T_PAGE));
	cr_assert_eq(sigbus_code, SI_QUEUE, "si_code %d", (int)sigbus_code);
	cr_assert_eq(sigbus_value, p + 2 * T_PAGE);
	t_quiesce(u);
	cr_assert_geq(t_counter(u, USPF_C_FILL_ERROR), 1);
	uspf_destroy(u);
}

T_POLICY_PARAMS(fault, fault_around)
ParameterizedTest(enum uspf_policy_id *policy, fault, fault_around)
{
	struct uspf_config cfg;
	unsigned long n, m;
	struct uspf *u;
	char *p;

	uspf_config_init(&cfg);
	cfg.policy = *policy;
	cfg.folio_pages = 16;
	cfg.handlers = 1;
	cfg.anon_vma_at_mmap = true;
	u = t_runtime_cfg(&cfg);
	p = t_map_pattern(u, 64 * T_PAGE, 5);

	/* One fault installs 16 pages. */
	t_assert_pattern(p, T_PAGE, 5, 0);
	t_quiesce(u);
	cr_assert_eq(t_counter(u, USPF_C_FAULTS), 1);
	cr_assert_eq(t_counter(u, USPF_C_PAGES), 16);
	cr_assert_eq(t_counter(u, USPF_C_FOLIO_EXTRA_PAGES), 15);
	t_assert_pattern(p, 16 * T_PAGE, 5, 0);
	cr_assert_eq(t_counter(u, USPF_C_FAULTS), 1);

	/*
	 * 0123456789abcdef0123456789abcdef   pages from 32
	 * ....x...........                   x present; a fault at 0 stops at it
	 *
	 * The kernel may end a multi-page UFFDIO_COPY early and say how far it
	 * got (seen here about one run in ten, at any page of the window): the
	 * faulting page is always in, the rest is fault-around and refaults.
	 */
	t_assert_pattern(p + 36 * T_PAGE, T_PAGE, 5, 36);
	t_quiesce(u);
	n = t_counter(u, USPF_C_PAGES) - 16;
	cr_assert(n >= 1 && n <= 16, "the fault at 36 installed %lu pages", n);
	t_assert_pattern(p + 32 * T_PAGE, T_PAGE, 5, 32);
	t_quiesce(u);
	m = t_counter(u, USPF_C_PAGES) - 16 - n;
	cr_assert(m >= 1 && m <= 4, "the fault at 32 installed %lu pages, past page 36", m);
	t_assert_pattern(p, 64 * T_PAGE, 5, 0);
	uspf_destroy(u);
}

/* The window stays inside one page table (one PTL) and one VMA. */
Test(fault, fault_around_stops_at_pmd_and_vma_end)
{
	struct uspf_config cfg;
	unsigned long n;
	struct uspf *u;
	char *p, *q;

	uspf_config_init(&cfg);
	cfg.folio_pages = 64;
	cfg.handlers = 1;
	cfg.anon_vma_at_mmap = true;
	u = t_runtime_cfg(&cfg);
	p = t_map_pattern(u, 4ul << 20, 8);
	/* The page 4 pages before a 2 MiB boundary inside the region. */
	q = (char *)((((unsigned long)p + (3ul << 20)) & ~((2ul << 20) - 1)) - 4 * T_PAGE);
	t_assert_pattern(q, T_PAGE, 8, (uint64_t)(q - p) / T_PAGE);
	t_quiesce(u);
	/* At most 4 (never past the boundary); fewer if the kernel ends the copy early. */
	n = t_counter(u, USPF_C_PAGES);
	cr_assert(n >= 1 && n <= 4, "%lu pages before a 2 MiB boundary", n);
	/* The last 2 pages of the VMA (unless a 2 MiB boundary falls between them). */
	q = p + (4ul << 20) - 2 * T_PAGE;
	t_assert_pattern(q, T_PAGE, 8, (uint64_t)(q - p) / T_PAGE);
	t_quiesce(u);
	n = t_counter(u, USPF_C_PAGES) - n;
	cr_assert(n >= 1 && n <= ((((unsigned long)q + T_PAGE) & ((2ul << 20) - 1)) == 0 ? 1ul : 2ul),
		  "%lu pages at the end of the VMA", n);
	uspf_destroy(u);
}

/*
 * The model merges two adjacent zero mappings that the kernel keeps apart
 * (one has MAP_NORESERVE: no VM_ACCOUNT).  A fault-around window from the
 * first one's last page crosses the real boundary: the kernel refuses the
 * whole copy (ENOENT).  The faulting page must still be installed - a
 * wake alone would refault into the same window for ever (issue 12).
 *
 *   01234
 *   AA       uspf_mmap(MAP_FIXED), 2 pages
 *     BBB    uspf_mmap(MAP_FIXED | MAP_NORESERVE), 3 pages
 *    x       touched: window [1, 5) crosses A|B
 */
ParameterizedTestParameters(fault, window_across_a_real_vma_boundary)
{
	static unsigned int fa[] = { 2, 16 };

	return cr_make_param_array(unsigned int, fa, 2);
}

ParameterizedTest(unsigned int *fault_around, fault, window_across_a_real_vma_boundary)
{
	struct uspf_config cfg;
	struct uspf *u;
	char *base;
	void *a, *b;
	int i;

	uspf_config_init(&cfg);
	cfg.folio_pages = *fault_around;
	cfg.handlers = 1;
	u = t_runtime_cfg(&cfg);
	base = mmap(NULL, 5 * T_PAGE, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	cr_assert_neq(base, MAP_FAILED);
	cr_assert_eq(uspf_mmap(u, base, 2 * T_PAGE, PROT_READ | PROT_WRITE,
			       MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, NULL, &a), 0);
	cr_assert_eq(uspf_mmap(u, base + 2 * T_PAGE, 3 * T_PAGE, PROT_READ | PROT_WRITE,
			       MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED | MAP_NORESERVE, NULL, &b), 0);
	/* A write fault: the copy path (a read would take the zeropage path, the same fix). */
	base[T_PAGE + 7] = 42;
	cr_assert_eq(base[T_PAGE + 7], 42);
	(void)*(volatile char *)(base + 4 * T_PAGE);		/* a read, from B's last page */
	for (i = 0; i < 5; i++)
		base[i * T_PAGE] = (char)i;
	for (i = 0; i < 5; i++)
		cr_assert_eq(base[i * T_PAGE], (char)i);
	t_quiesce(u);
	cr_assert_leq(t_counter(u, USPF_C_FAULTS), 5, "faults refaulted: %llu",
		      (unsigned long long)t_counter(u, USPF_C_FAULTS));
	/* The model has the kernel's two VMAs: no window was even tried across them. */
	cr_assert_eq(t_counter(u, USPF_C_ENOENT), 0, "a window crossed the real boundary");
	uspf_destroy(u);
	munmap(base, 5 * T_PAGE);
}
