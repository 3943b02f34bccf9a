/* SPDX-License-Identifier: MIT */
/*
 * as_nobody.h - run one step of a test as an unprivileged user.
 *
 * The user-mode-only userfaultfd is what a user without privilege gets
 * (vm.unprivileged_userfaultfd=0): the tests reach it by forking, dropping
 * to nobody in the child and running the step there, so the test process
 * keeps its privileges.  The step returns 0 (pass), 77 (not reachable on
 * this machine: skip) or the number of the check that failed.
 */
#ifndef USPF_TESTS_AS_NOBODY_H
#define USPF_TESTS_AS_NOBODY_H

#include <criterion/criterion.h>
#include <grp.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#define T_NOBODY	65534

static inline void t_run_as_nobody(int (*step)(void))
{
	int status;
	pid_t pid;

	if (geteuid() != 0)
		cr_skip_test("needs root to drop to nobody");
	pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		if (setgroups(0, NULL) || setresgid(T_NOBODY, T_NOBODY, T_NOBODY) ||
		    setresuid(T_NOBODY, T_NOBODY, T_NOBODY))
			_exit(77);
		_exit(step());
	}
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	cr_assert(WIFEXITED(status), "child status %#x", status);
	if (WEXITSTATUS(status) == 77)
		cr_skip_test("user-mode-only path not reachable here");
	cr_assert_eq(WEXITSTATUS(status), 0, "child step %d failed", WEXITSTATUS(status));
}

#endif
