#!/usr/bin/env python3
"""longfn.py ROOT FILE...: functions longer than 80 lines (body lines between
the braces of a definition written as this codebase writes them: the return
type, the name at column 0, the opening brace alone on its line). main() and
the tests are exempt; the known ones still to split are named in
tests/tidy/long-functions.txt (file:function), and a listed one that is no
longer long must leave the list."""
import os
import re
import sys

LIMIT = 80
root = sys.argv[1]
listed = set()
with open(os.path.join(root, 'tests/tidy/long-functions.txt')) as fp:
    for line in fp:
        line = line.split('#', 1)[0].strip()
        if line:
            listed.add(line)
found = set()
bad = []
for path in sys.argv[2:]:
    if path.startswith('tests/'):
        continue
    with open(os.path.join(root, path)) as fp:
        lines = fp.read().split('\n')
    start = name = None
    for i, line in enumerate(lines):
        if line == '{' and i > 0:
            # the name: the last line before the brace that starts at column 0
            j = i - 1
            while j > 0 and not re.match(r'[A-Za-z_]', lines[j]):
                j -= 1
            m = re.match(r'([A-Za-z_][A-Za-z_0-9]*)\(', lines[j])
            start, name = i, (m.group(1) if m else None)
        elif line == '}' and start is not None:
            if name and name != 'main' and i - start - 1 > LIMIT:
                key = '%s:%s' % (path, name)
                found.add(key)
                if key not in listed:
                    bad.append('%s is %d lines (at most %d)' % (key, i - start - 1, LIMIT))
            start = None
for key in sorted(listed - found):
    bad.append('%s is listed in tests/tidy/long-functions.txt but is no longer long: take it off' % key)
for b in bad:
    print(b)
sys.exit(1 if bad else 0)
