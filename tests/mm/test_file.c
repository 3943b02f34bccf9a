/* SPDX-License-Identifier: MIT */
/*
 * tests/mm/test_file.c - file objects and their i_mmap (src/mm/file.c): one object per
 * file shared by every mapping and every mm, the mapping set kept through
 * splits, merges and unmaps, our own descriptor, and i_mmap_rwsem hold
 * times counted with and without Yu Ma's reordering (seed 000).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include "tests/helpers.h"
#include "mm/file.h"
#include "hooks.h"
#include "runtime.h"
#include "mm/vma.h"
#include "mm/vma_index.h"

TestSuite(file, .timeout = 30);

static int make_file(size_t pages)
{
	char path[] = "/tmp/uspf-file-XXXXXX";
	int fd = mkstemp(path);
	size_t i;

	cr_assert_geq(fd, 0);
	unlink(path);
	for (i = 0; i < pages; i++) {
		char page[T_PAGE];

		memset(page, (int)(i + 1), sizeof(page));
		cr_assert_eq(write(fd, page, sizeof(page)), (ssize_t)sizeof(page));
	}
	return fd;
}

static char *map_file(struct uspf *u, int fd, size_t pages, off_t off)
{
	struct uspf_backing b = { .kind = USPF_BACKING_FILE, .file = { fd, off } };

	return t_map(u, pages * T_PAGE, &b);
}

static struct uspf_file *file_of(struct uspf *u, void *addr)
{
	struct uspf_vma *vma;

	rcu_read_lock();
	vma = vma_lookup(&u->mm, (unsigned long)addr);
	rcu_read_unlock();
	cr_assert_not_null(vma);
	cr_assert_not_null(vma->vm_file);
	return vma->vm_file;
}

/* Two mappings, two descriptors, two mms: one file object, two VMAs in i_mmap. */
Test(file, one_object_per_file)
{
	struct uspf *a = t_runtime(USPF_POLICY_MMAP_LOCK, 1), *b = t_runtime(USPF_POLICY_SPF, 1);
	int fd = make_file(8), fd2;
	size_t open0 = files_open();
	char *p, *q;
	char path[64];

	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	fd2 = open(path, O_RDONLY);
	cr_assert_geq(fd2, 0);
	p = map_file(a, fd, 8, 0);
	q = map_file(b, fd2, 4, 4 * T_PAGE);
	cr_assert_eq(files_open(), open0 + 1);
	cr_assert_eq(file_of(a, p), file_of(b, q));
	cr_assert_eq(file_of(a, p)->i_mmap_count, 2);
	cr_assert_eq(p[0], 1);
	cr_assert_eq(q[0], 5, "page 4 of the file");
	cr_assert_eq(uspf_munmap(a, p, 8 * T_PAGE), 0);
	cr_assert_eq(file_of(b, q)->i_mmap_count, 1);
	uspf_destroy(b);
	uspf_destroy(a);
	cr_assert_eq(files_open(), open0, "the last VMA closed the file");
	close(fd);
	close(fd2);
}

/* The caller may close its descriptor: faults read through ours. */
Test(file, survives_the_callers_close)
{
	struct uspf *u = t_runtime(USPF_POLICY_MMAP_LOCK, 1);
	int fd = make_file(4);
	char *p = map_file(u, fd, 4, 0);

	close(fd);
	cr_assert_eq(p[3 * T_PAGE], 4);
	uspf_destroy(u);
}

/*
 * What mmap(MAP_PRIVATE, fd) refuses, uspf_mmap refuses with the kernel's
 * errno (checked against the kernel here first): no mapping, no VMA, no
 * file object, *out untouched.  A write-only descriptor fails the
 * FMODE_READ check before do_mmap() looks for ->mmap, so a pipe's write
 * end is EACCES and its read end ENODEV; an O_PATH descriptor is not
 * one fget() gives out, so EBADF.
 */
static void assert_refused(struct uspf *u, int fd, int err, const char *what)
{
	struct uspf_backing b = { .kind = USPF_BACKING_FILE, .file = { fd, 0 } };
	size_t open0 = files_open();
	void *p = (void *)0x1234, *k;
	size_t vmas0 = vma_index_count(&u->mm.index);
	int ret;

	cr_assert_geq(fd, 0, "%s: %s", what, strerror(errno));
	k = mmap(NULL, T_PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
	cr_assert_eq(k, MAP_FAILED, "%s: the kernel maps it", what);
	cr_assert_eq(errno, err, "%s: the kernel says %s", what, strerror(errno));
	ret = uspf_mmap(u, NULL, T_PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE, &b, &p);
	cr_assert_eq(ret, -err, "%s: got %d (%s), want %s", what, ret, strerror(-ret),
		     strerror(err));
	cr_assert_eq(p, (void *)0x1234, "%s: *out written", what);
	cr_assert_eq(files_open(), open0, "%s: a file object was made", what);
	cr_assert_eq(vma_index_count(&u->mm.index), vmas0, "%s: the model has a VMA", what);
	close(fd);
}

Test(file, refuses_what_mmap_refuses)
{
	struct uspf *u = t_runtime(USPF_POLICY_MMAP_LOCK, 1);
	int pfd[2], sv[2], fd = make_file(1);
	char path[64];

	cr_assert_eq(pipe(pfd), 0);
	snprintf(path, sizeof(path), "/proc/self/fd/%d", pfd[0]);
	assert_refused(u, open(path, O_RDWR), ENODEV, "pipe opened read-write");
	assert_refused(u, pfd[0], ENODEV, "pipe read end");
	assert_refused(u, pfd[1], EACCES, "pipe write end");
	assert_refused(u, open("/tmp", O_RDONLY | O_DIRECTORY), ENODEV, "directory");
	assert_refused(u, open("/tmp", O_PATH), EBADF, "O_PATH directory");
	cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	close(sv[1]);
	assert_refused(u, sv[0], ENODEV, "socket");
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	assert_refused(u, open(path, O_PATH), EBADF, "O_PATH regular file");
	assert_refused(u, open(path, O_WRONLY), EACCES, "write-only regular file");
	/* The same file open for reading maps. */
	cr_assert_eq(map_file(u, fd, 1, 0)[0], 1);
	uspf_destroy(u);
	close(fd);
}

/*
 * 01234567
 * FFFFFFFF     one file VMA in i_mmap
 * FFfffFFF     mprotect 2-4: three VMAs, all three in i_mmap
 * FFFFFFFF     back: merged, one again
 */
Test(file, split_and_merge_keep_i_mmap)
{
	struct uspf *u = t_runtime(USPF_POLICY_MMAP_LOCK, 1);
	int fd = make_file(8);
	char *p = map_file(u, fd, 8, 0);
	struct uspf_file *f = file_of(u, p);
	char msg[256];

	runtime_set_debug(u, 0, true);
	cr_assert_eq(uspf_mprotect(u, p + 2 * T_PAGE, 3 * T_PAGE, PROT_READ), 0);
	cr_assert_eq(f->i_mmap_count, 3);
	cr_assert_eq(runtime_violations(u, msg, sizeof(msg)), 0, "%s", msg);
	cr_assert_eq(p[3 * T_PAGE], 4);
	cr_assert_eq(uspf_mprotect(u, p + 2 * T_PAGE, 3 * T_PAGE, PROT_READ | PROT_WRITE), 0);
	cr_assert_eq(f->i_mmap_count, 1);
	cr_assert_eq(runtime_violations(u, msg, sizeof(msg)), 0, "%s", msg);
	cr_assert_eq(uspf_munmap(u, p + 3 * T_PAGE, T_PAGE), 0);
	cr_assert_eq(f->i_mmap_count, 2);
	cr_assert_eq(runtime_violations(u, msg, sizeof(msg)), 0, "%s", msg);
	uspf_destroy(u);
	close(fd);
}

/*
 * Every mapping, unmapping, split and merge of a file VMA takes the file's
 * i_mmap_rwsem for write once, and the time it is held is counted - with
 * Yu Ma's reordering (the index insert outside the lock) and without.
 */
ParameterizedTestParameters(file, i_mmap_lock_counted)
{
	static bool reorder[] = { true, false };

	return cr_make_param_array(bool, reorder, 2);
}

ParameterizedTest(bool *reorder, file, i_mmap_lock_counted)
{
	struct uspf_config cfg;
	struct uspf *u;
	int fd = make_file(4), i;
	char *p[16];
	char msg[256];

	uspf_config_init(&cfg);
	cfg.immap_reorder = *reorder;
	cfg.handlers = 1;
	u = t_runtime_cfg(&cfg);
	runtime_set_debug(u, 0, true);
	for (i = 0; i < 16; i++)
		p[i] = map_file(u, fd, 4, 0);
	cr_assert_eq(t_counter(u, USPF_C_I_MMAP_LOCKS), 16);
	cr_assert_gt(t_counter(u, USPF_C_I_MMAP_HOLD_NS), 0);
	cr_assert_eq(file_of(u, p[0])->i_mmap_count, 16);
	cr_assert_eq(runtime_violations(u, msg, sizeof(msg)), 0, "%s", msg);
	for (i = 0; i < 16; i++)
		cr_assert_eq(uspf_munmap(u, p[i], 4 * T_PAGE), 0);
	cr_assert_eq(t_counter(u, USPF_C_I_MMAP_LOCKS), 32);
	uspf_destroy(u);
	close(fd);
}
