/* t_read: read(2) from a pipe and a file into fresh mapped memory (kernel faults). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define LEN (1u << 20)

int main(int argc, char **argv)
{
	unsigned char *p = mmap(NULL, LEN, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	unsigned char *q = mmap(NULL, LEN, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	char path[] = "/tmp/uspf-t_read-XXXXXX";
	unsigned long s = 0;
	int fds[2], fd, i;
	ssize_t n, got = 0;

	if (p == MAP_FAILED || q == MAP_FAILED || pipe(fds))
		return 1;
	/* a pipe: write a pattern, read it into fresh pages */
	for (i = 0; i < 16; i++) {
		char buf[4096];

		memset(buf, 'a' + i, sizeof(buf));
		if (write(fds[1], buf, sizeof(buf)) != (ssize_t)sizeof(buf))
			return 1;
		n = read(fds[0], p + (size_t)i * 8192 + 100, sizeof(buf));
		if (n != (ssize_t)sizeof(buf)) {
			perror("read pipe");
			return 2;
		}
		got += n;
	}
	for (i = 0; i < 16; i++)
		s += p[(size_t)i * 8192 + 100] + p[(size_t)i * 8192 + 99];
	printf("pipe: %zd bytes, sum %lu\n", got, s);
	/* a file: LEN bytes read at once into fresh memory */
	fd = mkstemp(path);
	if (fd < 0)
		return 1;
	unlink(path);
	for (i = 0; i < (int)(LEN / 4096); i++) {
		char buf[4096];

		memset(buf, i & 0xff, sizeof(buf));
		if (write(fd, buf, sizeof(buf)) != (ssize_t)sizeof(buf))
			return 1;
	}
	lseek(fd, 0, SEEK_SET);
	n = read(fd, q, LEN);
	if (n != (ssize_t)LEN) {
		perror("read file");
		return 3;
	}
	s = 0;
	for (i = 0; i < (int)LEN; i += 4096)
		s += q[i];
	printf("file: %zd bytes, sum %lu\n", n, s);
	(void)argc;
	(void)argv;
	return 0;
}
