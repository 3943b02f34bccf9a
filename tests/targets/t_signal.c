/* t_signal: a signal handler touching fresh memory while the main thread faults. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/time.h>

#define LEN (16u << 20)

static unsigned char *area;
static volatile sig_atomic_t ticks;

static void on_alarm(int sig)
{
	/* touch a page of a region the handler owns: a fault inside the handler */
	area[LEN / 2 + (size_t)(ticks % 512) * 4096 + 1] += 1;
	ticks++;
	(void)sig;
}

int main(void)
{
	struct itimerval it = { { 0, 200 }, { 0, 200 } };
	struct sigaction sa;
	unsigned long sum = 0;
	size_t i;
	int round;

	area = mmap(NULL, LEN, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (area == MAP_FAILED)
		return 1;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_alarm;
	sa.sa_flags = SA_RESTART;
	sigaction(SIGALRM, &sa, NULL);
	setitimer(ITIMER_REAL, &it, NULL);
	for (round = 0; round < 4; round++) {
		for (i = 0; i < LEN / 2; i += 4096)
			area[i] = (unsigned char)(i >> 12) + (unsigned char)round;
		for (i = 0; i < LEN / 2; i += 4096)
			sum += area[i];
		madvise(area, LEN / 2, MADV_DONTNEED);
	}
	memset(&it, 0, sizeof(it));
	setitimer(ITIMER_REAL, &it, NULL);
	printf("sum %lu, signals seen: %s\n", sum, ticks > 0 ? "yes" : "no");
	return 0;
}
