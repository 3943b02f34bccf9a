/* SPDX-License-Identifier: MIT */
/*
 * file.h - struct uspf_file: the open file behind file-backed VMAs and its
 * address_space - the i_mmap_rwsem and the i_mmap set of VMAs mapping it.
 *
 * One object per file (device, inode) in the process, shared by every mm
 * that maps it, so mapping one file from many places contends on one
 * i_mmap_rwsem, as the kernel's does (UnixBench Execl, seed 000).
 *
 *   field            written under
 *   ---------------  ------------------------------------------------
 *   i_mmap, i_mmap_count, vma->shared_*   i_mmap_rwsem held for write
 *   refcount         files_lock (the process-wide registry's mutex)
 *   fd               set once: our own dup of the caller's descriptor,
 *                    so closing theirs cannot break later faults
 *
 * Lock order: mmap_lock -> VMA write lock -> i_mmap_rwsem -> PTL.
 */
#ifndef USPF_FILE_H
#define USPF_FILE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "mm/rwsem.h"

struct uspf_mm;
struct uspf_vma;

struct uspf_file {
	dev_t dev;
	ino_t ino;
	int fd;
	unsigned int refcount;		/* VMAs referring to it */
	struct rw_semaphore i_mmap_rwsem;
	struct uspf_vma *i_mmap;	/* the VMAs mapping it (the kernel's interval tree) */
	unsigned long i_mmap_count;
	_Atomic uint64_t hold_ns;	/* i_mmap_rwsem held for write, in total */
	_Atomic uint64_t holds;
	struct uspf_file *next;		/* the registry */
};

/* The file open as fd: found by (device, inode) or created. -errno on failure. */
int file_get(int fd, struct uspf_file **out);
/* Another reference (a VMA copied from one that has it). */
void file_dup(struct uspf_file *f);
void file_put(struct uspf_file *f);
/* Files open in the process's registry (for leak checks). */
size_t files_open(void);

/* i_mmap_lock_write()/unlock: held times are charged to mm and to the file. */
void i_mmap_lock_write(struct uspf_mm *mm, struct uspf_file *f, uint64_t *t0);
void i_mmap_unlock_write(struct uspf_mm *mm, struct uspf_file *f, uint64_t t0);
/* Does the calling thread hold an i_mmap_rwsem?  (The lock-order debug check.) */
bool i_mmap_held_by_me(void);

/* __vma_link_file() / __remove_shared_vm_struct(): i_mmap_rwsem held for write. */
void vma_link_file(struct uspf_vma *vma);
void vma_unlink_file(struct uspf_vma *vma);
/* Is vma on its file's i_mmap?  (Debug checks; takes i_mmap_rwsem for read.) */
bool vma_in_i_mmap(struct uspf_vma *vma);

#endif
