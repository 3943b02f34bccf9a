/* t_faulting MS: fault anonymous pages for MS milliseconds, mapping afresh as it goes. */
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <time.h>

static double now_ms(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

int main(int argc, char **argv)
{
	size_t len = 16 << 20, i;
	double until = now_ms() + (argc > 1 ? atof(argv[1]) : 300);
	unsigned long touched = 0, sum = 0;
	unsigned char *p;

	while (now_ms() < until) {
		p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (p == MAP_FAILED)
			return perror("mmap"), 1;
		for (i = 0; i < len && now_ms() < until; i += 4096, touched++)
			p[i] = (unsigned char)i;
		for (i = 0; i < len; i += 4096)
			sum += p[i];
		munmap(p, len);
	}
	printf("touched %s\n", touched ? "some" : "none");
	return sum == (unsigned long)-1;
}
