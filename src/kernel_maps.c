/* SPDX-License-Identifier: MIT */
/*
 * kernel_maps.c - the kernel's own VMAs, asked for one address at a time
 * (fs/proc/task_mmu.c: do_procmap_query(), or show_map_vma()'s text).
 *
 * Raw system calls throughout: under `uspf run` the C library's open,
 * ioctl and read are the program's, interposed.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "kernel_maps.h"
#include "uffd/uffd.h"

/* include/uapi/linux/fs.h (6.11); the C library's headers may predate it. */
struct procmap_query {
	uint64_t size;
	uint64_t query_flags;
	uint64_t query_addr;
	uint64_t vma_start;
	uint64_t vma_end;
	uint64_t vma_flags;
	uint64_t vma_page_size;
	uint64_t vma_offset;
	uint64_t inode;
	uint32_t dev_major;
	uint32_t dev_minor;
	uint32_t vma_name_size;
	uint32_t build_id_size;
	uint64_t vma_name_addr;
	uint64_t build_id_addr;
};

#define PROCMAP_QUERY			0xc0686611UL	/* _IOWR(0x66, 17, struct procmap_query) */
#define PROCMAP_QUERY_VMA_READABLE	0x01
#define PROCMAP_QUERY_VMA_WRITABLE	0x02
#define PROCMAP_QUERY_VMA_EXECUTABLE	0x04
#define PROCMAP_QUERY_COVERING_OR_NEXT_VMA 0x10

static int open_maps(void)
{
	int fd = (int)syscall(SYS_openat, AT_FDCWD, "/proc/self/maps", O_RDONLY | O_CLOEXEC);

	return fd < 0 ? -errno : uffd_fd_keep(fd);
}

int kernel_maps_open(struct kernel_maps *km)
{
	struct kernel_vma kv;
	int ret;

	km->text = false;
	km->fd = open_maps();
	if (km->fd < 0)
		return km->fd;
	/* Probe once: ENOTTY (before 6.11) means the text, for good. */
	ret = kernel_vma_find(km, 0, &kv);
	if (ret == -ENOTTY || ret == -EINVAL) {
		km->text = true;
		ret = kernel_vma_find(km, 0, &kv);
	}
	if (ret && ret != -ENOENT) {
		kernel_maps_close(km);
		return ret;
	}
	return 0;
}

void kernel_maps_close(struct kernel_maps *km)
{
	if (km->fd >= 0)
		uffd_fd_close(km->fd);
	km->fd = -1;
}

int kernel_maps_move(struct kernel_maps *km)
{
	int fd = open_maps();

	if (fd < 0)
		return fd;
	uffd_fd_forget(km->fd);	/* the program's dup2() replaces it */
	km->fd = fd;
	return 0;
}

static int prot_of(bool r, bool w, bool x)
{
	return (r ? PROT_READ : 0) | (w ? PROT_WRITE : 0) | (x ? PROT_EXEC : 0);
}

static int query(struct kernel_maps *km, unsigned long addr, struct kernel_vma *kv)
{
	struct procmap_query q;

	memset(&q, 0, sizeof(q));
	q.size = sizeof(q);
	q.query_flags = PROCMAP_QUERY_COVERING_OR_NEXT_VMA;
	q.query_addr = addr;
	if (syscall(SYS_ioctl, km->fd, PROCMAP_QUERY, &q))
		return -errno;
	kv->start = q.vma_start;
	kv->end = q.vma_end;
	kv->prot = prot_of(q.vma_flags & PROCMAP_QUERY_VMA_READABLE,
			   q.vma_flags & PROCMAP_QUERY_VMA_WRITABLE,
			   q.vma_flags & PROCMAP_QUERY_VMA_EXECUTABLE);
	return 0;
}

static unsigned long hex(const char **p)
{
	unsigned long v = 0;

	for (;; (*p)++) {
		char c = **p;

		if (c >= '0' && c <= '9')
			v = v * 16 + (unsigned long)(c - '0');
		else if (c >= 'a' && c <= 'f')
			v = v * 16 + (unsigned long)(c - 'a' + 10);
		else
			return v;
	}
}

/* "start-end rwxp ...": false if the line is not that. */
static bool parse_line(const char *p, struct kernel_vma *kv)
{
	kv->start = hex(&p);
	if (*p++ != '-')
		return false;
	kv->end = hex(&p);
	if (*p++ != ' ' || !p[0] || !p[1] || !p[2])
		return false;
	kv->prot = prot_of(p[0] == 'r', p[1] == 'w', p[2] == 'x');
	return true;
}

/*
 * The text, line by line from the top (the file is a snapshot per read
 * call, so a change between two reads can show a VMA twice or not at all;
 * the writers ask under the model's mmap write lock, between their own
 * calls, which is what matters).
 */
static int text_find(struct kernel_maps *km, unsigned long addr, struct kernel_vma *kv)
{
	char buf[4096];
	size_t have = 0;
	bool skip = false;	/* inside a line longer than buf, head already parsed */
	off_t off = 0;

	for (;;) {
		ssize_t n = syscall(SYS_pread64, km->fd, buf + have, sizeof(buf) - 1 - have, off);
		char *line, *nl;

		if (n < 0)
			return -errno;
		if (n == 0)
			return -ENOENT;
		off += n;
		have += (size_t)n;
		buf[have] = '\0';
		line = buf;
		while ((nl = strchr(line, '\n'))) {
			*nl = '\0';
			if (!skip && parse_line(line, kv) && kv->end > addr)
				return 0;
			skip = false;
			line = nl + 1;
		}
		have -= (size_t)(line - buf);
		if (have == sizeof(buf) - 1) {
			/* No newline in a full buffer: a long path.  Its head has the range. */
			if (!skip && parse_line(line, kv) && kv->end > addr)
				return 0;
			skip = true;
			have = 0;
		}
		memmove(buf, line, have);
	}
}

int kernel_vma_find(struct kernel_maps *km, unsigned long addr, struct kernel_vma *kv)
{
	if (km->fd < 0)
		return -ENOSYS;
	return km->text ? text_find(km, addr, kv) : query(km, addr, kv);
}
