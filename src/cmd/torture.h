/* SPDX-License-Identifier: MIT */
/*
 * torture.h - `uspf torture`: random mapping changes from writer threads
 * against faulting threads that check every page they touch, with the
 * runtimes' invariant checks on, a watchdog for lost faults and a VMA leak
 * check at the end; optionally with bug injections (inject.h), each of
 * which the torture must catch.
 */
#ifndef USPF_TORTURE_H
#define USPF_TORTURE_H

/* Called with argv[0] = "torture"; returns 0 pass, 1 fail, 2 usage error. */
int cmd_torture(int argc, char **argv);

#endif
