/* SPDX-License-Identifier: MIT */
/*
 * mm/vma.c - VMA and anon_vma lifetime (vm_area_alloc/dup/free,
 * anon_vma_prepare) and the vm_sequence write side.
 */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <string.h>

#include "mm/call_rcu.h"
#include "mm/file.h"
#include "mm/kmem.h"
#include "mm/mm.h"
#include "mm/vma.h"

static struct kmem_cache *vm_area_cachep;
static struct kmem_cache *anon_vma_cachep;
static pthread_once_t vma_cache_once = PTHREAD_ONCE_INIT;

static void vma_cache_create(void)
{
	vm_area_cachep = kmem_cache_create("vm_area_struct", sizeof(struct uspf_vma), 64);
	anon_vma_cachep = kmem_cache_create("anon_vma", sizeof(struct uspf_anon_vma), 64);
}

/* The caches live as long as the process: VMAs of every mm come from them. */
int vma_cache_init(void)
{
	pthread_once(&vma_cache_once, vma_cache_create);
	return vm_area_cachep && anon_vma_cachep ? 0 : -ENOMEM;
}

/*
 * Dufour's vm_write_begin()/vm_write_end(): only where the policy's design
 * has them (struct uspf_policy.vm_sequence).  Elsewhere a writer pays one
 * load of a flag on its own mm, as a kernel built without
 * CONFIG_SPECULATIVE_PAGE_FAULT pays nothing.
 */
void vm_write_begin(struct uspf_vma *vma)
{
	mmap_assert_write_locked(vma->vm_mm);
	if (!vma->vm_mm->vm_sequence)
		return;
	atomic_fetch_add_explicit(&vma->vm_mm->vma_writes, 1, memory_order_relaxed);
	write_seqcount_begin(&vma->vm_sequence);
}

void vm_write_end(struct uspf_vma *vma)
{
	if (vma->vm_mm->vm_sequence)
		write_seqcount_end(&vma->vm_sequence);
}

struct uspf_vma *vm_area_alloc(struct uspf_mm *mm)
{
	struct uspf_vma *vma = kmem_cache_alloc(vm_area_cachep);

	if (!vma)
		return NULL;
	/*
	 * Type-safe reuse: a stale reader may look at this object right now.
	 * Its vm_refcnt is 0 (it was freed detached) and stays 0 until it is
	 * attached, after vm_mm and the range are set: the reader's
	 * inc-not-zero fails, or succeeds on a fully set-up VMA.
	 */
	vma->vm_mm = mm;
	seqcount_init(&vma->vm_sequence);
	atomic_init(&vma->detached, true);	/* until inserted in the index */
	atomic_init(&vma->vm_lock_seq, UINT_MAX);
	atomic_init(&vma->vm_real_flags, 0);
	atomic_init(&vma->vm_prot_pending, false);
	atomic_init(&vma->vm_end_readers, 0);
	init_rwsem(&vma->vm_lock);
	if (mm->vma_lock && mm->vma_lock->init)
		mm->vma_lock->init(vma);
	return vma;
}

void vma_start_write(struct uspf_vma *vma)
{
	struct uspf_mm *mm = vma->vm_mm;

	mmap_assert_write_locked(mm);
	if (!mm->vma_lock)
		return;
	/*
	 * Documentation/mm/process_addrs.rst: mmap_lock -> VMA write lock ->
	 * i_mmap_rwsem.  Taking a VMA readers can see (attached, not yet
	 * write-locked) with an i_mmap_rwsem held may wait for those readers
	 * while every other user of the file waits for us.
	 */
	if (mm_debug_checks(mm) && i_mmap_held_by_me() && !vma_is_detached(vma) &&
	    !vma_is_write_locked(vma, mm_lock_seq(mm)))
		mm_violation(mm, "vma_start_write() on [%#lx, %#lx) with an i_mmap_rwsem held: "
			     "the order is mmap_lock, VMA write lock, i_mmap_rwsem",
			     vma->vm_start, vma->vm_end);
	mm->vma_lock->start_write(vma);
}

void vma_mark_attached(struct uspf_vma *vma)
{
	struct uspf_mm *mm = vma->vm_mm;

	if (mm->vma_lock && mm->vma_lock->mark_attached)
		mm->vma_lock->mark_attached(vma);
	atomic_store_explicit(&vma->detached, false, memory_order_release);
}

void vma_mark_detached(struct uspf_vma *vma)
{
	struct uspf_mm *mm = vma->vm_mm;

	atomic_store_explicit(&vma->detached, true, memory_order_release);
	if (mm->vma_lock && mm->vma_lock->mark_detached)
		mm->vma_lock->mark_detached(vma);
}

static void get_anon_vma(struct uspf_anon_vma *av)
{
	if (av)
		atomic_fetch_add_explicit(&av->refcount, 1, memory_order_relaxed);
}

/*
 * The last reference goes with the last VMA using it, and a VMA drops its
 * reference only once no reader can see it (after its grace period, or
 * never visible): no reader can reach the anon_vma any more.  (Lock-free
 * readers only test the pointer for NULL; they never dereference it.)
 */
static void put_anon_vma(struct uspf_anon_vma *av)
{
	if (av && atomic_fetch_sub_explicit(&av->refcount, 1, memory_order_acq_rel) == 1)
		kmem_cache_free(anon_vma_cachep, av);
}

struct uspf_vma *vm_area_dup(struct uspf_vma *orig)
{
	struct uspf_vma *vma = vm_area_alloc(orig->vm_mm);

	if (!vma)
		return NULL;
	vma->vm_start = orig->vm_start;
	vma->vm_end = orig->vm_end;
	vma->vm_pgoff = orig->vm_pgoff;
	vma->vm_flags = orig->vm_flags;
	vma->vm_prot = orig->vm_prot;
	atomic_init(&vma->vm_real_flags, atomic_load(&orig->vm_real_flags));
	vma->backing = orig->backing;
	vma->anon_vma = orig->anon_vma;	/* anon_vma_clone() */
	get_anon_vma(vma->anon_vma);
	vma->vm_file = orig->vm_file;	/* get_file() */
	if (vma->vm_file)
		file_dup(vma->vm_file);
	return vma;
}

void anon_vma_share(struct uspf_vma *dst, struct uspf_vma *src)
{
	get_anon_vma(src->anon_vma);
	rcu_assign_pointer(dst->anon_vma, src->anon_vma);
}

void unlink_anon_vmas(struct uspf_vma *vma)
{
	struct uspf_anon_vma *av = vma->anon_vma;

	rcu_assign_pointer(vma->anon_vma, NULL);
	put_anon_vma(av);
}

void vm_area_free(struct uspf_vma *vma)
{
	put_anon_vma(vma->anon_vma);
	file_put(vma->vm_file);
	vma->vm_file = NULL;
	vma->anon_vma = NULL;
	kmem_cache_free(vm_area_cachep, vma);
}

static void vm_area_free_cb(struct rcu_head *head)
{
	struct uspf_vma *vma = caa_container_of(head, struct uspf_vma, rcu);

	/*
	 * The grace period is over: no reader may still be touching the VMA.
	 * One inside up_read() of its lock means vma_end_read() left RCU
	 * before releasing it (6.4 wraps that up_read() in RCU exactly to keep
	 * the VMA alive till the end of it).  VMA memory is never returned to
	 * the system here, so the debug check is the only one to notice.
	 */
	if (mm_debug_checks(vma->vm_mm) &&
	    atomic_load_explicit(&vma->vm_end_readers, memory_order_acquire))
		mm_violation(vma->vm_mm, "VMA [%#lx, %#lx) freed after its grace period while a "
			     "reader was still inside up_read() of its lock", vma->vm_start,
			     vma->vm_end);
	/*
	 * This runs on the callback worker (mm/call_rcu.c), a runtime thread:
	 * what it allocates never comes from uspf memory.
	 */
	vm_area_free(vma);
}

void vm_area_free_rcu(struct uspf_vma *vma)
{
	const struct vma_lock_ops *ops = vma->vm_mm->vma_lock;

	if (ops && ops->typesafe_by_rcu)
		vm_area_free(vma);
	else
		mm_call_rcu(&vma->rcu, vm_area_free_cb);
}

int vma_caches_protect(int prot)
{
	int ret = kmem_cache_protect(vm_area_cachep, prot);

	return ret ? ret : kmem_cache_protect(anon_vma_cachep, prot);
}

size_t vm_area_in_use(void)
{
	return vm_area_cachep ? kmem_cache_in_use(vm_area_cachep) : 0;
}

size_t anon_vma_in_use(void)
{
	return anon_vma_cachep ? kmem_cache_in_use(anon_vma_cachep) : 0;
}

/*
 * __anon_vma_prepare(): allocate and install under mm->page_table_lock,
 * so two faults racing on one VMA install one anon_vma.  The kernel first
 * looks for a mergeable neighbour's (find_mergeable_anon_vma()), which
 * needs the VMA tree stable: that is why it needs mmap_lock and why the
 * lock-free paths bail out when anon_vma is NULL.
 */
int anon_vma_prepare(struct uspf_vma *vma)
{
	struct uspf_mm *mm = vma->vm_mm;
	struct uspf_anon_vma *av;

	mmap_assert_locked(mm);
	if (CMM_LOAD_SHARED(vma->anon_vma))
		return 0;
	av = kmem_cache_alloc(anon_vma_cachep);
	if (!av)
		return -ENOMEM;
	atomic_init(&av->refcount, 1);
	pthread_spin_lock(&mm->page_table_lock);
	if (!vma->anon_vma) {
		rcu_assign_pointer(vma->anon_vma, av);
		av = NULL;
	}
	pthread_spin_unlock(&mm->page_table_lock);
	if (av)
		kmem_cache_free(anon_vma_cachep, av);
	return 0;
}
