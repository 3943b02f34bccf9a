/* SPDX-License-Identifier: MIT */
/*
 * preload.c - libuspf-preload.so: the mmap family interposed, and the
 * process's runtime.
 *
 * Private anonymous mappings of at least USPF_MIN_SIZE go to uspf_mmap()
 * (zero backing); munmap/mprotect/madvise/mremap on ranges uspf owns go
 * through uspf_*() so the model stays right, and a range that mixes uspf
 * and ordinary memory is split.  Everything else reaches the kernel as it
 * would without us.
 *
 * Re-entry: calls made by the runtime itself (a thread-local depth while
 * inside uspf_*(), the handler threads for their whole life) and calls
 * whose return address lies in liburcu's, liburing's or this library's
 * own text pass straight through (PLATFORM-NOTES: two real deadlocks).
 *
 * fork: the prepare handler takes the runtime's mmap write lock, so no
 * mapping change is in flight; the child has no handler threads and no
 * registrations (no EVENT_FORK): it forgets the runtime (never touching
 * its threads or fd), treats the old uspf ranges as ordinary memory, and
 * creates a new runtime for new mappings.
 */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <link.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "mm/call_rcu.h"
#include "mm/fork_state.h"
#include "mm/kmem.h"
#include "preload/preload.h"
#include "preload/env.h"
#include "runtime.h"
#include "uffd/uffd.h"
#include "mm/vma.h"
#include "mm/vma_index.h"

#define EXPORT __attribute__((visibility("default")))
#define TLS_IE __attribute__((tls_model("initial-exec")))

/* liburcu-bp's fork handlers (<urcu-bp.h> maps the short names to these). */
extern void urcu_bp_before_fork(void);
extern void urcu_bp_after_fork_parent(void);
extern void urcu_bp_after_fork_child(void);

enum { RT_NONE = 0, RT_LIVE, RT_OFF };

__thread int in_runtime TLS_IE;		/* depth of uspf_*() calls on this thread */
__thread bool marked_runtime TLS_IE;	/* preload_mark_runtime_thread() */

static atomic_bool ctor_done;
static atomic_int env_state;			/* 0 unread, 1 read */
static struct preload_env env;
static __fork_state pthread_mutex_t create_lock = PTHREAD_MUTEX_INITIALIZER;
static __fork_state _Atomic int rt_state;
static __fork_state struct uspf *_Atomic runtime;
static __fork_state struct uspf *fork_locked;		/* runtime whose mmap lock prepare took */
static bool umo_said;
static int stats_fd = -1;			/* USPF_STATS: opened at the start, kept high */
static char stats_path[4096];			/* USPF_STATS, absolute, copied at the start */
static __fork_state pid_t stats_pid;				/* whose line this image writes */
static __fork_state atomic_bool stats_written;

/* Text ranges whose mmap calls pass through. */
#define MAX_TEXT 32
static struct { uintptr_t start, end; } text[MAX_TEXT];
static unsigned int nr_text;

/* ---- the real functions ---------------------------------------------- */

typedef void *(*mmap_fn)(void *, size_t, int, int, int, off_t);
typedef int (*munmap_fn)(void *, size_t);
typedef void *(*mremap_fn)(void *, size_t, size_t, int, ...);
typedef int (*mprotect_fn)(void *, size_t, int);
typedef int (*madvise_fn)(void *, size_t, int);

static mmap_fn real_mmap_p;
static munmap_fn real_munmap_p;
static mremap_fn real_mremap_p;
static mprotect_fn real_mprotect_p;
static madvise_fn real_madvise_p;

static void resolve(void)
{
	/* Raw syscalls stand in until this has run (and if dlsym fails). */
	real_mmap_p = (mmap_fn)dlsym(RTLD_NEXT, "mmap");
	real_munmap_p = (munmap_fn)dlsym(RTLD_NEXT, "munmap");
	real_mremap_p = (mremap_fn)dlsym(RTLD_NEXT, "mremap");
	real_mprotect_p = (mprotect_fn)dlsym(RTLD_NEXT, "mprotect");
	real_madvise_p = (madvise_fn)dlsym(RTLD_NEXT, "madvise");
}

static void *sys_ret_ptr(long r)
{
	return r == -1 ? MAP_FAILED : (void *)r;
}

static void *real_mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
	if (real_mmap_p)
		return real_mmap_p(addr, len, prot, flags, fd, off);
	return sys_ret_ptr(syscall(SYS_mmap, addr, len, prot, flags, fd, off));
}

static int real_munmap(void *addr, size_t len)
{
	if (real_munmap_p)
		return real_munmap_p(addr, len);
	return (int)syscall(SYS_munmap, addr, len);
}

static void *real_mremap(void *old, size_t old_len, size_t new_len, int flags, void *new_addr)
{
	if (real_mremap_p)
		return real_mremap_p(old, old_len, new_len, flags, new_addr);
	return sys_ret_ptr(syscall(SYS_mremap, old, old_len, new_len, flags, new_addr));
}

static int real_mprotect(void *addr, size_t len, int prot)
{
	if (real_mprotect_p)
		return real_mprotect_p(addr, len, prot);
	return (int)syscall(SYS_mprotect, addr, len, prot);
}

static int real_madvise(void *addr, size_t len, int advice)
{
	if (real_madvise_p)
		return real_madvise_p(addr, len, advice);
	return (int)syscall(SYS_madvise, addr, len, advice);
}

void *preload_raw_mmap(size_t len)
{
	long r = syscall(SYS_mmap, NULL, len, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	return r == -1 ? NULL : (void *)r;
}

void preload_raw_munmap(void *p, size_t len)
{
	int saved = errno;

	syscall(SYS_munmap, p, len);
	errno = saved;
}

/* ---- configuration ----------------------------------------------------- */

static void say(const char *s)
{
	size_t n = strlen(s);

	while (n) {
		ssize_t w = write(STDERR_FILENO, s, n);

		if (w <= 0)
			break;
		s += w;
		n -= (size_t)w;
	}
}

static void env_load(void)
{
	char msg[320], line[360];
	int saved;

	static pthread_mutex_t env_lock = PTHREAD_MUTEX_INITIALIZER;

	if (atomic_load_explicit(&env_state, memory_order_acquire))
		return;
	/*
	 * preload_env_read() clears env before filling it: a second thread
	 * here for the first time must wait, not read it half done.
	 */
	saved = errno;
	pthread_mutex_lock(&env_lock);
	if (!atomic_load_explicit(&env_state, memory_order_relaxed)) {
		if (preload_env_read(&env, msg, sizeof(msg))) {
			snprintf(line, sizeof(line), "uspf: %s\n", msg);
			say(line);
			exit(2);
		}
		atomic_store_explicit(&env_state, 1, memory_order_release);
	}
	pthread_mutex_unlock(&env_lock);
	errno = saved;
}

size_t preload_min_size(void)
{
	env_load();
	return env.min_size;
}

bool preload_heap_enabled(void)
{
	env_load();
	return env.heap && !env.disable;
}

/* ---- re-entry ---------------------------------------------------------- */

static int phdr_cb(struct dl_phdr_info *info, size_t size, void *arg)
{
	const char *name = info->dlpi_name;
	uintptr_t self = (uintptr_t)arg;
	bool want;
	int i;

	if (!name)
		return 0;
	want = strstr(name, "liburcu") || strstr(name, "liburing");
	for (i = 0; i < info->dlpi_phnum; i++) {
		const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
		uintptr_t s = info->dlpi_addr + ph->p_vaddr, e = s + ph->p_memsz;

		if (ph->p_type != PT_LOAD || !(ph->p_flags & PF_X))
			continue;
		if (!want && !(self >= s && self < e))
			continue;
		if (nr_text < MAX_TEXT) {
			text[nr_text].start = s;
			text[nr_text].end = e;
			nr_text++;
		}
	}
	return 0;
}

static bool from_runtime_text(const void *ra)
{
	uintptr_t a = (uintptr_t)ra;
	unsigned int i;

	for (i = 0; i < nr_text; i++)
		if (a >= text[i].start && a < text[i].end)
			return true;
	return false;
}

/* For the malloc family: true when `ra` (a caller's return address) must bypass. */
bool preload_caller_bypass(const void *ra)
{
	return preload_bypass() || from_runtime_text(ra);
}

void preload_mark_runtime_thread(void)
{
	marked_runtime = true;
}

/* Bracket every call into the runtime (the malloc family uses these too). */
void preload_enter(void)
{
	in_runtime++;
}

void preload_exit(void)
{
	in_runtime--;
}

/*
 * Signals stay blocked while a thread is inside the runtime (its locks
 * held): a handler that faulted on uspf memory, or changed a mapping,
 * would wait for the lock its own thread holds.  The kernel delivers
 * signals only on the way out of a syscall; so do we.
 */
static void sig_block(sigset_t *old)
{
	sigset_t all;

	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, old);
}

static void sig_restore(const sigset_t *old)
{
	pthread_sigmask(SIG_SETMASK, old, NULL);
}

/* ---- the runtime ------------------------------------------------------- */

static struct uspf *live_runtime(void)
{
	if (atomic_load_explicit(&rt_state, memory_order_acquire) != RT_LIVE)
		return NULL;
	return atomic_load_explicit(&runtime, memory_order_acquire);
}

#define PRELOAD_PROBE_MS 100

static void create_runtime(void)
{
	struct uspf_stats st;
	struct uspf *u = NULL;
	char line[200];
	int ret;

	if (env.disable) {
		atomic_store_explicit(&rt_state, RT_OFF, memory_order_release);
		return;
	}
	runtime_quiet = true;	/* the user-mode-only line below is ours */
	/* Asked for statistics: sample the round trip too (a fault every 100 ms). */
	if (env.stats)
		env.cfg.probe_ms = PRELOAD_PROBE_MS;
	ret = uspf_create(&u, &env.cfg);
	if (ret) {
		snprintf(line, sizeof(line), "uspf: cannot start the runtime (%s): uspf is off "
			 "for this process\n", strerror(-ret));
		say(line);
		atomic_store_explicit(&rt_state, RT_OFF, memory_order_release);
		return;
	}
	if (!uspf_stats(u, &st) && st.user_mode_only) {
		/* read(2) into fresh memory would fail with EFAULT: take nothing. */
		if (!umo_said)
			say("uspf: userfaultfd serves user-mode faults only (needs root or "
			    "vm.unprivileged_userfaultfd=1 for kernel faults): uspf is off\n");
		umo_said = true;
		uspf_destroy(u);
		atomic_store_explicit(&rt_state, RT_OFF, memory_order_release);
		return;
	}
	atomic_store_explicit(&runtime, u, memory_order_release);
	atomic_store_explicit(&rt_state, RT_LIVE, memory_order_release);
}

struct uspf *preload_runtime(void)
{
	sigset_t old;
	int saved, st;

	st = atomic_load_explicit(&rt_state, memory_order_acquire);
	if (st == RT_LIVE)
		return atomic_load_explicit(&runtime, memory_order_acquire);
	if (st == RT_OFF || !atomic_load_explicit(&ctor_done, memory_order_acquire) ||
	    preload_bypass())
		return NULL;
	saved = errno;
	sig_block(&old);
	in_runtime++;
	pthread_mutex_lock(&create_lock);
	if (atomic_load_explicit(&rt_state, memory_order_acquire) == RT_NONE)
		create_runtime();
	pthread_mutex_unlock(&create_lock);
	in_runtime--;
	sig_restore(&old);
	errno = saved;
	return live_runtime();
}

struct uspf *preload_live(void)
{
	return live_runtime();
}

bool preload_owner(void)
{
	return getpid() == stats_pid;
}

/* Runtime changes from the program's threads: one at a time, no signal inside. */
void preload_lock(sigset_t *old)
{
	sig_block(old);
	in_runtime++;
	pthread_mutex_lock(&create_lock);
}

void preload_unlock(const sigset_t *old)
{
	pthread_mutex_unlock(&create_lock);
	in_runtime--;
	sig_restore(old);
}

void preload_die(const char *why)
{
	char line[256];

	snprintf(line, sizeof(line), "uspf: %s: %s\n", why, strerror(errno));
	say(line);
	abort();
}

int preload_stats_fd(void)
{
	return stats_fd;
}

void preload_stats_fd_move(void)
{
	int fd = fcntl(stats_fd, F_DUPFD_CLOEXEC, 3);

	if (fd < 0)
		preload_die("cannot move the stats descriptor off a number the program takes");
	fd = uffd_fd_keep(fd);
	uffd_fd_close(stats_fd);
	stats_fd = fd;
}

/* ---- ranges uspf owns -------------------------------------------------- */

/*
 * The first maximal run of uspf VMAs at or above `from` that starts below
 * `end`: [*s, *e) clipped to [from, end).  False if none.
 */
static bool next_owned(struct uspf *u, unsigned long from, unsigned long end,
		       unsigned long *s, unsigned long *e)
{
	unsigned long vs, ve, ns, ne;
	bool found = false;

	mmap_read_lock(&u->mm);
	if (vma_index_find(&u->mm.index, from, &vs, &ve) && vs < end) {
		found = true;
		while (ve < end && vma_index_find(&u->mm.index, ve, &ns, &ne) && ns == ve)
			ve = ne;
	}
	mmap_read_unlock(&u->mm);
	if (!found)
		return false;
	*s = vs < from ? from : vs;
	*e = ve > end ? end : ve;
	return true;
}

bool preload_next_owned(struct uspf *u, unsigned long from, unsigned long end,
			unsigned long *s, unsigned long *e)
{
	return next_owned(u, from, end, s, e);
}

static bool owns_any(struct uspf *u, unsigned long start, unsigned long end)
{
	unsigned long s, e;

	return next_owned(u, start, end, &s, &e);
}

enum op { OP_MUNMAP, OP_MPROTECT, OP_MADVISE_ZAP };

static int uspf_part(struct uspf *u, enum op op, unsigned long s, unsigned long e, int arg)
{
	int ret;

	in_runtime++;
	switch (op) {
	case OP_MUNMAP:
		ret = uspf_munmap(u, (void *)s, e - s);
		break;
	case OP_MPROTECT:
		ret = uspf_mprotect(u, (void *)s, e - s, arg);
		break;
	default:
		ret = uspf_madvise(u, (void *)s, e - s, MADV_DONTNEED);
		break;
	}
	in_runtime--;
	return ret;
}

static int real_part(enum op op, unsigned long s, unsigned long e, int arg)
{
	int ret;

	switch (op) {
	case OP_MUNMAP:
		ret = real_munmap((void *)s, e - s);
		break;
	case OP_MPROTECT:
		ret = real_mprotect((void *)s, e - s, arg);
		break;
	default:
		ret = real_madvise((void *)s, e - s, arg);
		break;
	}
	return ret ? -errno : 0;
}

/* Apply op to [start, end): uspf's parts through uspf, the rest to the kernel. */
static int split_op(struct uspf *u, enum op op, unsigned long start, unsigned long end, int arg)
{
	unsigned long cur = start, s, e;
	int first = 0, ret;

	while (cur < end) {
		if (!next_owned(u, cur, end, &s, &e)) {
			ret = real_part(op, cur, end, arg);
			if (ret && !first)
				first = ret;
			break;
		}
		if (s > cur) {
			ret = real_part(op, cur, s, arg);
			if (ret && !first)
				first = ret;
		}
		ret = uspf_part(u, op, s, e, arg);
		if (ret && !first)
			first = ret;
		cur = e;
	}
	return first;
}

static unsigned long page_mask(void)
{
	static unsigned long ps;

	if (!ps)
		ps = (unsigned long)sysconf(_SC_PAGESIZE);
	return ps - 1;
}

/* Range checks uspf cannot do for us: leave those calls to the kernel. */
static bool plain_range(void *addr, size_t len, unsigned long *end)
{
	unsigned long a = (unsigned long)addr, pm = page_mask();

	if ((a & pm) || !len || len > ~0ul - a - pm)
		return false;
	*end = a + ((len + pm) & ~pm);
	return true;
}

/* A MAP_FIXED or MREMAP_FIXED the kernel will do over uspf memory: drop it from the model. */
static void forget_owned(struct uspf *u, void *addr, size_t len)
{
	unsigned long end, cur, s, e;

	if (!plain_range(addr, len, &end))
		return;
	cur = (unsigned long)addr;
	while (cur < end && next_owned(u, cur, end, &s, &e)) {
		uspf_part(u, OP_MUNMAP, s, e, 0);
		cur = e;
	}
}

/* ---- the wrappers ------------------------------------------------------ */

#define TAKE_FLAGS (MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED | MAP_FIXED_NOREPLACE | MAP_NORESERVE)

static bool takes(size_t len, int prot, int flags)
{
	if ((flags & MAP_TYPE) != MAP_PRIVATE || !(flags & MAP_ANONYMOUS) ||
	    (flags & ~TAKE_FLAGS))
		return false;	/* MAP_SHARED, MAP_STACK, MAP_GROWSDOWN, MAP_HUGETLB, ... */
	if (prot & ~(PROT_READ | PROT_WRITE | PROT_EXEC))
		return false;
	if (!atomic_load_explicit(&ctor_done, memory_order_acquire))
		return false;
	return len >= env.min_size;
}

static void *do_mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off,
		     const void *ra)
{
	struct uspf *u;
	sigset_t old;
	void *out;
	int ret, saved = errno;

	if (preload_bypass() || from_runtime_text(ra))
		return real_mmap(addr, len, prot, flags, fd, off);
	if (takes(len, prot, flags) && (u = preload_runtime())) {
		sig_block(&old);
		in_runtime++;
		ret = uspf_mmap(u, addr, len, prot, flags & TAKE_FLAGS, NULL, &out);
		in_runtime--;
		sig_restore(&old);
		if (!ret) {
			errno = saved;
			return out;
		}
		if (ret == -EEXIST && (flags & MAP_FIXED_NOREPLACE)) {
			errno = EEXIST;
			return MAP_FAILED;
		}
		/* Anything else: the kernel's mapping, with the kernel's answer. */
	}
	u = live_runtime();
	if (u && (flags & MAP_FIXED) && !(flags & MAP_FIXED_NOREPLACE)) {
		void *p;

		sig_block(&old);
		forget_owned(u, addr, len);
		errno = saved;
		p = real_mmap(addr, len, prot, flags, fd, off);
		saved = errno;
		sig_restore(&old);
		errno = saved;
		return p;
	}
	errno = saved;
	return real_mmap(addr, len, prot, flags, fd, off);
}

EXPORT void *mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
	return do_mmap(addr, len, prot, flags, fd, off, __builtin_return_address(0));
}

EXPORT void *mmap64(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
	return do_mmap(addr, len, prot, flags, fd, off, __builtin_return_address(0));
}

static int set_errno(int ret)
{
	if (!ret)
		return 0;
	errno = -ret;
	return -1;
}

EXPORT int munmap(void *addr, size_t len)
{
	struct uspf *u = live_runtime();
	unsigned long end;
	sigset_t old;
	int saved = errno, ret;

	if (!u || preload_bypass() || from_runtime_text(__builtin_return_address(0)) ||
	    !plain_range(addr, len, &end))
		return real_munmap(addr, len);
	sig_block(&old);
	if (!owns_any(u, (unsigned long)addr, end)) {
		sig_restore(&old);
		errno = saved;
		return real_munmap(addr, len);
	}
	ret = split_op(u, OP_MUNMAP, (unsigned long)addr, end, 0);
	sig_restore(&old);
	if (!ret)
		errno = saved;
	return set_errno(ret);
}

EXPORT int mprotect(void *addr, size_t len, int prot)
{
	struct uspf *u = live_runtime();
	unsigned long end;
	sigset_t old;
	int saved = errno, ret;

	if (!u || preload_bypass() || from_runtime_text(__builtin_return_address(0)) ||
	    (prot & ~(PROT_READ | PROT_WRITE | PROT_EXEC)) ||
	    !plain_range(addr, len, &end))
		return real_mprotect(addr, len, prot);
	sig_block(&old);
	if (!owns_any(u, (unsigned long)addr, end)) {
		sig_restore(&old);
		errno = saved;
		return real_mprotect(addr, len, prot);
	}
	ret = split_op(u, OP_MPROTECT, (unsigned long)addr, end, prot);
	sig_restore(&old);
	if (!ret)
		errno = saved;
	return set_errno(ret);
}

EXPORT int madvise(void *addr, size_t len, int advice)
{
	struct uspf *u = live_runtime();
	unsigned long end;
	sigset_t old;
	int saved = errno, ret;
	bool zap = advice == MADV_DONTNEED || advice == MADV_FREE;

#ifdef MADV_DONTNEED_LOCKED
	zap = zap || advice == MADV_DONTNEED_LOCKED;
#endif
	if (!u || !zap || preload_bypass() || from_runtime_text(__builtin_return_address(0)) ||
	    !plain_range(addr, len, &end))
		return real_madvise(addr, len, advice);
	sig_block(&old);
	if (!owns_any(u, (unsigned long)addr, end)) {
		sig_restore(&old);
		errno = saved;
		return real_madvise(addr, len, advice);
	}
	ret = split_op(u, OP_MADVISE_ZAP, (unsigned long)addr, end, advice);
	sig_restore(&old);
	if (!ret)
		errno = saved;
	return set_errno(ret);
}

EXPORT void *mremap(void *old, size_t old_len, size_t new_len, int flags, ...)
{
	struct uspf *u = live_runtime();
	void *new_addr = NULL, *out;
	unsigned long end;
	sigset_t sigs;
	va_list ap;
	int saved = errno, ret;

	/* glibc passes the fifth argument on for either flag: so do we. */
	if (flags & (MREMAP_FIXED | MREMAP_DONTUNMAP)) {
		va_start(ap, flags);
		new_addr = va_arg(ap, void *);
		va_end(ap);
	}
	if (!u || preload_bypass() || from_runtime_text(__builtin_return_address(0)))
		return real_mremap(old, old_len, new_len, flags, new_addr);
	sig_block(&sigs);
	if (old_len && plain_range(old, old_len, &end) && owns_any(u, (unsigned long)old, end)) {
		in_runtime++;
		ret = uspf_mremap(u, old, old_len, new_len, flags, new_addr, &out);
		in_runtime--;
		sig_restore(&sigs);
		if (ret) {
			errno = -ret;
			return MAP_FAILED;
		}
		errno = saved;
		return out;
	}
	if ((flags & MREMAP_FIXED) && new_len)
		forget_owned(u, new_addr, new_len);
	errno = saved;
	out = real_mremap(old, old_len, new_len, flags, new_addr);
	saved = errno;
	sig_restore(&sigs);
	errno = saved;
	return out;
}

/* ---- fork -------------------------------------------------------------- */

/* Tells mm/call_rcu.c, in every image of this process, that urcu-bp's fork handlers are ours. */
EXPORT const char uspf_preload_fork_hooks = 1;

static __fork_state bool fork_held;		/* fork_prepare() took create_lock */
/*
 * Starts the fork-state section on a page, so that the whole section (under
 * 2 KiB) is one.  Defined after this file's other members: GCC emits them
 * in reverse order, and this object is the first the module links.
 */
static char fork_state_page __attribute__((section("uspf_fork_state"), aligned(4096), used));

static void fork_prepare(void)
{
	struct uspf *u;

	/*
	 * No runtime: nothing to drain, and no page of ours written at fork
	 * (each one is a copy-on-write fault in parent and child).  One being
	 * created meanwhile holds create_lock, which the child makes anew.
	 */
	fork_held = atomic_load_explicit(&rt_state, memory_order_acquire) == RT_LIVE;
	if (fork_held) {
		pthread_mutex_lock(&create_lock);
		u = live_runtime();
		if (u)
			mmap_write_lock(&u->mm);
		fork_locked = u;
	}
	/*
	 * From here to the end of the parent's and the child's handlers this
	 * thread bypasses: liburcu's fork handlers allocate, and an allocation
	 * from uspf memory would need the lock just taken.
	 */
	in_runtime++;
}

static void fork_parent(void)
{
	if (!fork_held)
		return;
	if (fork_locked)
		mmap_write_unlock(&fork_locked->mm);
	fork_locked = NULL;
	pthread_mutex_unlock(&create_lock);
}

static void fork_child(void)
{
	/*
	 * No handler threads here and no registrations: the old runtime's
	 * memory is ordinary memory now.  Forget it, unfreed and locked.
	 * This runs first among the child handlers, before liburcu's.
	 */
	fork_locked = NULL;
	preload_fd_fork_child();
	preload_threads_fork_child();
	stats_pid = getpid();
	atomic_store_explicit(&stats_written, false, memory_order_relaxed);
	atomic_store_explicit(&runtime, NULL, memory_order_relaxed);
	atomic_store_explicit(&rt_state, env.disable ? RT_OFF : RT_NONE, memory_order_release);
	pthread_mutex_init(&create_lock, NULL);
}

/* Last of the parent's and the child's handlers. */
static void fork_done(void)
{
	in_runtime--;
}

/* ---- statistics at exit ------------------------------------------------ */

static void program_name(char *buf, size_t len)
{
	int fd = open("/proc/self/comm", O_RDONLY | O_CLOEXEC);
	ssize_t n = fd >= 0 ? read(fd, buf, len - 1) : -1;

	if (fd >= 0)
		close(fd);
	if (n <= 0)
		n = 0;
	buf[n] = '\0';
	if (n && buf[n - 1] == '\n')
		buf[n - 1] = '\0';
}

static size_t json_str(char *dst, size_t len, const char *s)
{
	size_t o = 0;

	for (; *s && o + 7 < len; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\') {
			dst[o++] = '\\';
			dst[o++] = (char)c;
		} else if (c < 0x20) {
			o += (size_t)snprintf(dst + o, len - o, "\\u%04x", c);
		} else {
			dst[o++] = (char)c;
		}
	}
	dst[o] = '\0';
	return o;
}

#define APPEND(...) do { \
	if (o < sizeof(buf)) \
		o += (size_t)snprintf(buf + o, sizeof(buf) - o, __VA_ARGS__); \
} while (0)

/*
 * One write on the descriptor opened at the start (O_APPEND: lines of
 * several processes never mix).  A failure is said on stderr: the
 * program's exit status is not ours to change.
 */
static void stats_put(const char *buf, size_t len)
{
	char line[4200 + 80];
	ssize_t w = stats_fd >= 0 ? write(stats_fd, buf, len) : -1;

	if (w == (ssize_t)len)
		return;
	if (stats_fd < 0) {
		if (!strcmp(env.stats, "-"))
			say(buf);	/* stderr was closed at the start: try it */
		return;		/* the path could not be opened: said at the start */
	}
	snprintf(line, sizeof(line), "uspf: pid %d: cannot write its stats line to %s: %s\n",
		 (int)getpid(), !strcmp(env.stats, "-") ? "stderr" : stats_path,
		 w < 0 ? strerror(errno) : "short write");
	say(line);
}

static void write_stats(void)
{
	static struct uspf_stats st;
	static char buf[24576];	/* every counter and a histogram of up to 512 buckets */
	char comm[64], name[160];
	struct uspf *u = live_runtime();
	const char *policy = uspf_policy_name(env.cfg.policy);
	uint64_t faults, trips, handle_mean, trip_mean;
	unsigned int c, n;
	size_t o = 0;

	memset(&st, 0, sizeof(st));
	if (u) {
		in_runtime++;
		uspf_stats(u, &st);
		in_runtime--;
		policy = uspf_policy_name(st.policy);
	}
	program_name(comm, sizeof(comm));
	json_str(name, sizeof(name), comm);
	faults = st.counters[USPF_C_FAULTS];
	trips = st.counters[USPF_C_ROUND_TRIPS];
	handle_mean = faults ? st.counters[USPF_C_HANDLE_NS] / faults : 0;
	trip_mean = trips ? st.counters[USPF_C_ROUND_TRIP_NS] / trips : 0;
	if (!strcmp(env.stats, "-")) {
		APPEND("uspf: pid %d (%s): policy %s, %s, %" PRIu64 " faults served, %" PRIu64
		       " pages installed; handling mean %" PRIu64 " ns (p50 %" PRIu64 ", p99 %" PRIu64
		       "); round trip mean ", (int)getpid(), comm, policy, u ? "on" : "off", faults,
		       st.counters[USPF_C_PAGES], handle_mean, uspf_stats_percentile(&st, 50),
		       uspf_stats_percentile(&st, 99));
		if (trips)
			APPEND("%" PRIu64 " ns (%" PRIu64 " probe%s)\n", trip_mean, trips,
			       trips == 1 ? "" : "s");
		else
			APPEND("- (no probe yet: it samples every %d ms)\n", PRELOAD_PROBE_MS);
		for (c = 0; c < USPF_NR_COUNTERS; c++)
			if (st.counters[c])
				APPEND("  %-24s %" PRIu64 "\n", uspf_counter_name(c), st.counters[c]);
		stats_put(buf, o < sizeof(buf) ? o : sizeof(buf) - 1);
		return;
	}
	APPEND("{\"pid\":%d,\"program\":\"%s\",\"policy\":\"%s\",\"uspf\":%s,\"faults\":%" PRIu64
	       ",\"counters\":{", (int)getpid(), name, policy, u ? "true" : "false",
	       st.counters[USPF_C_FAULTS]);
	for (c = 0; c < USPF_NR_COUNTERS; c++)
		APPEND("%s\"%s\":%" PRIu64, c ? "," : "", uspf_counter_name(c), st.counters[c]);
	APPEND("},\"latency_ns\":{\"p50\":%" PRIu64 ",\"p99\":%" PRIu64 "},\"pages\":%" PRIu64
	       ",\"handle_mean_ns\":%" PRIu64 ",\"round_trip_mean_ns\":", uspf_stats_percentile(&st, 50),
	       uspf_stats_percentile(&st, 99), st.counters[USPF_C_PAGES], handle_mean);
	if (trips)
		APPEND("%" PRIu64, trip_mean);
	else
		APPEND("null");
	APPEND(",\"round_trip_probes\":%" PRIu64 ",\"hist\":[", trips);
	/* The handling-time histogram's non-zero buckets: `uspf compare` merges processes. */
	for (c = 0, n = 0; c < USPF_HIST_BUCKETS; c++)
		if (st.hist[c])
			APPEND("%s[%u,%" PRIu64 "]", n++ ? "," : "", c, st.hist[c]);
	APPEND("]}\n");
	stats_put(buf, o < sizeof(buf) ? o : sizeof(buf) - 1);
}

/*
 * One line per process, whichever way out comes first.  A vfork() child
 * shares the parent's memory and runs no fork handlers: its pid differs
 * from stats_pid, and the parent's runtime is not its to report.
 */
static void write_stats_once(void)
{
	if (!env.stats || getpid() != stats_pid ||
	    atomic_exchange_explicit(&stats_written, true, memory_order_acq_rel))
		return;
	write_stats();
}

/*
 * _exit(2) skips the destructors; a program that leaves by it (a forked
 * worker, a daemon's child) still gets its line.  exit(3) reaches the
 * kernel through glibc's internal _exit, not this one.
 */
EXPORT void _exit(int status)
{
	int saved = errno;

	write_stats_once();
	errno = saved;
	for (;;)
		syscall(SYS_exit_group, status);
}

EXPORT void _Exit(int status)
{
	_exit(status);
}

/*
 * USPF_STATS is read once, here: the path copied and made absolute (the
 * program may overwrite its environment - redis rewrites its title over
 * it - or change directory), the file opened now, while the program still
 * has the rights it started with, and kept on a high descriptor.  "-" is a
 * copy of stderr (programs may close stderr at exit before we run).
 */
static void stats_open(void)
{
	char line[4200 + 80];
	size_t n = 0;

	if (!env.stats)
		return;
	if (!strcmp(env.stats, "-")) {
		stats_fd = uffd_fd_keep(fcntl(STDERR_FILENO, F_DUPFD_CLOEXEC, 3));
		return;
	}
	if (env.stats[0] != '/' && getcwd(stats_path, sizeof(stats_path) - 1)) {
		n = strlen(stats_path);
		if (n && stats_path[n - 1] != '/')
			stats_path[n++] = '/';
	}
	snprintf(stats_path + n, sizeof(stats_path) - n, "%s", env.stats);
	env.stats = stats_path;
	stats_fd = uffd_fd_keep(open(stats_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644));
	if (stats_fd < 0) {
		snprintf(line, sizeof(line), "uspf: USPF_STATS=%s: %s: pid %d writes no stats line\n",
			 stats_path, strerror(errno), (int)getpid());
		say(line);
	}
}

/* ---- constructor and destructor ---------------------------------------- */

__attribute__((constructor)) static void preload_init(void)
{
	static bool once;

	if (once)
		return;
	once = true;
	env_load();
	resolve();
	preload_fd_init();
	preload_uffd_init();
	preload_threads_init();
	stats_pid = getpid();
	stats_open();
	dl_iterate_phdr(phdr_cb, (void *)(uintptr_t)&preload_init);
	/*
	 * Prepare handlers run in reverse order of registration, the parent's
	 * and the child's in order.  Prepare: ours (mapping changes drained),
	 * then urcu-bp's (the grace-period and registry locks), then the
	 * callback queue's and kmem's: their locks are the innermost (a writer
	 * holding the mmap lock queues callbacks; callbacks free into kmem),
	 * so they are registered first.  Child: ours first (the old runtime
	 * forgotten before liburcu's handlers allocate), then liburcu's, then
	 * the end of our bypass.  No handler waits for a thread: a fork costs
	 * a few lock round trips.
	 */
	kmem_atfork_register();
	mm_call_rcu_atfork();		/* sees uspf_preload_fork_hooks: leaves urcu-bp's to us */
	pthread_atfork(NULL, fork_parent, fork_child);
	pthread_atfork(urcu_bp_before_fork, urcu_bp_after_fork_parent, urcu_bp_after_fork_child);
	pthread_atfork(fork_prepare, fork_done, fork_done);
	if (env.disable)
		atomic_store_explicit(&rt_state, RT_OFF, memory_order_release);
	atomic_store_explicit(&ctor_done, true, memory_order_release);
}

__attribute__((destructor)) static void preload_fini(void)
{
	int saved = errno;

	/* The runtime stays: other threads may still run and fault. */
	write_stats_once();
	errno = saved;
}
