#!/usr/bin/env python3
"""embed.py IN OUT NAME: writes a C file defining `const char NAME[]` with
IN's bytes (pbftd's status page; no build step for the page itself)."""
import sys

src, out, name = sys.argv[1:4]
data = open(src, 'rb').read()
with open(out, 'w') as f:
    f.write('/* Generated from %s by pbftd/embed.py. */\n' % src.split('/')[-1])
    f.write('extern const char %s[];\nconst char %s[] = {\n' % (name, name))
    for i in range(0, len(data), 16):
        f.write(''.join('%d,' % b for b in data[i:i + 16]) + '\n')
    f.write('0};\n')
