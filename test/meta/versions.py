#!/usr/bin/env python3
"""versions.py - one version, everywhere: the Makefile's EXTVERSION is the
source; the control file's default_version, META.json (version and
provides), debian/changelog's newest entry and CHANGELOG.md's newest heading
must say the same.  Every released install script (scim_provision--X.sql)
has a CHANGELOG.md entry, and an upgrade script leads to EXTVERSION.
Output is TAP."""
import glob
import json
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import ROOT, Tap, control_files, makefile_var  # noqa: E402

tap = Tap()
ext = makefile_var("EXTENSION")
version = makefile_var("EXTVERSION")
tap.ok(bool(version and re.match(r"^\d+\.\d+\.\d+$", version)),
       "Makefile EXTVERSION is X.Y.Z (%s)" % version)

control = control_files().get(ext, {})
tap.ok(control.get("default_version") == version,
       "%s.control default_version is %s" % (ext, version), "got %r" % control.get("default_version"))

try:
    with open(os.path.join(ROOT, "META.json"), encoding="utf-8") as f:
        meta = json.load(f)
except (OSError, ValueError):
    meta = {}
tap.ok(meta.get("version") == version, "META.json version is %s" % version, "got %r" % meta.get("version"))
main = meta.get("provides", {}).get(ext, {})
tap.ok(main.get("version") == version, "META.json provides.%s.version is %s" % (ext, version),
       "got %r" % main.get("version"))

deb = None
try:
    with open(os.path.join(ROOT, "debian", "changelog"), encoding="utf-8") as f:
        m = re.match(r"^(\S+) \(([^)]+)\) ", f.readline())
        if m:
            deb = m.group(2)
except OSError:
    pass
# native package: the Debian version is the upstream version (a -N revision
# would be for a package built outside this repository)
tap.ok(deb is not None and re.sub(r"-[^-]+$", "", deb) == version,
       "debian/changelog's newest entry is %s" % version, "got %r" % deb)

headings = []
try:
    with open(os.path.join(ROOT, "CHANGELOG.md"), encoding="utf-8") as f:
        headings = re.findall(r"^## +(\d+\.\d+\.\d+)\b", f.read(), re.M)
except OSError:
    pass
tap.ok(bool(headings) and headings[0] == version, "CHANGELOG.md's newest entry is %s" % version,
       "headings: %s" % headings)

released = sorted({m.group(1) for p in glob.glob(os.path.join(ROOT, "%s--*.sql" % ext))
                   for m in [re.match(r"^%s--(\d+\.\d+\.\d+)\.sql$" % re.escape(ext), os.path.basename(p))] if m})
for v in released:
    if v != version:
        tap.ok(v in headings, "CHANGELOG.md has an entry for released %s" % v)
upgrades = glob.glob(os.path.join(ROOT, "%s--*--%s.sql" % (ext, version)))
tap.ok(bool(upgrades) or not released, "an upgrade script leads to %s" % version)
tap.done()
