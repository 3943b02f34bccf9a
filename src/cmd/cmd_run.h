/* SPDX-License-Identifier: MIT */
/*
 * cmd_run.h - `uspf run [options] -- PROGRAM ARGS...` (cmd/cmd_run.c).
 */
#ifndef USPF_CMD_RUN_H
#define USPF_CMD_RUN_H

int cmd_run(int argc, char **argv);

#endif
