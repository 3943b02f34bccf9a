/* SPDX-License-Identifier: MIT */
/*
 * mapping.c - the writers: uspf_mmap, uspf_munmap, uspf_mprotect,
 * uspf_mremap, uspf_madvise.
 *
 * Each takes the mmap write lock and changes the real mapping and the
 * model together, in the kernel's order (mm/mmap.c, mm/vma.c,
 * mm/mprotect.c, mm/mremap.c, mm/madvise.c): a VMA about to change is
 * write-locked for the per-VMA lock policies (vma_start_write()) and its
 * fields and page-table zaps change only inside vm_write_begin()/
 * vm_write_end() for the speculative ones; a removed VMA is marked
 * detached, erased from the index, then freed (after a grace period, or at
 * once into the type-safe cache); then the range's PTLs are taken and
 * dropped (zap_listed()), so a speculative commit either landed before or
 * sees the change, and the real syscall runs holding no PTL (mremap's
 * moved source: after its calls, while the mmap write lock keeps the
 * range from being mapped again).
 *
 * Lock order (Documentation/mm/process_addrs.rst; uspf(7), LOCK ORDER),
 * outermost first; each lock only inside those to its left:
 *
 *   writer         mmap_lock      VMA write lock +    i_mmap_rwsem     PTLs (taken, dropped:
 *                                 vm_write_begin                       a barrier before the
 *                                                                      real call)
 *   uspf_mmap      write          each VMA replaced   new file VMA     MAP_FIXED's range
 *                                 (the new one, not   linked
 *                                 yet visible)
 *   uspf_munmap    write, then    each VMA removed    unlinked at      each run of VMAs
 *                  read (after    (downgrade ends     erase
 *                  the erase)     them)
 *   uspf_mprotect  write          each VMA in range   split / merge    the range
 *                                 (flags set here)
 *   uspf_mremap    write          source, target      split / merge /  a FIXED target's and the
 *                                 and tail VMAs       link / unlink    tail's before the call,
 *                                                                      the moved source's after
 *   uspf_madvise   read (spf:     spf only: each VMA  -                each run
 *                  write)         in range
 *
 * The kernel has the last word: after a real call, where the model's
 * rules cannot know what the kernel did (which neighbours vma_merge()
 * joined, how far a failed mprotect got), the writers ask it
 * (kernel_maps.c) and the model takes its boundaries and protection
 * (kernel_sync()).  A real call that fails fails the API call.
 */
#include <errno.h>
#include <string.h>
#include <stdbool.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "backing.h"
#include "kernel_maps.h"
#include "mm/file.h"
#include "runtime.h"
#include "mm/vma.h"

#define USPF_MAP_ACCEPTED (MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED | MAP_FIXED_NOREPLACE | MAP_NORESERVE)

#ifndef MREMAP_DONTUNMAP
#define MREMAP_DONTUNMAP 4	/* Linux 5.7; older C libraries lack the name */
#endif

/*
 * The raw syscalls: under `uspf run` the libc wrappers are interposed and
 * would re-enter the runtime.
 */
static long sys_mmap(unsigned long addr, size_t len, int prot, int flags)
{
	return syscall(SYS_mmap, addr, len, prot, flags, -1, 0);
}

static int sys_ret(long r)
{
	return r < 0 ? -errno : 0;
}

static bool range_valid(unsigned long start, size_t len)
{
	return !(start & ~PAGE_MASK) && len && start + len > start;
}

static size_t page_align(size_t len)
{
	return (len + PAGE_SIZE - 1) & PAGE_MASK;
}

static unsigned long vm_flags_of(int prot)
{
	unsigned long f = VM_UFFD_MISSING;

	if (prot & PROT_READ)
		f |= VM_READ;
	if (prot & PROT_WRITE)
		f |= VM_WRITE;
	if (prot & PROT_EXEC)
		f |= VM_EXEC;
	return f;
}

/* find_vma(): the first VMA ending above addr. */
static struct uspf_vma *find_vma(struct uspf_mm *mm, unsigned long addr)
{
	return vma_index_find(&mm->index, addr, NULL, NULL);
}

/*
 * Insert a fully set-up VMA, write-locked as the kernel's new VMAs are:
 * a per-VMA reader can take it only after mmap_write_unlock().
 */
static int vma_insert(struct uspf_mm *mm, struct uspf_vma *vma)
{
	int ret;

	vma_start_write(vma);
	ret = vma_index_insert(&mm->index, vma->vm_start, vma->vm_end, vma);
	if (ret)
		return ret;
	vma_mark_attached(vma);
	return 0;
}

/*
 * mmap_region()'s link of a new VMA: into the index and, file-backed, into
 * its file's i_mmap.  Before Yu Ma's 2023 reordering the index insert ran
 * inside i_mmap_lock_write() though it never touches i_mmap; after it,
 * only __vma_link_file() does (mm->immap_reorder).  The VMA is in the
 * index before it is in i_mmap, but write-locked until mmap_write_unlock()
 * (Liam Howlett's concern: not readable until fully set up).
 */
static int vma_attach(struct uspf_mm *mm, struct uspf_vma *vma)
{
	struct uspf_file *f = vma->vm_file;
	uint64_t t0 = 0;
	int ret;

	if (!f)
		return vma_insert(mm, vma);
	if (!mm->immap_reorder)
		i_mmap_lock_write(mm, f, &t0);
	ret = vma_insert(mm, vma);
	if (!ret) {
		if (mm->immap_reorder)
			i_mmap_lock_write(mm, f, &t0);
		vma_link_file(vma);
	}
	if (!ret || !mm->immap_reorder)
		i_mmap_unlock_write(mm, f, t0);
	return ret;
}

/* Out of the index and out of its file's i_mmap. */
static void vma_erase(struct uspf_mm *mm, struct uspf_vma *vma)
{
	uint64_t t0;

	vma_index_erase(&mm->index, vma->vm_start);
	if (vma->vm_file) {
		i_mmap_lock_write(mm, vma->vm_file, &t0);
		vma_unlink_file(vma);
		i_mmap_unlock_write(mm, vma->vm_file, t0);
	}
}

/* Write-lock and enter a VMA that is about to change (vma_start_write + vm_write_begin). */
static void vma_write_enter(struct uspf_vma *vma)
{
	vma_start_write(vma);
	vm_write_begin(vma);
}

/*
 * __split_vma(): vma keeps [vm_start, addr), a new VMA gets [addr, vm_end)
 * with the same identity (backing, pgoff of each page, anon_vma).
 */
static int split_vma(struct uspf_mm *mm, struct uspf_vma *vma, unsigned long addr)
{
	bool immap_first = inject(mm, INJ_IMMAP_BEFORE_VMA_LOCK);
	struct uspf_vma *new = vm_area_dup(vma);
	unsigned long old_end = vma->vm_end;
	uint64_t t0 = 0;
	int ret;

	if (!new)
		return -ENOMEM;
	new->vm_start = addr;
	new->vm_pgoff = vma->vm_pgoff + ((addr - vma->vm_start) >> PAGE_SHIFT);
	/*
	 * __split_vma(): vma_start_write() first, then vma_prepare() takes
	 * i_mmap_rwsem, so that no i_mmap reader sees a range half-changed.
	 * (Never the other way: the VMA write lock waits for VMA readers.)
	 */
	if (vma->vm_file && immap_first)
		i_mmap_lock_write(mm, vma->vm_file, &t0);
	vma_write_enter(vma);
	if (vma->vm_file && !immap_first)
		i_mmap_lock_write(mm, vma->vm_file, &t0);
	/*
	 * The new half is write-locked and attached before anyone can find
	 * it (vma_iter_store_new()); the index changes in one step, so a
	 * lock-free reader finds the whole VMA or both halves, never no VMA
	 * at an address mapped throughout.
	 */
	vma_start_write(new);
	vma_mark_attached(new);
	CMM_STORE_SHARED(vma->vm_end, addr);
	ret = vma_index_split(&mm->index, vma->vm_start, addr, new);
	if (ret) {
		CMM_STORE_SHARED(vma->vm_end, old_end);
		vma_mark_detached(new);
	} else if (new->vm_file) {
		vma_link_file(new);
	}
	vm_write_end(vma);
	if (vma->vm_file)
		i_mmap_unlock_write(mm, vma->vm_file, t0);
	if (ret)
		vm_area_free(new);
	return ret;
}

/* Make start and end VMA boundaries (where a VMA spans them). */
static int split_at_edges(struct uspf_mm *mm, unsigned long start, unsigned long end)
{
	struct uspf_vma *vma = find_vma(mm, start);
	int ret;

	if (vma && vma->vm_start < start && vma->vm_end > start) {
		ret = split_vma(mm, vma, start);
		if (ret)
			return ret;
	}
	vma = find_vma(mm, end - 1);
	if (vma && vma->vm_start < end && vma->vm_end > end)
		return split_vma(mm, vma, end);
	return 0;
}

/*
 * First half of do_vmi_munmap(): split at the edges, then write-lock,
 * enter and mark detached every VMA inside [start, end), and list them.
 * The caller erases them from the index (detach_erase()) and zaps the real
 * memory, in the order it needs, then detach_finish() frees them; or, if
 * the zap failed, detach_cancel() attaches them again.
 */
static int detach_range(struct uspf_mm *mm, unsigned long start, unsigned long end,
			struct uspf_vma **gone)
{
	struct uspf_vma *vma, **tail = gone;
	unsigned long addr = start;
	int ret;

	*gone = NULL;
	ret = split_at_edges(mm, start, end);
	if (ret)
		return ret;
	while (addr < end && (vma = find_vma(mm, addr)) && vma->vm_start < end) {
		vma_write_enter(vma);
		vma_mark_detached(vma);
		vma->detach_next = NULL;
		*tail = vma;
		tail = &vma->detach_next;
		addr = vma->vm_end;
	}
	return 0;
}

static void detach_erase(struct uspf_mm *mm, struct uspf_vma *gone)
{
	for (; gone; gone = gone->detach_next)
		vma_erase(mm, gone);
}

/* End the write sections and free; the VMAs are out of the index. */
static void detach_finish(struct uspf_vma *gone)
{
	struct uspf_vma *next;

	for (; gone; gone = next) {
		next = gone->detach_next;
		vm_write_end(gone);
		vm_area_free_rcu(gone);
	}
}

static void detach_cancel(struct uspf_vma *gone)
{
	for (; gone; gone = gone->detach_next) {
		vma_mark_attached(gone);
		vm_write_end(gone);
	}
}

/*
 * vma's pages are being taken away - unmapped, replaced, moved - marked
 * while the range's PTLs are held (debug checks: a commit after this installs pages
 * filled for memory that is gone).  MADV_DONTNEED does not count: the
 * pages refill with the same contents, so a fill from before it is not
 * stale (spf-adaptive, with no sequence count, commits across one).
 */
static void vma_zapped(struct uspf_vma *vma)
{
	atomic_fetch_add_explicit(&vma->vm_zaps, 1, memory_order_release);
}

static void zapped_listed(struct uspf_vma *gone)
{
	for (; gone; gone = gone->detach_next)
		vma_zapped(gone);
}

/*
 * Zap the listed VMAs' memory: one real munmap per run of adjacent VMAs
 * (a run is one real range: per-VMA calls could split a real VMA the
 * whole call would not).  0 or the first call's error.
 *
 * The PTLs are a barrier here, not held across the call.  The VMAs are
 * already changed where every fault path can see it (detached, in their
 * write sections, write-locked, or out of the index), so once each
 * stripe has been taken and dropped, a commit that validated before has
 * finished its copy and every later one will abort; the real munmap then
 * runs with no PTL held, as the kernel takes each page table's lock only
 * for its own stretch of the zap and never sleeps holding one.
 */
static int zap_listed(struct uspf_mm *mm, struct uspf_vma *gone)
{
	struct uspf_vma *last, *v;
	int ret = 0;

	while (gone) {
		for (last = gone; last->detach_next && last->detach_next->vm_start == last->vm_end;)
			last = last->detach_next;
		ptl_lock_range(&mm->ptl, gone->vm_start, last->vm_end);
		for (v = gone; v != last->detach_next; v = v->detach_next)
			vma_zapped(v);
		ptl_unlock_range(&mm->ptl, gone->vm_start, last->vm_end);
		if (syscall(SYS_munmap, gone->vm_start, last->vm_end - gone->vm_start) && !ret)
			ret = -errno;
		gone = last->detach_next;
	}
	return ret;
}

/* vma_merge(): next folds into prev; next is detached and freed after a grace period. */
static void vma_merge_pair(struct uspf_mm *mm, struct uspf_vma *prev, struct uspf_vma *next)
{
	bool immap_first = inject(mm, INJ_IMMAP_BEFORE_VMA_LOCK);
	uint64_t t0 = 0;

	/* vma_merge_existing_range(): the VMAs write-locked, then vma_prepare(). */
	if (prev->vm_file && immap_first)
		i_mmap_lock_write(mm, prev->vm_file, &t0);
	vma_write_enter(prev);
	vma_write_enter(next);
	if (prev->vm_file && !immap_first)
		i_mmap_lock_write(mm, prev->vm_file, &t0);
	vma_mark_detached(next);
	if (next->vm_file)
		vma_unlink_file(next);
	if (!prev->anon_vma && next->anon_vma)
		anon_vma_share(prev, next);
	/*
	 * prev covers next's range first, then the index folds next into it
	 * in one step: no reader finds no VMA in between.  Across two leaves
	 * (or with no memory for the copy) erase and extend, with a hole for
	 * that moment: readers then fall back and wait for us.
	 */
	CMM_STORE_SHARED(prev->vm_end, next->vm_end);
	if (vma_index_merge(&mm->index, prev->vm_start, next->vm_start)) {
		vma_index_erase(&mm->index, next->vm_start);
		vma_index_set_range(&mm->index, prev->vm_start, prev->vm_start, prev->vm_end);
	}
	vm_write_end(next);
	vm_write_end(prev);
	if (prev->vm_file)
		i_mmap_unlock_write(mm, prev->vm_file, t0);
	vm_area_free_rcu(next);
}

/*
 * Two model VMAs the kernel keeps in one real VMA are one model VMA too,
 * if nothing of the model's own tells them apart: the same backing, and
 * for a backing with contents, its pages following on (zero-filled memory
 * has no offsets to keep).  Different backings stay apart, as two files
 * would in the kernel.
 */
static bool backing_joins(const struct uspf_vma *prev, const struct uspf_vma *next)
{
	return prev->vm_flags == next->vm_flags && prev->vm_prot == next->vm_prot &&
	       backing_same(&prev->backing, &next->backing) &&
	       (prev->backing.kind == USPF_BACKING_ZERO ||
		next->vm_pgoff == prev->vm_pgoff + ((prev->vm_end - prev->vm_start) >> PAGE_SHIFT));
}

static void vma_set_prot(struct uspf_vma *vma, int prot)
{
	vma_write_enter(vma);
	CMM_STORE_SHARED(vma->vm_prot, prot);
	CMM_STORE_SHARED(vma->vm_flags, vm_flags_of(prot));
	if (atomic_load_explicit(&vma->vm_real_flags, memory_order_relaxed))
		atomic_store_explicit(&vma->vm_real_flags, vm_flags_of(prot), memory_order_release);
	vm_write_end(vma);
}

/*
 * The model's VMAs from the one that ends at (or spans) start to the one
 * that begins at (or spans) end take the kernel's boundaries and
 * protection: split where the kernel has a boundary, protection as the
 * kernel has it (a real call that failed half-way), joined where the
 * kernel joined them and backing_joins() agrees.  vma_merge() looks at
 * more than the model knows - VM_ACCOUNT, VM_NORESERVE, anon_vma
 * reuse across protections, the page offset an untouched range gets when
 * mremap moves it - so the model asks rather than guesses.  Memory the
 * kernel no longer has is left to the call that finds it.
 */
/*
 * With no kernel to ask (no /proc: a container, a sandbox), the model's
 * own rules: what vma_merge() looks at that the model knows - the same
 * backing, offsets that follow on (a zero-filled mapping's is its
 * address) and anon_vmas that do not conflict.
 */
static bool rules_join(const struct uspf_vma *prev, const struct uspf_vma *next)
{
	return backing_joins(prev, next) &&
	       next->vm_pgoff == prev->vm_pgoff + ((prev->vm_end - prev->vm_start) >> PAGE_SHIFT) &&
	       (!prev->anon_vma || !next->anon_vma || prev->anon_vma == next->anon_vma);
}

static void rules_sync(struct uspf_mm *mm, unsigned long start, unsigned long end)
{
	struct uspf_vma *prev = NULL, *vma;
	unsigned long addr = start ? start - 1 : 0;

	while ((vma = find_vma(mm, addr)) && vma->vm_start <= end) {
		if (prev && prev->vm_end == vma->vm_start && rules_join(prev, vma)) {
			vma_merge_pair(mm, prev, vma);
			vma = prev;
		}
		prev = vma;
		addr = vma->vm_end;
	}
}

static void kernel_sync(struct uspf *u, unsigned long start, unsigned long end)
{
	struct uspf_mm *mm = &u->mm;
	struct uspf_vma *vma, *prev = NULL;
	struct kernel_vma kv = { 0, 0, 0 };
	unsigned long addr = start ? start - 1 : 0;

	while ((vma = find_vma(mm, addr)) && vma->vm_start <= end) {
		if ((vma->vm_start < kv.start || vma->vm_start >= kv.end) &&
		    kernel_vma_find(&u->kmaps, vma->vm_start, &kv)) {
			if (u->kmaps.fd < 0)
				rules_sync(mm, start, end);
			return;		/* else the kernel cannot say: the model stays as it is */
		}
		addr = vma->vm_end;
		if (kv.start > vma->vm_start) {
			prev = NULL;
			continue;
		}
		if (vma->vm_end > kv.end && split_vma(mm, vma, kv.end))
			return;
		if (vma->vm_prot != kv.prot)
			vma_set_prot(vma, kv.prot);
		if (prev && prev->vm_end == vma->vm_start && kv.start < vma->vm_start &&
		    backing_joins(prev, vma)) {
			vma_merge_pair(mm, prev, vma);
			vma = prev;
		}
		prev = vma;
		addr = vma->vm_end;
	}
}

/* Does a model VMA end at start or begin at end?  (Only then can the kernel have merged.) */
static bool has_neighbour(struct uspf_mm *mm, unsigned long start, unsigned long end)
{
	struct uspf_vma *vma = start ? find_vma(mm, start - 1) : NULL;

	if (vma && vma->vm_start < start)
		return true;
	vma = find_vma(mm, end);
	return vma && vma->vm_start == end;
}

/* The start of the run of adjacent model VMAs that ends at or spans addr (addr if none). */
static unsigned long model_run_start(struct uspf_mm *mm, unsigned long addr)
{
	unsigned long s, e;

	while (addr && vma_index_find(&mm->index, addr - 1, &s, &e) && s < addr)
		addr = s;
	return addr;
}

/* The end of the run of adjacent model VMAs that begins at or spans addr (addr if none). */
static unsigned long model_run_end(struct uspf_mm *mm, unsigned long addr)
{
	unsigned long s, e;

	while (vma_index_find(&mm->index, addr, &s, &e) && s <= addr)
		addr = e;
	return addr;
}

/*
 * UFFDIO_REGISTER again every model VMA in [start, end), a run of adjacent
 * ones per call (those that kept their registration are left as they are).
 */
static int register_range(struct uspf *u, unsigned long start, unsigned long end)
{
	struct uspf_vma *vma;
	unsigned long s, e;
	int ret;

	while ((vma = find_vma(&u->mm, start)) && vma->vm_start < end) {
		s = vma->vm_start;
		e = vma->vm_end;
		while ((vma = find_vma(&u->mm, e)) && vma->vm_start == e && e < end)
			e = vma->vm_end;
		ret = uffd_register(&u->uffd, s, e - s);
		if (ret)
			return ret;
		start = e;
	}
	return 0;
}

static int mmap_check(size_t len, int prot, int flags, const struct uspf_backing *backing)
{
	if (!len || len > (size_t)1 << 46)
		return -EINVAL;
	if (prot & ~(PROT_READ | PROT_WRITE | PROT_EXEC))
		return -EINVAL;
	if (!(flags & MAP_PRIVATE) || (flags & ~USPF_MAP_ACCEPTED))
		return -EINVAL;		/* private mappings only: no MAP_SHARED, no MAP_POPULATE */
	return backing ? backing_validate(backing) : 0;
}

/*
 * MAP_FIXED over memory a thread may be touching: map it PROT_NONE,
 * register, then give it its protection, so a touch in between faults
 * (SIGSEGV) rather than reading kernel zero pages as if they were ours.
 */
static long map_fixed(struct uspf *u, unsigned long addr, size_t len, int prot, int flags)
{
	struct uspf_mm *mm = &u->mm;
	struct uspf_vma *gone;
	long p;
	int ret;

	ret = detach_range(mm, addr, addr + len, &gone);
	if (ret)
		return ret;
	/* The PTLs as a barrier (see zap_listed()), then the real call. */
	ptl_lock_range(&mm->ptl, addr, addr + len);
	zapped_listed(gone);
	ptl_unlock_range(&mm->ptl, addr, addr + len);
	p = sys_mmap(addr, len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED |
		     (flags & MAP_NORESERVE));
	if (p < 0) {
		ret = -errno;
		detach_cancel(gone);	/* the old memory is still there */
		kernel_sync(u, addr, addr + len);	/* and whole again (vm.max_map_count) */
		return ret;
	}
	detach_erase(mm, gone);
	detach_finish(gone);
	ret = uffd_register(&u->uffd, addr, len);
	if (!ret && prot != PROT_NONE && syscall(SYS_mprotect, addr, len, prot))
		ret = -errno;
	if (ret) {
		syscall(SYS_munmap, addr, len);
		return ret;
	}
	return (long)addr;
}

/*
 * A mapping another thread can name before we return (a hint, or
 * MAP_FIXED_NOREPLACE) is born PROT_NONE, registered, then given its
 * protection: a touch in between must not get a kernel zero page.
 */
static long map_new(struct uspf *u, unsigned long hint, size_t len, int prot, int flags)
{
	bool known = hint || (flags & MAP_FIXED_NOREPLACE);
	long p = sys_mmap(hint, len, known ? PROT_NONE : prot, MAP_PRIVATE | MAP_ANONYMOUS |
			  (flags & (MAP_FIXED_NOREPLACE | MAP_NORESERVE)));
	int ret;

	if (p < 0)
		return -errno;
	ret = uffd_register(&u->uffd, (unsigned long)p, len);
	if (!ret && known && prot != PROT_NONE && syscall(SYS_mprotect, p, len, prot))
		ret = -errno;
	if (ret) {
		syscall(SYS_munmap, p, len);
		return ret;
	}
	return p;
}

int uspf_mmap(struct uspf *u, void *addr, size_t len, int prot, int flags,
	      const struct uspf_backing *backing, void **out)
{
	struct uspf_backing zero = { .kind = USPF_BACKING_ZERO };
	struct uspf_mm *mm;
	struct uspf_vma *vma;
	long p;
	int ret;

	if (!u || !out)
		return -EINVAL;
	ret = mmap_check(len, prot, flags, backing);
	if (ret)
		return ret;
	len = page_align(len);
	if ((flags & (MAP_FIXED | MAP_FIXED_NOREPLACE)) && !range_valid((unsigned long)addr, len))
		return -EINVAL;
	if (!backing)
		backing = &zero;
	mm = &u->mm;
	if (backing->kind != USPF_BACKING_ZERO)
		atomic_store_explicit(&u->contents_mapped, true, memory_order_relaxed);
	vma = vm_area_alloc(mm);
	if (!vma)
		return -ENOMEM;
	if (backing->kind == USPF_BACKING_FILE) {
		ret = file_get(backing->file.fd, &vma->vm_file);
		if (ret) {
			vm_area_free(vma);
			return ret;
		}
	}
	mmap_write_lock(mm);
	/* MAP_FIXED_NOREPLACE wins over MAP_FIXED, as in the kernel. */
	if ((flags & MAP_FIXED) && !(flags & MAP_FIXED_NOREPLACE))
		p = map_fixed(u, (unsigned long)addr, len, prot, flags);
	else
		p = map_new(u, (unsigned long)addr, len, prot, flags);
	if (p < 0) {
		mmap_write_unlock(mm);
		vm_area_free(vma);
		return (int)p;
	}
	vma->vm_start = (unsigned long)p;
	vma->vm_end = (unsigned long)p + len;
	/* Anonymous memory's pgoff is its address (as the kernel's): adjacent ones merge. */
	vma->vm_pgoff = backing->kind == USPF_BACKING_ZERO ? (unsigned long)p >> PAGE_SHIFT :
			backing_first_pgoff(backing);
	vma->vm_prot = prot;
	vma->vm_flags = vm_flags_of(prot);
	vma->backing = *backing;
	if (vma->vm_file)
		vma->backing.file.fd = vma->vm_file->fd;	/* ours: the caller may close theirs */
	ret = mm->anon_vma_at_mmap ? anon_vma_prepare(vma) : 0;
	if (!ret)
		ret = vma_attach(mm, vma);
	if (ret) {
		uffd_unregister(&u->uffd, (unsigned long)p, len);
		syscall(SYS_munmap, p, len);
		mmap_write_unlock(mm);
		vm_area_free(vma);
		return ret;
	}
	if (has_neighbour(mm, vma->vm_start, vma->vm_end))
		kernel_sync(u, vma->vm_start, vma->vm_end);
	mmap_write_unlock(mm);
	*out = (void *)p;
	return 0;
}

/*
 * Would munmap(start, end) cut a hole inside one real VMA?  That is the
 * one unmap the kernel refuses at vm.max_map_count (do_vmi_align_munmap():
 * the map count grows by one), before it changes anything.
 */
static bool cuts_one_vma(struct uspf *u, unsigned long start, unsigned long end)
{
	struct uspf_vma *prev = start ? find_vma(&u->mm, start - 1) : NULL;
	struct uspf_vma *next = find_vma(&u->mm, end);
	struct kernel_vma kv;

	/* Split at the edges by now: a model VMA ends at start and one begins at end. */
	if (!prev || prev->vm_end != start || !next || next->vm_start != end)
		return false;
	return !kernel_vma_find(&u->kmaps, start - 1, &kv) && kv.start < start && kv.end > end;
}

int uspf_munmap(struct uspf *u, void *addr, size_t len)
{
	unsigned long start = (unsigned long)addr, end;
	struct uspf_vma *gone;
	int ret;

	if (!u || !range_valid(start, len))
		return -EINVAL;
	end = start + page_align(len);
	if (end < start)
		return -EINVAL;
	mmap_write_lock(&u->mm);
	ret = detach_range(&u->mm, start, end, &gone);
	if (ret) {
		kernel_sync(u, start, end);	/* a split that happened stays only if real */
		mmap_write_unlock(&u->mm);
		return ret;
	}
	if (gone && cuts_one_vma(u, start, end)) {
		/* The kernel may refuse: call it before the model commits. */
		ret = zap_listed(&u->mm, gone);
		if (ret) {
			detach_cancel(gone);
			kernel_sync(u, start, end);
			mmap_write_unlock(&u->mm);
			return ret;
		}
		detach_erase(&u->mm, gone);
		detach_finish(gone);
		mmap_write_unlock(&u->mm);
		return 0;
	}
	/*
	 * As do_vmi_align_munmap(): once the VMAs are out of the tree, the
	 * zap needs only the read lock; downgrading releases the VMA write
	 * locks (vma_end_write_all()) and lets faults elsewhere proceed.
	 * (No real call here can be refused: it cuts no real VMA in three.)
	 */
	detach_erase(&u->mm, gone);
	mmap_write_downgrade(&u->mm);
	zap_listed(&u->mm, gone);
	detach_finish(gone);
	mmap_read_unlock(&u->mm);
	return 0;
}

int mapping_release(struct uspf *u, unsigned long start, unsigned long end)
{
	struct uspf_mm *mm = &u->mm;
	struct uspf_vma *gone;
	int ret;

	mmap_write_lock(mm);
	ret = detach_range(mm, start, end, &gone);
	if (ret) {
		mmap_write_unlock(mm);
		return ret;
	}
	/*
	 * The pages change hands under the PTLs, as a zap: a fill taken
	 * before now is stale (vm_zaps), and after the unregister a copy of
	 * ours could not land anyway.  UFFDIO_UNREGISTER wakes the faults
	 * still waiting there; they fault again as the new owner decides.
	 */
	ptl_lock_range(&mm->ptl, start, end);
	zapped_listed(gone);
	ptl_unlock_range(&mm->ptl, start, end);
	ret = uffd_unregister(&u->uffd, start, end - start);
	if (ret) {
		detach_cancel(gone);
		mmap_write_unlock(mm);
		return ret;
	}
	detach_erase(mm, gone);
	detach_finish(gone);
	mmap_write_unlock(mm);
	return 0;
}

/* Where the run of model VMAs that covers start ends, at most at end. */
static unsigned long mapped_until(struct uspf_mm *mm, unsigned long start, unsigned long end)
{
	unsigned long addr = start;
	struct uspf_vma *vma;

	while (addr < end && (vma = find_vma(mm, addr)) && vma->vm_start <= addr)
		addr = vma->vm_end;
	return addr < end ? addr : end;
}

/* vma_write_enter() every VMA in [start, end) (or vm_write_end() them). */
static void write_range(struct uspf_mm *mm, unsigned long start, unsigned long end, bool begin)
{
	struct uspf_vma *vma;
	unsigned long addr = start;

	while (addr < end && (vma = find_vma(mm, addr)) && vma->vm_start < end) {
		if (begin)
			vma_write_enter(vma);
		else
			vm_write_end(vma);
		addr = vma->vm_end;
	}
}

/*
 * The model's VMAs in [start, end) take prot (inside their write
 * sections); `pending`: the page tables are yet to follow (debug checks).
 */
static void set_prot_range(struct uspf_mm *mm, unsigned long start, unsigned long end, int prot,
			   bool pending)
{
	struct uspf_vma *vma;
	unsigned long a;

	for (a = start; a < end; a = vma->vm_end) {
		vma = find_vma(mm, a);
		if (pending)
			atomic_store_explicit(&vma->vm_prot_pending, true, memory_order_relaxed);
		CMM_STORE_SHARED(vma->vm_prot, prot);
		CMM_STORE_SHARED(vma->vm_flags, vm_flags_of(prot));
	}
}

/* Debug: the page tables of [start, end) took prot, PTLs held (vm_real_flags). */
static void prot_changed_range(struct uspf_mm *mm, unsigned long start, unsigned long end,
			       int prot)
{
	struct uspf_vma *vma;
	unsigned long a;

	for (a = start; a < end; a = vma->vm_end) {
		vma = find_vma(mm, a);
		if (prot >= 0)
			atomic_store_explicit(&vma->vm_real_flags, vm_flags_of(prot),
					      memory_order_release);
		atomic_store_explicit(&vma->vm_prot_pending, false, memory_order_release);
	}
}

/*
 * do_mprotect_pkey(): nothing mapped at start is ENOMEM with nothing
 * changed; otherwise the VMAs from start up to the first hole change, and
 * the hole is ENOMEM.  (A hole here is where uspf has no mapping: memory
 * that is not uspf's is not changed.)  If the real call fails part-way
 * (vm.max_map_count), the model takes what the kernel did.
 */
int uspf_mprotect(struct uspf *u, void *addr, size_t len, int prot)
{
	unsigned long start = (unsigned long)addr, end, stop;
	struct uspf_mm *mm;
	bool flags_late;
	int ret;

	/* The kernel's checks, in its order. */
	if (!u || (start & ~PAGE_MASK))
		return -EINVAL;
	if (!len)
		return 0;
	end = start + page_align(len);
	if (end <= start)
		return -ENOMEM;
	if (prot & ~(PROT_READ | PROT_WRITE | PROT_EXEC))
		return -EINVAL;
	mm = &u->mm;
	mmap_write_lock(mm);
	stop = mapped_until(mm, start, end);
	if (stop == start) {
		mmap_write_unlock(mm);
		return -ENOMEM;
	}
	ret = split_at_edges(mm, start, stop);
	if (!ret) {
		/*
		 * mprotect_fixup(): vm_flags and the page protection change
		 * before change_protection() walks the page tables, so a fault
		 * that revalidates by hand under the PTL after the walk sees
		 * the new flags.  Should the real call fail, kernel_sync()
		 * below gives the model back the protection the kernel kept.
		 */
		flags_late = inject(mm, INJ_MPROTECT_FLAGS_AFTER_PTL);
		write_range(mm, start, stop, true);
		if (!flags_late)
			set_prot_range(mm, start, stop, prot, true);
		/*
		 * The PTLs as a barrier (see zap_listed()): the page tables
		 * count as changed from here (vm_real_flags, debug checks);
		 * a failed call is put right by kernel_sync() below.
		 */
		ptl_lock_range(&mm->ptl, start, stop);
		prot_changed_range(mm, start, stop, prot);
		ptl_unlock_range(&mm->ptl, start, stop);
		ret = sys_ret(syscall(SYS_mprotect, start, stop - start, prot));
		stall_at(mm, STALL_PROT_CHANGED);
		if (flags_late && !ret)
			set_prot_range(mm, start, stop, prot, false);
		write_range(mm, start, stop, false);
	}
	kernel_sync(u, start, stop);
	if (!ret && stop < end)
		ret = -ENOMEM;
	mmap_write_unlock(mm);
	return ret;
}

/*
 * madvise_walk_vmas(): the advice goes to every VMA in the range, holes
 * skipped; a hole anywhere (or nothing mapped) is ENOMEM afterwards.
 */
int uspf_madvise(struct uspf *u, void *addr, size_t len, int advice)
{
	unsigned long start = (unsigned long)addr, end, a, stop;
	struct uspf_mm *mm;
	struct uspf_vma *vma;
	bool hole = false, seq;
	int ret = 0;

	if (!u || advice != MADV_DONTNEED)
		return -EINVAL;		/* the one advice that changes what a fault sees */
	if (start & ~PAGE_MASK)
		return -EINVAL;
	end = start + page_align(len);
	if ((len && end == start) || end < start)
		return -EINVAL;
	if (end == start)
		return 0;
	mm = &u->mm;
	/*
	 * The kernel zaps under the mmap lock held for read, ordered against
	 * faults by the PTLs (faults of other VMAs, and under the per-VMA
	 * locks of this one too, go on meanwhile).  Dufour's series wraps the
	 * zap in vm_write_begin(), whose writers must be serialised: under
	 * spf alone the write lock.
	 */
	seq = mm->vm_sequence;
	if (seq)
		mmap_write_lock(mm);
	else
		mmap_read_lock(mm);
	for (a = start; a < end; a = stop) {
		vma = find_vma(mm, a);
		if (!vma || vma->vm_start >= end) {
			hole = true;
			break;
		}
		if (vma->vm_start > a) {
			hole = true;
			a = vma->vm_start;
		}
		stop = mapped_until(mm, a, end);
		if (seq)
			write_range(mm, a, stop, true);
		/* The PTLs as a barrier (see zap_listed()), then the zap. */
		ptl_lock_range(&mm->ptl, a, stop);
		ptl_unlock_range(&mm->ptl, a, stop);
		if (syscall(SYS_madvise, a, stop - a, MADV_DONTNEED) && !ret)
			ret = -errno;
		if (seq)
			write_range(mm, a, stop, false);
	}
	if (seq)
		mmap_write_unlock(mm);
	else
		mmap_read_unlock(mm);
	return ret ? ret : hole ? -ENOMEM : 0;
}

/*
 * move_vma(): the kernel moved vma's range to [new, new + new_len); a new
 * VMA there (copy_vma()).  The old one, entered by the caller, is
 * detached and goes - or, with MREMAP_DONTUNMAP, stays attached over its
 * emptied range, with its registration.
 */
static int mremap_moved(struct uspf *u, struct uspf_vma *vma, unsigned long new, size_t new_len,
			bool dontunmap, bool whole)
{
	struct uspf_mm *mm = &u->mm;
	struct uspf_vma *moved = vm_area_dup(vma);
	int ret = -ENOMEM;

	if (moved) {
		moved->vm_start = new;
		moved->vm_end = new + new_len;
		ret = vma_attach(mm, moved);
	}
	if (dontunmap) {
		/*
		 * dontunmap_complete(): the kept VMA, if the move took it
		 * whole, no longer shares the anon_vma the moved pages took
		 * with them.  (A fault that checked anon_vma before read-locking
		 * the VMA - the order the kernel fixed in 2023 - misses this.)
		 */
		if (whole && vma->anon_vma)
			unlink_anon_vmas(vma);
		vm_write_end(vma);	/* ends the write section begun by the caller */
	} else {
		vma_erase(mm, vma);	/* marked detached by the caller */
		vma->detach_next = NULL;
		detach_finish(vma);	/* ends the write section begun by the caller */
	}
	if (ret) {
		/* The memory moved but cannot be served: take it away whole. */
		syscall(SYS_munmap, new, new_len);
		if (moved)
			vm_area_free(moved);
	}
	return ret;
}

/*
 * Without UFFD_FEATURE_EVENT_REMAP the kernel drops the registration of
 * the VMA the moved range ends up in (mremap_userfaultfd_prep()) - and
 * copy_vma() may have merged the new range into its neighbours first:
 * neighbours at the target, or, moving within one mapping, the rest of
 * the source VMA, whose pages would then read kernel zeros for ever.
 * Register again every model VMA in the source's real VMA as it was
 * before the move (src) and in the real VMA around the target now.
 */
static int register_after_move(struct uspf *u, const struct kernel_vma *src, unsigned long new,
			       size_t new_len)
{
	unsigned long range[2][2] = { { new, new + new_len }, { src->start, src->end } };
	struct kernel_vma kv;
	unsigned long addr;
	int i, ret;

	/*
	 * A real VMA at a time, in one call each: registering part of an
	 * unregistered real VMA splits it, and the rest registered after
	 * does not join it again.  The target's first: it may have swallowed
	 * the source's rest.
	 */
	for (i = 0; i < 2; i++) {
		for (addr = range[i][0]; addr < range[i][1]; addr = kv.end) {
			if (kernel_vma_find(&u->kmaps, addr, &kv))
				break;
			if (kv.start >= range[i][1])
				break;
			ret = register_range(u, kv.start, kv.end);
			if (ret)
				return ret;
		}
		if (addr < range[i][1] && u->kmaps.fd < 0) {
			/* No kernel to ask: every model VMA touching the range. */
			ret = register_range(u, model_run_start(&u->mm, range[i][0]),
					     model_run_end(&u->mm, range[i][1]));
			if (ret)
				return ret;
		}
	}
	return 0;
}

/*
 * After a real call that failed: each listed VMA whose memory the kernel
 * still has is attached again, each whose memory is gone (mremap_to()
 * unmaps the target and a shrinking tail before it may fail) leaves the
 * model.
 */
static void detach_settle(struct uspf *u, struct uspf_vma *gone)
{
	struct uspf_vma *next;
	struct kernel_vma kv;

	for (; gone; gone = next) {
		next = gone->detach_next;
		if (kernel_vma_find(&u->kmaps, gone->vm_start, &kv) == -ENOENT ||
		    (u->kmaps.fd >= 0 && kv.start >= gone->vm_end)) {
			vma_erase(&u->mm, gone);
			gone->detach_next = NULL;
			detach_finish(gone);
		} else {
			vma_mark_attached(gone);
			vm_write_end(gone);
		}
	}
}

/*
 * The mremap(2) that only shrinks (mremap_at() in 6.17+): a mapping at
 * old is all it asks for, then the tail goes as by munmap, holes and VMA
 * boundaries and all.  The real call decides; the model follows.
 */
static int mremap_shrink(struct uspf *u, unsigned long old, size_t old_len, size_t new_len)
{
	struct uspf_mm *mm = &u->mm;
	unsigned long start = old + new_len, end = old + old_len;
	struct uspf_vma *gone;
	int ret;

	ret = detach_range(mm, start, end, &gone);
	if (!ret) {
		/* The PTLs as a barrier (see zap_listed()), then the real call. */
		ptl_lock_range(&mm->ptl, start, end);
		zapped_listed(gone);
		ptl_unlock_range(&mm->ptl, start, end);
		ret = sys_ret(syscall(SYS_mremap, old, old_len, new_len, 0, 0));
		if (ret) {
			detach_cancel(gone);
		} else {
			detach_erase(mm, gone);
			detach_finish(gone);
		}
	}
	if (ret)
		kernel_sync(u, start, end);
	return ret;
}

int uspf_mremap(struct uspf *u, void *old_addr, size_t old_len, size_t new_len,
		int flags, void *new_addr, void **out)
{
	unsigned long old = (unsigned long)old_addr, newa = (unsigned long)new_addr;
	unsigned long lock_start, lock_end, p = 0;
	bool dontunmap = flags & MREMAP_DONTUNMAP, hide;
	struct kernel_vma src = { 0, 0, 0 };
	struct uspf_vma *vma, *target = NULL, *tail = NULL;
	struct uspf_mm *mm;
	size_t move_len;
	int prot, ret;

	if (!u || !out || !range_valid(old, old_len) || !new_len)
		return -EINVAL;
	if (flags & ~(MREMAP_MAYMOVE | MREMAP_FIXED | MREMAP_DONTUNMAP))
		return -EINVAL;
	/*
	 * check_mremap_params(): a new address - MREMAP_FIXED's, or the hint
	 * MREMAP_DONTUNMAP passes - implies a move and is checked like one.
	 */
	if ((flags & (MREMAP_FIXED | MREMAP_DONTUNMAP)) &&
	    (!(flags & MREMAP_MAYMOVE) || !range_valid(newa, new_len)))
		return -EINVAL;
	old_len = page_align(old_len);
	new_len = page_align(new_len);
	/* A length that wraps when rounded up is the kernel's EINVAL, not a shrink to nothing. */
	if (!new_len || !old_len)
		return -EINVAL;
	/* MREMAP_DONTUNMAP does not resize (lengths compared page-aligned, as 6.x does). */
	if (dontunmap && old_len != new_len)
		return -EINVAL;
	if ((flags & (MREMAP_FIXED | MREMAP_DONTUNMAP)) && newa < old + old_len &&
	    old < newa + new_len)
		return -EINVAL;	/* the kernel refuses overlapping moves */
	mm = &u->mm;
	mmap_write_lock(mm);
	vma = find_vma(mm, old);
	if (!vma || vma->vm_start > old) {
		ret = -EFAULT;
		goto out;
	}
	if (!(flags & (MREMAP_FIXED | MREMAP_DONTUNMAP)) && new_len <= old_len) {
		/* The same size is nothing to do (MREMAP_NO_RESIZE); smaller, a shrink in place. */
		ret = new_len < old_len ? mremap_shrink(u, old, old_len, new_len) : 0;
		if (!ret)
			*out = old_addr;
		goto out;
	}
	/*
	 * Growing or moving: what moves must lie in one VMA.  A FIXED move
	 * that also shrinks drops the tail first, as by munmap, holes and
	 * all (mremap_to()): only the part that moves must.
	 */
	move_len = (flags & MREMAP_FIXED) && new_len < old_len ? new_len : old_len;
	if (vma->vm_end < old + move_len) {
		ret = -EFAULT;
		goto out;
	}
	if (move_len < old_len) {
		ret = detach_range(mm, old + move_len, old + old_len, &tail);
		if (ret)
			goto fail;
	}
	ret = split_at_edges(mm, old, old + move_len);
	if (ret)
		goto fail;
	/*
	 * MREMAP_FIXED replaces whatever is at the target in the same
	 * syscall: enter the model's VMAs there now, drop them after.  (An
	 * munmap first would leave a hole that any mmap - liburcu's, ours -
	 * could take before the move lands on it.)
	 */
	if (flags & MREMAP_FIXED) {
		ret = detach_range(mm, newa, newa + new_len, &target);
		if (ret)
			goto fail;
	}
	if (kernel_vma_find(&u->kmaps, old, &src) || src.start > old) {
		/* No kernel to ask: the model VMAs touching the source stand in for its real VMA. */
		src.start = model_run_start(mm, old);
		src.end = model_run_end(mm, old + move_len);
	}
	vma = find_vma(mm, old);
	prot = vma->vm_prot;
	vma_write_enter(vma);
	/*
	 * The PTLs as a barrier (see zap_listed()) for what the real call
	 * takes away at once: a FIXED target and a shrinking tail, detached
	 * above.  Their stripes' union, each once, in order (the two ranges
	 * may share stripes), no more.  Elsewhere the kernel picks a target
	 * nobody can be faulting in.
	 */
	lock_start = lock_end = 0;
	if (flags & MREMAP_FIXED) {
		lock_start = newa;
		lock_end = newa + new_len;
	}
	ptl_lock_two_ranges(&mm->ptl, old + move_len, old + old_len, lock_start, lock_end);
	zapped_listed(target);
	zapped_listed(tail);
	ptl_unlock_two_ranges(&mm->ptl, old + move_len, old + old_len, lock_start, lock_end);
	/*
	 * The move drops the registration of whatever the moved range merges
	 * with (register_after_move() restores it): until then the kernel
	 * serves an untouched page there itself, with zeros.  For zero-filled
	 * memory that is the right content; once the runtime has mapped a
	 * backing with contents, a range that may move travels PROT_NONE: it
	 * merges with no accessible neighbour, so no accessible page is ever
	 * unregistered, and a FIXED target known to other threads faults
	 * instead of reading zeros.  It gets its protection back once
	 * registered again.  With MREMAP_DONTUNMAP the old range stays
	 * mapped, PROT_NONE like the range it was copied to: it too gets its
	 * protection back.  (Hiding splits the source from its VMA, which
	 * mremap(2) never does: uspf(7) says what that changes.)
	 *
	 * No PTL is held across the real calls, as move_page_tables() takes
	 * each page table's pair of locks only for its own stretch.  A
	 * commit into the source that lands first moves with the pages (its
	 * fill was for the source's backing at the offset that travels with
	 * them); one that lands after finds the range gone (ENOENT) or, kept
	 * by MREMAP_DONTUNMAP, installs what the range refills with.
	 */
	hide = (flags & MREMAP_MAYMOVE) && prot != PROT_NONE &&
	       atomic_load_explicit(&u->contents_mapped, memory_order_relaxed);
	ret = hide ? sys_ret(syscall(SYS_mprotect, old, move_len, PROT_NONE)) : 0;
	if (!ret) {
		p = (unsigned long)syscall(SYS_mremap, old, old_len, new_len, flags, newa);
		ret = p == (unsigned long)-1 ? -errno : 0;
		if (ret && hide)
			syscall(SYS_mprotect, old, move_len, prot);
	}
	/*
	 * Moved: the old VMA dies, and the source's PTLs are the barrier
	 * before anything can be mapped there again (we hold the mmap write
	 * lock until then): a commit that revalidated before has finished,
	 * a later one sees the VMA detached (spf-adaptive revalidates by
	 * hand, with no sequence count to tell it).  A DONTUNMAP'd one lives
	 * on over its emptied range: the sequence count and the VMA write
	 * lock turn such a commit away; spf-adaptive's by-hand check cannot
	 * see the move, but what it installs is what the range refills with
	 * (not a zap: a fill from before is not stale there).
	 */
	if (!ret && p != old && !dontunmap) {
		ptl_lock_range(&mm->ptl, old, old + move_len);
		vma_zapped(vma);
		vma_mark_detached(vma);
		ptl_unlock_range(&mm->ptl, old, old + move_len);
	}
	if (ret) {
		vm_write_end(vma);
		/* The kernel may have unmapped the target and the tail before it failed. */
		detach_settle(u, target);
		detach_settle(u, tail);
		goto fail;
	}
	detach_erase(mm, target);
	detach_finish(target);
	detach_erase(mm, tail);
	detach_finish(tail);
	if (p == old) {
		/*
		 * Grown in place into space the kernel found free.  A model VMA
		 * there means memory was unmapped behind uspf's back: undo the
		 * growth rather than let the model and the mapping disagree.
		 */
		ret = vma_index_set_range(&mm->index, old, old, old + new_len);
		if (ret) {
			syscall(SYS_mremap, old, new_len, old_len, 0, 0);
			vm_write_end(vma);
			goto fail;
		}
		CMM_STORE_SHARED(vma->vm_end, old + new_len);
		vm_write_end(vma);
		/* The expanded VMA keeps its registration; registering again is harmless. */
		ret = uffd_register(&u->uffd, old, new_len);
	} else {
		/* The real source VMA was the moved range alone (made so by hiding it, or not)? */
		ret = mremap_moved(u, vma, p, new_len, dontunmap,
				   hide || (src.start == old && src.end == old + old_len));
		if (!ret)
			ret = register_after_move(u, &src, p, new_len);
	}
	if (!ret && hide)
		ret = sys_ret(syscall(SYS_mprotect, p, new_len, prot));
	/* MREMAP_DONTUNMAP: the kept range gets its protection back too. */
	if (!ret && hide && dontunmap)
		ret = sys_ret(syscall(SYS_mprotect, old, old_len, prot));
	kernel_sync(u, p, p + new_len);
	if (p != old)
		kernel_sync(u, old, old + old_len);
	if (!ret)
		*out = (void *)p;
	goto out;
fail:
	kernel_sync(u, old, old + old_len);
	if (flags & MREMAP_FIXED)
		kernel_sync(u, newa, newa + new_len);
out:
	mmap_write_unlock(mm);
	return ret;
}
