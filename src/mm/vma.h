/* SPDX-License-Identifier: MIT */
/*
 * mm/vma.h - struct uspf_vma, the model of the kernel's vm_area_struct.
 *
 * Who may write which field, and under which lock (the kernel's
 * Documentation/mm/process_addrs.rst table, for uspf):
 *
 *   field          written by                      lock held by the writer
 *   -------------  ------------------------------  ------------------------------
 *   vm_start/end   split, trim, mremap              mmap write + vm_sequence odd
 *   vm_pgoff       split, trim                      mmap write + vm_sequence odd
 *   vm_flags/prot  mprotect                         mmap write + vm_sequence odd
 *   backing, gen   set once before the VMA is attached, then read-only
 *   anon_vma       NULL -> set, once, by a fault    mmap read + mm->page_table_lock
 *                  (or at mmap with anon_vma_at_mmap, before attach)
 *   vm_sequence    vm_write_begin/end               mmap write
 *   detached       vma_mark_attached/detached       mmap write + VMA write lock
 *   vm_lock_seq    vma_start_write                  mmap write + readers excluded
 *   vm_lock        (the pervma-rwsem VMA lock)      -
 *   vm_refcnt      attach/detach: VMA write lock;   readers: inc-not-zero
 *                  writers: +VMA_LOCK_OFFSET
 *   vm_mm          set before attach, read-only (but see type-safe reuse)
 *   vm_zaps        a writer zapping its pages, with the range's PTLs held
 *
 * Readers on the speculative path hold no lock: they read the fields under
 * rcu_read_lock(), bracketed by vm_sequence, and revalidate (sequence
 * unchanged, not detached) after taking the PTL.  A detached VMA stays
 * readable until a grace period has passed (freed by call_rcu).
 */
#ifndef USPF_VMA_H
#define USPF_VMA_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include <urcu-bp.h>

#include "uspf.h"
#include "mm/rwsem.h"
#include "mm/seqcount.h"

#define PAGE_SHIFT	12
#define PAGE_SIZE	(1ul << PAGE_SHIFT)
#define PAGE_MASK	(~(PAGE_SIZE - 1))

/* vm_flags, as the kernel's */
#define VM_READ		0x00000001ul
#define VM_WRITE	0x00000002ul
#define VM_EXEC		0x00000004ul
#define VM_UFFD_MISSING	0x00000200ul	/* registered with the userfaultfd */

struct uspf_mm;
struct uspf_file;

/*
 * anon_vma: created at the first write fault (or at mmap with the switch)
 * and shared by the VMAs split from one mapping (anon_vma_clone()).
 * Preparing it needs the mmap lock, so lock-free paths bail out without it.
 */
struct uspf_anon_vma {
	atomic_uint refcount;	/* one per VMA pointing at it */
};

struct uspf_vma {
	unsigned long vm_start;
	unsigned long vm_end;
	unsigned long vm_pgoff;		/* page offset in the backing object */
	unsigned long vm_flags;
	int vm_prot;
	struct uspf_backing backing;
	struct uspf_anon_vma *anon_vma;
	seqcount_t vm_sequence;		/* Dufour's per-VMA sequence count */
	atomic_bool detached;		/* removed from the index (RB_CLEAR_NODE) */
	_Atomic unsigned int vm_lock_seq;	/* == mm_lock_seq while write-locked */
	_Atomic unsigned int vm_zaps;	/* debug: zaps of its pages, bumped with the PTLs held */
	_Atomic unsigned long vm_real_flags;	/* debug: the flags mprotect gave the page tables, PTLs held (0: none yet) */
	atomic_bool vm_prot_pending;	/* debug: new flags set, the page tables not yet changed */
	struct rw_semaphore vm_lock;	/* pervma-rwsem: the VMA's read/write lock */
	atomic_uint vm_end_readers;	/* debug: readers inside vma_end_read()'s up_read() */
	atomic_uint vm_refcnt;		/* pervma-refcnt: 0 detached, 1 attached, +readers */
	struct uspf_mm *vm_mm;
	struct uspf_file *vm_file;	/* file-backed: its file and i_mmap */
	struct uspf_vma *shared_prev;	/* on vm_file's i_mmap: i_mmap_rwsem write */
	struct uspf_vma *shared_next;
	struct uspf_vma *detach_next;	/* writer-only: VMAs detached by one change */
	struct rcu_head rcu;
};

static inline bool vma_is_anonymous(const struct uspf_vma *vma)
{
	/* A file-backed VMA would have vm_ops->fault in the kernel. */
	return vma->backing.kind != USPF_BACKING_FILE;
}

static inline bool vma_is_detached(const struct uspf_vma *vma)
{
	return atomic_load_explicit((atomic_bool *)&vma->detached, memory_order_acquire);
}

/*
 * The write side of a policy's per-VMA lock, called by the writers through
 * vma_start_write() and vma_mark_attached/detached(); the read side lives
 * in the policy's own file.  Policies without a VMA lock have none.
 */
struct vma_lock_ops {
	const char *name;
	void (*init)(struct uspf_vma *vma);
	void (*start_write)(struct uspf_vma *vma);	/* vma_start_write() */
	void (*mark_attached)(struct uspf_vma *vma);
	void (*mark_detached)(struct uspf_vma *vma);
	/* SLAB_TYPESAFE_BY_RCU: a freed VMA may be reused at once, readers revalidate. */
	bool typesafe_by_rcu;
};

/* vma_start_write(): exclude per-VMA readers until mmap_write_unlock(). */
void vma_start_write(struct uspf_vma *vma);
/* Attach once fully set up (after the index insert); detach before the erase. */
void vma_mark_attached(struct uspf_vma *vma);
void vma_mark_detached(struct uspf_vma *vma);

static inline bool vma_is_write_locked(const struct uspf_vma *vma, unsigned int mm_lock_seq)
{
	return atomic_load_explicit((_Atomic unsigned int *)&vma->vm_lock_seq,
				    memory_order_relaxed) == mm_lock_seq;
}

/* Writers wrap every change of a VMA's fields or page tables (mmap write lock held). */
void vm_write_begin(struct uspf_vma *vma);
void vm_write_end(struct uspf_vma *vma);

int vma_cache_init(void);
struct uspf_vma *vm_area_alloc(struct uspf_mm *mm);
/* A new VMA with the same identity (backing, prot, anon_vma); for split and move. */
struct uspf_vma *vm_area_dup(struct uspf_vma *orig);
/*
 * Free a detached VMA: after a grace period (speculative readers may
 * still look at it), or at once into the type-safe cache for policies
 * whose readers revalidate a VMA they find (pervma-refcnt).
 */
void vm_area_free_rcu(struct uspf_vma *vma);
/* Free now: the VMA was never visible to readers. */
void vm_area_free(struct uspf_vma *vma);
size_t vm_area_in_use(void);
/* Debug: mprotect() the VMA and anon_vma caches (see kmem_cache_protect()). */
int vma_caches_protect(int prot);

/* Give dst src's anon_vma (a reference of its own); mmap write lock held. */
void anon_vma_share(struct uspf_vma *dst, struct uspf_vma *src);
/*
 * unlink_anon_vmas(): the VMA stops using its anon_vma (mremap's
 * MREMAP_DONTUNMAP of a whole VMA, dontunmap_complete()).  Mmap write lock
 * and the VMA write-locked; lock-free readers only ever test the pointer.
 */
void unlink_anon_vmas(struct uspf_vma *vma);

/* anon_vma_prepare(): called with mmap_lock held (read is enough). */
int anon_vma_prepare(struct uspf_vma *vma);
size_t anon_vma_in_use(void);

#endif
