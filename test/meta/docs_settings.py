#!/usr/bin/env python3
"""docs_settings.py - the settings table of doc/ADMIN.md names every
scim_provision.* setting that src/*.c defines (DefineCustom*Variable), and
no setting that does not exist.  Output is TAP."""
import glob
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import ROOT, Tap  # noqa: E402

tap = Tap()
defined = set()
for path in glob.glob(os.path.join(ROOT, "src", "*.c")):
    with open(path, encoding="utf-8") as f:
        defined |= set(re.findall(r'DefineCustom\w+Variable\(\s*"([a-z_]+\.[a-z_]+)"', f.read()))
tap.ok(len(defined) > 0, "src/ defines settings (%d found)" % len(defined))

with open(os.path.join(ROOT, "doc", "ADMIN.md"), encoding="utf-8") as f:
    text = f.read()
table = set(re.findall(r"^\| `(scim_provision\.[a-z_]+)` \|", text, re.M))
for name in sorted(defined):
    tap.ok(name in table, "doc/ADMIN.md's settings table has %s" % name)
stale = sorted(table - defined)
tap.ok(not stale, "doc/ADMIN.md's settings table names no setting that src/ lacks", stale)
tap.done()
