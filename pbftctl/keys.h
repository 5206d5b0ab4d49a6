/* keys.h - `pbftctl keygen` and `pbftctl init`. */
#ifndef PBFTCTL_KEYS_H
#define PBFTCTL_KEYS_H

/* Each takes argv with argv[0] = the subcommand; returns an exit status. */
int pbftctl_keygen(int argc, char **argv);
int pbftctl_init(int argc, char **argv);

#endif
