/* prog: linked to libgreet.la; prints deterministic lines. */
#include <stdio.h>

unsigned long greet_sum(unsigned n);
int greet(const char *who, unsigned n);

int main(void)
{
	if (greet("libtool", 1u << 20))
		return 1;
	printf("sum of 3 MiB: %lu\n", greet_sum(3u << 20));
	return 0;
}
