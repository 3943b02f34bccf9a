/* SPDX-License-Identifier: MIT */
/*
 * kernel_maps.h - asking the kernel where its VMAs are.
 *
 * The model's own merge rules cannot know everything the kernel's
 * vma_merge() looks at (VM_ACCOUNT, VM_NORESERVE, which anon_vma a range
 * was given, the page offset an untouched range gets when mremap moves
 * it), and a real call that fails half-way (mprotect at vm.max_map_count)
 * leaves the kernel's VMAs as they are.  So after a change the writers ask
 * the kernel: the PROCMAP_QUERY ioctl on /proc/self/maps (Linux 6.11)
 * returns the VMA around an address in about half a microsecond; on an
 * older kernel the text of /proc/self/maps is read instead.
 */
#ifndef USPF_KERNEL_MAPS_H
#define USPF_KERNEL_MAPS_H

#include <stdbool.h>

struct kernel_maps {
	int fd;			/* /proc/self/maps, a kept runtime descriptor */
	bool text;		/* no PROCMAP_QUERY: parse the text */
};

/* One real VMA: [start, end) and its PROT_* bits. */
struct kernel_vma {
	unsigned long start, end;
	int prot;
};

/* On failure km->fd is -1 and every question answers -ENOSYS. */
int kernel_maps_open(struct kernel_maps *km);
void kernel_maps_close(struct kernel_maps *km);
/* Reopen under another number (the program took this one: dup2). */
int kernel_maps_move(struct kernel_maps *km);
/*
 * The real VMA that contains addr, or else the first one above it:
 * 0, -ENOENT if there is none, another -errno if the kernel cannot say
 * (-ENOSYS: no /proc/self/maps to ask).
 */
int kernel_vma_find(struct kernel_maps *km, unsigned long addr, struct kernel_vma *kv);

#endif
