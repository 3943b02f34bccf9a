/* SPDX-License-Identifier: MIT */
/*
 * backing.c - page contents: zero, pattern, file, user callback.
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "backing.h"
#include "mm/vma.h"

/* splitmix64's finaliser: every input bit reaches every output bit. */
static uint64_t mix64(uint64_t x)
{
	x ^= x >> 30;
	x *= 0xbf58476d1ce4e5b9ull;
	x ^= x >> 27;
	x *= 0x94d049bb133111ebull;
	x ^= x >> 31;
	return x;
}

static uint64_t pattern_base(uint64_t generation, uint64_t pgoff)
{
	return mix64(mix64(generation + 0x9e3779b97f4a7c15ull) ^ pgoff);
}

/*
 * Word i of a page is base + i * odd: cheap to fill, and a wrong
 * generation, a wrong offset or a torn page all show in the first words.
 */
#define PATTERN_STEP 0x2545f4914f6cdd1dull

void uspf_pattern_fill(uint64_t generation, uint64_t pgoff, void *page)
{
	uint64_t *w = page, v = pattern_base(generation, pgoff);
	size_t i;

	for (i = 0; i < PAGE_SIZE / sizeof(*w); i++, v += PATTERN_STEP)
		w[i] = v;
}

bool uspf_pattern_check(uint64_t generation, uint64_t pgoff, const void *page)
{
	const uint64_t *w = page;
	uint64_t v = pattern_base(generation, pgoff);
	size_t i;

	for (i = 0; i < PAGE_SIZE / sizeof(*w); i++, v += PATTERN_STEP)
		if (w[i] != v)
			return false;
	return true;
}

/*
 * What mmap(MAP_PRIVATE, fd) refuses, in the kernel's order: a bad offset
 * (EINVAL, before the fd is looked at), a descriptor fget() does not give
 * out (closed, or O_PATH: EBADF), one not open for reading (do_mmap()'s
 * FMODE_READ check: EACCES), then a file with no ->mmap (ENODEV): pipes,
 * directories and sockets, which pread(2) could not fill a page from either.
 */
static int file_validate(int fd, off_t offset)
{
	struct stat st;
	int fl;

	if (offset < 0 || (offset & (PAGE_SIZE - 1)))
		return -EINVAL;
	fl = fcntl(fd, F_GETFL);
	if (fl < 0 || (fl & O_PATH))
		return -EBADF;
	if ((fl & O_ACCMODE) == O_WRONLY)
		return -EACCES;
	if (fstat(fd, &st))
		return -errno;
	if (S_ISFIFO(st.st_mode) || S_ISDIR(st.st_mode) || S_ISSOCK(st.st_mode))
		return -ENODEV;
	return 0;
}

bool backing_same(const struct uspf_backing *a, const struct uspf_backing *b)
{
	if (a->kind != b->kind)
		return false;
	switch (a->kind) {
	case USPF_BACKING_PATTERN:
		return a->pattern.generation == b->pattern.generation;
	case USPF_BACKING_FILE:
		return a->file.fd == b->file.fd;
	case USPF_BACKING_FILL:
		return a->fill.fn == b->fill.fn && a->fill.arg == b->fill.arg;
	default:
		return true;
	}
}

int backing_validate(const struct uspf_backing *b)
{
	switch (b->kind) {
	case USPF_BACKING_ZERO:
	case USPF_BACKING_PATTERN:
		return 0;
	case USPF_BACKING_FILE:
		return file_validate(b->file.fd, b->file.offset);
	case USPF_BACKING_FILL:
		return b->fill.fn ? 0 : -EINVAL;
	default:
		return -EINVAL;
	}
}

unsigned long backing_first_pgoff(const struct uspf_backing *b)
{
	if (b->kind == USPF_BACKING_FILE)
		return (unsigned long)b->file.offset >> PAGE_SHIFT;
	return 0;
}

static int file_fill(int fd, uint64_t pgoff, char *buf, size_t len)
{
	off_t off = (off_t)(pgoff << PAGE_SHIFT);
	size_t done = 0;

	while (done < len) {
		ssize_t n = pread(fd, buf + done, len - done, off + (off_t)done);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			break;		/* EOF: the rest reads as zero */
		done += (size_t)n;
	}
	memset(buf + done, 0, len - done);
	return 0;
}

int backing_fill(const struct uspf_backing *b, uint64_t pgoff, void *buf, size_t len)
{
	size_t i;
	int saved = errno, ret = 0;

	switch (b->kind) {
	case USPF_BACKING_ZERO:
		memset(buf, 0, len);
		break;
	case USPF_BACKING_PATTERN:
		for (i = 0; i < len / PAGE_SIZE; i++)
			uspf_pattern_fill(b->pattern.generation, pgoff + i,
					  (char *)buf + i * PAGE_SIZE);
		break;
	case USPF_BACKING_FILE:
		ret = file_fill(b->file.fd, pgoff, buf, len);
		break;
	case USPF_BACKING_FILL:
		ret = b->fill.fn(b->fill.arg, buf, pgoff << PAGE_SHIFT, len);
		if (ret > 0)
			ret = -EIO;
		break;
	default:
		ret = -EINVAL;
	}
	errno = saved;
	return ret;
}
