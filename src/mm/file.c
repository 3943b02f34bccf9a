/* SPDX-License-Identifier: MIT */
/*
 * file.c - the file objects behind file-backed VMAs and their i_mmap.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mm/file.h"
#include "uffd/uffd.h"
#include "mm/jiffies.h"
#include "mm/kmem.h"
#include "mm/mm.h"
#include "mm/vma.h"

static pthread_mutex_t files_lock = PTHREAD_MUTEX_INITIALIZER;
static struct uspf_file *files;
static size_t nr_files;

int file_get(int fd, struct uspf_file **out)
{
	struct uspf_file *f;
	struct stat st;
	int dup_fd;

	if (fstat(fd, &st))
		return -errno;
	pthread_mutex_lock(&files_lock);
	for (f = files; f; f = f->next) {
		if (f->dev == st.st_dev && f->ino == st.st_ino) {
			f->refcount++;
			pthread_mutex_unlock(&files_lock);
			*out = f;
			return 0;
		}
	}
	f = kmem_map(sizeof(*f));
	dup_fd = f ? uffd_fd_keep(fcntl(fd, F_DUPFD_CLOEXEC, 3)) : -1;
	if (!f || dup_fd < 0) {
		int err = f ? -errno : -ENOMEM;

		pthread_mutex_unlock(&files_lock);
		kmem_unmap(f, sizeof(*f));
		return err;
	}
	f->dev = st.st_dev;
	f->ino = st.st_ino;
	f->fd = dup_fd;
	f->refcount = 1;
	init_rwsem(&f->i_mmap_rwsem);
	f->next = files;
	files = f;
	nr_files++;
	pthread_mutex_unlock(&files_lock);
	*out = f;
	return 0;
}

void file_dup(struct uspf_file *f)
{
	pthread_mutex_lock(&files_lock);
	f->refcount++;
	pthread_mutex_unlock(&files_lock);
}

void file_put(struct uspf_file *f)
{
	struct uspf_file **pp;

	if (!f)
		return;
	pthread_mutex_lock(&files_lock);
	if (--f->refcount) {
		pthread_mutex_unlock(&files_lock);
		return;
	}
	for (pp = &files; *pp != f; pp = &(*pp)->next)
		;
	*pp = f->next;
	nr_files--;
	pthread_mutex_unlock(&files_lock);
	uffd_fd_close(f->fd);
	kmem_unmap(f, sizeof(*f));
}

size_t files_open(void)
{
	size_t n;

	pthread_mutex_lock(&files_lock);
	n = nr_files;
	pthread_mutex_unlock(&files_lock);
	return n;
}

/* i_mmap_rwsems the calling thread holds: lockdep's held-locks, for one class. */
static __thread unsigned int i_mmap_held;

bool i_mmap_held_by_me(void)
{
	return i_mmap_held != 0;
}

void i_mmap_lock_write(struct uspf_mm *mm, struct uspf_file *f, uint64_t *t0)
{
	if (!down_write_trylock(&f->i_mmap_rwsem)) {
		atomic_fetch_add_explicit(&mm->i_mmap_contended, 1, memory_order_relaxed);
		down_write(&f->i_mmap_rwsem);
	}
	i_mmap_held++;
	*t0 = uspf_now_ns();
}

void i_mmap_unlock_write(struct uspf_mm *mm, struct uspf_file *f, uint64_t t0)
{
	uint64_t held = uspf_now_ns() - t0;

	atomic_fetch_add_explicit(&f->hold_ns, held, memory_order_relaxed);
	atomic_fetch_add_explicit(&f->holds, 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&mm->i_mmap_hold_ns, held, memory_order_relaxed);
	atomic_fetch_add_explicit(&mm->i_mmap_holds, 1, memory_order_relaxed);
	i_mmap_held--;
	up_write(&f->i_mmap_rwsem);
}

void vma_link_file(struct uspf_vma *vma)
{
	struct uspf_file *f = vma->vm_file;

	vma->shared_prev = NULL;
	vma->shared_next = f->i_mmap;
	if (f->i_mmap)
		f->i_mmap->shared_prev = vma;
	f->i_mmap = vma;
	f->i_mmap_count++;
}

void vma_unlink_file(struct uspf_vma *vma)
{
	struct uspf_file *f = vma->vm_file;

	if (vma->shared_prev)
		vma->shared_prev->shared_next = vma->shared_next;
	else
		f->i_mmap = vma->shared_next;
	if (vma->shared_next)
		vma->shared_next->shared_prev = vma->shared_prev;
	vma->shared_prev = vma->shared_next = NULL;
	f->i_mmap_count--;
}

bool vma_in_i_mmap(struct uspf_vma *vma)
{
	struct uspf_file *f = vma->vm_file;
	struct uspf_vma *v;
	bool found = false;

	down_read(&f->i_mmap_rwsem);
	for (v = f->i_mmap; v && !found; v = v->shared_next)
		found = v == vma;
	up_read(&f->i_mmap_rwsem);
	return found;
}
