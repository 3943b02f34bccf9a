/* libgreet: a shared library for tests/real-programs.sh's autotools case. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

unsigned long greet_sum(unsigned n);
int greet(const char *who, unsigned n);

unsigned long greet_sum(unsigned n)
{
	unsigned char *p = malloc((size_t)n);
	unsigned long s = 0;
	unsigned i;

	if (!p)
		return 0;
	for (i = 0; i < n; i++)
		p[i] = (unsigned char)(i * 17u + 3u);
	for (i = 0; i < n; i++)
		s += p[i];
	free(p);
	return s;
}

int greet(const char *who, unsigned n)
{
	return printf("hello, %s: %lu\n", who, greet_sum(n)) < 0;
}
