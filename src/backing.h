/* SPDX-License-Identifier: MIT */
/*
 * backing.h - where a page's first contents come from.
 *
 * A VMA's vm_pgoff is the page offset of vm_start in its backing object,
 * as in the kernel: a split or move keeps each page's offset, so a page
 * always gets the same contents wherever it is mapped.
 */
#ifndef USPF_BACKING_H
#define USPF_BACKING_H

#include <stddef.h>
#include <stdint.h>

#include <stdbool.h>

#include "uspf.h"

/* Check a caller's backing: -EINVAL (bad kind, offset, no callback), -EBADF, -EACCES (write-only fd). */
int backing_validate(const struct uspf_backing *b);
/*
 * The same backing object: the kind, and the pattern's generation, the
 * file (the file object's own descriptor) or the callback and its
 * argument.  Where in the object a VMA starts is its vm_pgoff, not this.
 * One meaning for all who ask: the merge code (may two VMAs be one?), a
 * revalidation (is this still the mapping the fill was for?), the debug
 * check of a commit.
 */
bool backing_same(const struct uspf_backing *a, const struct uspf_backing *b);
/* vm_pgoff of a fresh mapping's first page. */
unsigned long backing_first_pgoff(const struct uspf_backing *b);
/*
 * Write the contents of pages [pgoff, pgoff + len/PAGE_SIZE) into buf.
 * Runs on a handler thread with no lock held.  0 or a negative errno.
 */
int backing_fill(const struct uspf_backing *b, uint64_t pgoff, void *buf, size_t len);

#endif
