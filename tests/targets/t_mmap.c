/* t_mmap: large anonymous mappings through the whole mmap family. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

static uint64_t sum(const unsigned char *p, size_t n)
{
	uint64_t s = 0;
	size_t i;

	for (i = 0; i < n; i++)
		s = s * 31 + p[i];
	return s;
}

int main(void)
{
	size_t ps = (size_t)sysconf(_SC_PAGESIZE), len = 8 << 20, i;
	unsigned char *p, *q;

	p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return perror("mmap"), 1;
	printf("fresh zero: %d\n", p[12345] == 0 && p[len - 1] == 0);
	for (i = 0; i < len; i += 64)
		p[i] = (unsigned char)(i / 64 * 7);
	printf("checksum: %llu\n", (unsigned long long)sum(p, len));
	/* a hole in the middle */
	printf("munmap middle: %d\n", munmap(p + len / 2, 16 * ps));
	printf("mprotect read-only: %d\n", mprotect(p, len / 4, PROT_READ));
	printf("still readable: %u\n", p[64]);
	printf("mprotect back: %d\n", mprotect(p, len / 4, PROT_READ | PROT_WRITE));
	p[64] = 9;
	/* mixed range: uspf memory and a hole */
	printf("mprotect over hole: %d\n", mprotect(p, len, PROT_READ | PROT_WRITE) == 0 ? 0 : -1);
	printf("madvise dontneed: %d\n", madvise(p, len / 4, MADV_DONTNEED));
	printf("zero after dontneed: %d %d\n", p[64], p[len / 4 - 64]);
	printf("kept after range: %d\n", p[len / 4] == (unsigned char)(len / 4 / 64 * 7));
	/* grow the tail part by mremap (may move) */
	q = mremap(p + len / 2 + 16 * ps, len / 2 - 16 * ps, len, MREMAP_MAYMOVE);
	if (q == MAP_FAILED)
		return perror("mremap"), 1;
	printf("moved data: %d\n", q[0] == (unsigned char)((len / 2 + 16 * ps) / 64 * 7));
	printf("grown tail zero: %d\n", q[len - 1] == 0);
	memset(q + len / 2, 0x5a, len / 2);
	printf("checksum2: %llu\n", (unsigned long long)sum(q, len));
	printf("munmap q: %d\n", munmap(q, len));
	printf("munmap p: %d\n", munmap(p, len / 2));
#ifdef MREMAP_DONTUNMAP
	/* the pages move; the old range stays mapped, empty: it reads zeros again */
	p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return perror("mmap"), 1;
	for (i = 0; i < len / 2; i += 64)
		p[i] = (unsigned char)(i / 64 * 5 + 1);
	/* glibc passes new_address on with MREMAP_DONTUNMAP too: give it one */
	q = mremap(p, len, len, MREMAP_MAYMOVE | MREMAP_DONTUNMAP, NULL);
	if (q == MAP_FAILED)
		return perror("mremap dontunmap"), 1;
	for (i = 0; i < len; i += 64)
		if (q[i] != (i < len / 2 ? (unsigned char)(i / 64 * 5 + 1) : 0) || p[i])
			return fprintf(stderr, "dontunmap: wrong byte at %zu\n", i), 1;
	p[0] = 1;
	q[0] = 2;
	printf("dontunmap: %d %d %d\n", q != p, p[0], q[0]);
	printf("dontunmap checksum: %llu\n", (unsigned long long)sum(q, len));
	printf("dontunmap munmap: %d %d\n", munmap(p, len), munmap(q, len));
#endif
	/* a small mapping the library leaves to the kernel */
	p = mmap(NULL, 4 * ps, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	p[0] = 1;
	printf("small: %d\n", p[0]);
	printf("small munmap: %d\n", munmap(p, 4 * ps));
	/* errors keep their errno */
	i = (size_t)munmap((void *)1, ps);
	printf("bad munmap: %d %s\n", (int)i, strerror(errno));
	return 0;
}
