/* SPDX-License-Identifier: MIT */
/*
 * t_uffd_stress.c - a stress program in the style of the kernel's
 * userfaultfd selftests (tools/testing/selftests/mm/uffd-stress.c), for
 * running under `uspf run`: it knows nothing of uspf.
 *
 * A region of pages, each holding a mutex and a counter.  Locker threads
 * pick random pages, lock the page's mutex, bump its counter and the same
 * page's entry in a separate array (on the heap), unlock.  Meanwhile a
 * churn thread maps, touches, mprotects, madvise(DONTNEED)s, mremaps and
 * unmaps regions of its own and read(2)s into fresh memory.  At the end
 * every page's counter must equal its entry in the array - in the process
 * and in a forked child.  The output is deterministic: a run under uspf
 * must print what a run without it prints.
 *
 * Build: cc -O2 -pthread t_uffd_stress.c -o t_uffd_stress
 */

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#define PAGE		4096ul
#define PAGES		512
#define LOCKERS		4
#define BUMPS		20000
#define CHURN_ROUNDS	300

struct page_head {
	pthread_mutex_t lock;
	uint64_t count;
};

static char *region;
static uint64_t *expected;	/* the separate array */

static struct page_head *head(unsigned int i)
{
	return (struct page_head *)(region + (size_t)i * PAGE);
}

static void *locker(void *arg)
{
	unsigned int seed = (unsigned int)(uintptr_t)arg * 2654435761u + 1;
	int n;

	for (n = 0; n < BUMPS; n++) {
		unsigned int i = (unsigned int)rand_r(&seed) % PAGES;

		pthread_mutex_lock(&head(i)->lock);
		head(i)->count++;
		expected[i]++;
		pthread_mutex_unlock(&head(i)->lock);
	}
	return NULL;
}

static int check_zero(const unsigned char *p, size_t len, const char *what)
{
	size_t i;

	for (i = 0; i < len; i += PAGE / 2)
		if (p[i]) {
			fprintf(stderr, "t_uffd_stress: %s: byte %zu is %u, not 0\n", what, i, p[i]);
			return 1;
		}
	return 0;
}

/* mmap, touch, mprotect, DONTNEED, mremap, read(2) into fresh memory, munmap. */
static int churn_round(int round)
{
	size_t len = (size_t)(16 + round % 48) * PAGE;
	size_t half = len / PAGE / 2 * PAGE;
	int fds[2], bad = 0;
	char *p, *q;
	size_t i;

	p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return 1;
	bad |= check_zero((unsigned char *)p, len, "fresh mapping");
	for (i = 0; i < len; i += PAGE)
		p[i] = (char)(round + 1);
	if (mprotect(p, half, PROT_READ) || mprotect(p, half, PROT_READ | PROT_WRITE))
		return 1;
	for (i = 0; i < len; i += PAGE)
		bad |= p[i] != (char)(round + 1);
	if (madvise(p, half, MADV_DONTNEED))
		return 1;
	bad |= check_zero((unsigned char *)p, half, "after MADV_DONTNEED");
	q = mremap(p, len, 2 * len, MREMAP_MAYMOVE);
	if (q == MAP_FAILED)
		return 1;
	for (i = half; i < len; i += PAGE)
		bad |= q[i] != (char)(round + 1);
	bad |= check_zero((unsigned char *)q + len, len, "grown by mremap");
	/* read(2) into memory never touched: the kernel itself takes the fault. */
	if (pipe(fds))
		return 1;
	if (write(fds[1], "userfault", 9) != 9 || read(fds[0], q + len + PAGE, 9) != 9)
		bad = 1;
	else
		bad |= memcmp(q + len + PAGE, "userfault", 9) != 0;
	close(fds[0]);
	close(fds[1]);
	munmap(q, 2 * len);
	return bad;
}

static void *churn(void *arg)
{
	int round, bad = 0;

	for (round = 0; round < CHURN_ROUNDS; round++)
		bad |= churn_round(round);
	return (void *)(uintptr_t)bad;
}

static int verify(const char *who)
{
	uint64_t sum = 0;
	unsigned int i;

	for (i = 0; i < PAGES; i++) {
		if (head(i)->count != expected[i]) {
			fprintf(stderr, "t_uffd_stress: %s: page %u counts %llu, the array %llu\n",
				who, i, (unsigned long long)head(i)->count,
				(unsigned long long)expected[i]);
			return 1;
		}
		sum += head(i)->count;
	}
	return sum != (uint64_t)LOCKERS * BUMPS;
}

int main(void)
{
	pthread_t lockers[LOCKERS], churner;
	pthread_mutexattr_t attr;
	void *churn_bad;
	unsigned int i;
	int status;
	pid_t pid;

	region = mmap(NULL, PAGES * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
		      -1, 0);
	expected = calloc(PAGES, sizeof(*expected));
	if (region == MAP_FAILED || !expected)
		return 1;
	pthread_mutexattr_init(&attr);
	for (i = 0; i < PAGES; i++)
		pthread_mutex_init(&head(i)->lock, &attr);
	pthread_create(&churner, NULL, churn, NULL);
	for (i = 0; i < LOCKERS; i++)
		pthread_create(&lockers[i], NULL, locker, (void *)(uintptr_t)i);
	for (i = 0; i < LOCKERS; i++)
		pthread_join(lockers[i], NULL);
	pthread_join(churner, &churn_bad);
	if (churn_bad) {
		fprintf(stderr, "t_uffd_stress: the churn thread saw wrong memory\n");
		return 1;
	}
	if (verify("parent"))
		return 1;
	/* The child sees the parent's counters and its array. */
	fflush(stdout);
	pid = fork();
	if (pid == 0)
		_exit(verify("child") || churn_round(7));
	if (pid < 0 || waitpid(pid, &status, 0) != pid || !WIFEXITED(status) ||
	    WEXITSTATUS(status)) {
		fprintf(stderr, "t_uffd_stress: the child disagreed\n");
		return 1;
	}
	printf("t_uffd_stress: %d pages, %d bumps by %d threads, %d churn rounds: ok\n",
	       PAGES, LOCKERS * BUMPS, LOCKERS, CHURN_ROUNDS);
	return 0;
}
