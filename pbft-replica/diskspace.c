/*
 * diskspace.c - free space of the data directory against the reserve; see
 * diskspace.h.
 */
#include "diskspace.h"

#include <stdio.h>
#include <sys/statvfs.h>

#include "log.h"
#include "vfs.h"

#define MIB (1024.0 * 1024.0)

void
diskspace_init(struct diskspace *d, const char *dir, uint64_t reserve)
{
	snprintf(d->dir, sizeof(d->dir), "%s", dir);
	d->reserve = reserve;
	d->free_bytes = UINT64_MAX;
	d->low = false;
	d->refused = 0;
	diskspace_check(d);
}

void
diskspace_check(struct diskspace *d)
{
	struct statvfs sv;
	bool low;

	if (vfs_statvfs(d->dir, &sv) == -1) {
		/* Unknown is not low: a write that fails stops us anyway. */
		log_debug("%s: statvfs failed", d->dir);
		return;
	}
	d->free_bytes = (uint64_t)sv.f_bavail * (uint64_t)sv.f_frsize;
	low = d->reserve > 0 && d->free_bytes < d->reserve;
	if (low && !d->low)
		log_warnx("%s: disk low: %.0f MiB free, reserve %.0f MiB: "
		          "not taking new client requests until space returns",
		    d->dir, (double)d->free_bytes / MIB,
		    (double)d->reserve / MIB);
	else if (!low && d->low)
		log_info("%s: disk space back (%.0f MiB free, reserve %.0f "
		         "MiB): taking client requests again (%llu were "
		         "refused)",
		    d->dir, (double)d->free_bytes / MIB,
		    (double)d->reserve / MIB, (unsigned long long)d->refused);
	d->low = low;
}

void
diskspace_describe(const struct diskspace *d, char *buf, size_t len)
{
	if (!d->low)
		snprintf(buf, len, "ok");
	else
		snprintf(buf, len, "disk low: %.0f MiB free, reserve %.0f MiB",
		    (double)d->free_bytes / MIB, (double)d->reserve / MIB);
}
