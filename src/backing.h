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

#include "uspf.h"

/* Check a caller's backing: -EINVAL (bad kind, offset, no callback), -EBADF, -EACCES (write-only fd). */
int backing_validate(const struct uspf_backing *b);
/* vm_pgoff of a fresh mapping's first page. */
unsigned long backing_first_pgoff(const struct uspf_backing *b);
/*
 * Write the contents of pages [pgoff, pgoff + len/PAGE_SIZE) into buf.
 * Runs on a handler thread with no lock held.  0 or a negative errno.
 */
int backing_fill(const struct uspf_backing *b, uint64_t pgoff, void *buf, size_t len);

#endif
