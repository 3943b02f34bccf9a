/* SPDX-License-Identifier: MIT */
/*
 * compare.h - `uspf compare [options] -- PROGRAM ARGS...` (cmd/compare.c):
 * the user's own program natively and under each policy, side by side.
 */
#ifndef USPF_CMD_COMPARE_H
#define USPF_CMD_COMPARE_H

int cmd_compare(int argc, char **argv);

#endif
