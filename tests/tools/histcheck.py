#!/usr/bin/env python3
"""histcheck - judge a client-side history against the replicas' ledgers.

    histcheck.py --log BENCH_LOG [--log ...] LEDGER [LEDGER ...]

BENCH_LOG files are written by `pbftctl bench --log`, one line per finished
request:  ok|timeout|error CLIENT INVOKED_US DONE_US SEQ INDEX TX_HEX.
LEDGER files are the replicas' ledger journals (data_dir/node-N/ledger):
records of u64 index, u32 length, bytes, little-endian.

The history is accepted when
  1. every ledger is a gapless sequence from index 0, and all ledgers agree
     wherever they overlap (one order);
  2. every acknowledged (ok) transaction is in every ledger, at the index
     its reply named, and nowhere else (nothing acknowledged is lost,
     moved or executed twice);
  3. acknowledged transactions respect real time: if one was acknowledged
     before another was invoked, it has the lower ledger index.
Exit status 0 when accepted, 1 with one line per problem (at most 20)
otherwise, 2 on unreadable input.
"""
import struct
import sys


def read_ledger(path):
    data = open(path, 'rb').read()
    out, off = [], 0
    while off < len(data):
        if off + 12 > len(data):
            raise ValueError('%s: truncated record header at byte %d' % (path, off))
        idx, ln = struct.unpack_from('<QI', data, off)
        if idx != len(out):
            raise ValueError('%s: index %d where %d was due' % (path, idx, len(out)))
        if off + 12 + ln > len(data):
            raise ValueError('%s: truncated record %d' % (path, idx))
        out.append(data[off + 12:off + 12 + ln])
        off += 12 + ln
    return out


def read_log(path):
    acks = []
    for n, line in enumerate(open(path), 1):
        f = line.split()
        if not f:
            continue
        if len(f) != 7 or f[0] not in ('ok', 'timeout', 'error'):
            raise ValueError('%s:%d: malformed line' % (path, n))
        if f[0] != 'ok':
            continue
        acks.append({'where': '%s:%d' % (path, n), 'client': f[1],
                     'invoked': int(f[2]), 'done': int(f[3]),
                     'index': int(f[5]), 'tx': bytes.fromhex(f[6])})
    return acks


def check(logs, ledger_paths):
    problems = []
    ledgers = [(p, read_ledger(p)) for p in ledger_paths]
    acks = [a for path in logs for a in read_log(path)]
    longest = max((l for _, l in ledgers), key=len, default=[])
    for p, l in ledgers:
        for i, tx in enumerate(l):
            if longest[i] != tx:
                problems.append('%s: entry %d differs from the longest ledger '
                                '(two orders)' % (p, i))
                break
    where = {}
    for i, tx in enumerate(longest):
        where.setdefault(tx, []).append(i)
    for a in acks:
        for p, l in ledgers:
            if a['index'] >= len(l) or l[a['index']] != a['tx']:
                at = where.get(a['tx'])
                what = ('lost: not in the ledgers' if not at else
                        'at index %s instead' % at)
                problems.append('%s: acknowledged transaction of %s at index '
                                '%d is not there in %s (%s)' % (
                                    a['where'], a['client'], a['index'], p,
                                    what))
                break
        if len(where.get(a['tx'], [])) > 1:
            problems.append('%s: acknowledged transaction executed %d times '
                            '(indexes %s)' % (a['where'], len(where[a['tx']]),
                                              where[a['tx']]))
    # Real time: sort by invocation; track the acknowledged request with
    # the highest index among those done before each invocation.
    by_done = sorted(acks, key=lambda a: a['done'])
    by_inv = sorted(acks, key=lambda a: a['invoked'])
    j, best = 0, None
    for b in by_inv:
        while j < len(by_done) and by_done[j]['done'] < b['invoked']:
            if best is None or by_done[j]['index'] > best['index']:
                best = by_done[j]
            j += 1
        if best is not None and best['index'] > b['index']:
            problems.append('%s: reordered: index %d was invoked after %s was '
                            'acknowledged at index %d' % (
                                b['where'], b['index'], best['where'],
                                best['index']))
    return acks, ledgers, problems


def main(argv):
    logs, ledgers, i = [], [], 1
    while i < len(argv):
        if argv[i] == '--log' and i + 1 < len(argv):
            logs.append(argv[i + 1])
            i += 2
        elif argv[i].startswith('-'):
            print(__doc__, file=sys.stderr)
            return 2
        else:
            ledgers.append(argv[i])
            i += 1
    if not logs or not ledgers:
        print(__doc__, file=sys.stderr)
        return 2
    try:
        acks, lg, problems = check(logs, ledgers)
    except (OSError, ValueError) as e:
        print('histcheck: %s' % e, file=sys.stderr)
        return 2
    for p in problems[:20]:
        print('histcheck: %s' % p)
    if problems:
        print('histcheck: REJECTED: %d problems' % len(problems))
        return 1
    print('histcheck: ok: %d acknowledged requests in %d ledgers of %s '
          'entries' % (len(acks), len(lg),
                       '/'.join(str(len(l)) for _, l in lg)))
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv))
