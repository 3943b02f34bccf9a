/* SPDX-License-Identifier: MIT */
/*
 * cmd/bench/execl.c - UnixBench Execl-style file mapping: many short-lived
 * private mappings of one shared file from parallel address spaces, the
 * case of Yu Ma's 2023 i_mmap_rwsem patch (seed 000).  Execl execs short
 * bash scripts in parallel; each exec's load_elf_binary() maps the same
 * binary and libraries, and every mmap and exit_mmap takes the file's
 * i_mmap_rwsem for write - a lock shared by every process, where the
 * mmap_lock is not.
 *
 * Here each worker is its own address space, as Execl's processes are: for
 * uspf a runtime (mm) of its own per worker thread, all in this process so
 * that they share the one file object and its i_mmap_rwsem; for the native
 * and naive references a forked process each (the kernel's mm is per
 * process; naive: a handler thread per process).  The file (--file-size,
 * a temporary file filled with non-zero data, unlinked at once) is created
 * before the workers start.  Each worker loops: map the whole file private
 * (for uspf: USPF_BACKING_FILE), write one byte to --touch-pages pages
 * spread evenly over it (a write fault copies the page, as a binary's data
 * segment; write faults, unlike read faults, get no fault-around from the
 * kernel), unmap.  Runs for --duration (or --loops loops); ops_per_sec
 * counts the maps (loops).
 *
 * The uspf rows run with and without the reordering
 * (uspf_config.immap_reorder, --immap-reorder): without it, the VMA index
 * insert happens inside i_mmap_lock_write(); the counters i_mmap_locks,
 * i_mmap_hold_ns and i_mmap_contended show the lock's hold time and
 * contention.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cmd/bench/bench.h"

static int execl_setup(struct bench_run *r)
{
	const char *dir = getenv("TMPDIR");
	size_t pg = bench_page_size(), off;
	char path[4096], *page;
	ssize_t n;
	int fd, ret = 0;

	if (!dir || !*dir)
		dir = "/tmp";
	if ((size_t)snprintf(path, sizeof(path), "%s/uspf-bench-execl.XXXXXX", dir) >= sizeof(path))
		return -ENAMETOOLONG;
	fd = mkostemp(path, O_CLOEXEC);
	if (fd < 0) {
		ret = -errno;
		fprintf(stderr, "uspf bench: execl: creating a file in %s: %s\n", dir, strerror(-ret));
		return ret;
	}
	unlink(path);
	page = malloc(pg);
	if (!page) {
		close(fd);
		return -ENOMEM;
	}
	for (off = 0; off < r->o->file_size && !ret; off += pg) {
		memset(page, (int)(0x41 + (off / pg) % 26), pg);
		n = pwrite(fd, page, pg, (off_t)off);
		if (n != (ssize_t)pg)
			ret = n < 0 ? -errno : -EIO;
	}
	free(page);
	if (ret) {
		fprintf(stderr, "uspf bench: execl: writing the file: %s\n", strerror(-ret));
		close(fd);
		return ret;
	}
	r->fd = fd;
	return 0;
}

static void execl_teardown(struct bench_run *r)
{
	if (r->fd >= 0)
		close(r->fd);
	r->fd = -1;
}

static int execl_fault(struct bench_worker *w)
{
	const struct bench_opts *o = w->run->o;
	size_t pg = bench_page_size(), pages = o->file_size / pg;
	size_t step = pages / o->touch_pages, i;
	uint64_t loops = 0;
	bool stop = false;
	char *p;
	int ret;

	while (!stop && bench_more_loops(w, loops)) {
		ret = bench_as_map(w->as, o->file_size, w->run->fd, (void **)&p);
		if (ret)
			return ret;
		for (i = 0; i < o->touch_pages && !stop; i++)
			stop = bench_expired(w, bench_touch_page(w, p + i * step * pg));
		ret = bench_as_unmap(w->as, p, o->file_size);
		if (ret)
			return ret;
		loops++;
	}
	w->ops = loops;
	return 0;
}

const struct bench_wl bench_wl_execl = {
	.id = BENCH_EXECL,
	.name = "execl",
	.own_mm = true,
	.timed = true,
	.ops_name = "maps",
	.setup = execl_setup,
	.teardown = execl_teardown,
	.fault = execl_fault,
};
