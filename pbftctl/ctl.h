/* ctl.h - pbftctl's control-socket commands. */
#ifndef PBFTCTL_CTL_H
#define PBFTCTL_CTL_H

#include <stdio.h>

/* Parses global options and runs one control command (or the prompt). */
int ctl_main(int argc, char **argv, void (*usage)(FILE *));

#endif
