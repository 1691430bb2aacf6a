#!/usr/bin/env python3
"""validate_meta.py - META.json against the PGXN Meta Spec 1.0.0 (no
network: pgxn_meta.py holds the spec's rules), then against this tree: every
extension's control file is in provides with its version, the prerequisites
name PostgreSQL 15 and every control file's requires, and a prerequisite
only a secondary extension needs (plproxy for the router) is recommended,
not required.  The validator itself is shown to reject broken documents.
Output is TAP."""
import copy
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import ROOT, Tap, control_files, control_requires, makefile_var  # noqa: E402
from pgxn_meta import validate  # noqa: E402

tap = Tap()
path = os.path.join(ROOT, "META.json")
try:
    with open(path, encoding="utf-8") as f:
        meta = json.load(f)
    parsed = True
except (OSError, ValueError) as e:
    meta, parsed = {}, False
    tap.ok(False, "META.json parses as JSON", str(e))
if parsed:
    tap.ok(isinstance(meta, dict), "META.json parses as a JSON object")

errors = validate(meta, ROOT)
tap.ok(not errors, "META.json follows the PGXN Meta Spec 1.0.0", errors)

# --- against this tree --------------------------------------------------------
extension = makefile_var("EXTENSION")
controls = control_files()
provides = meta.get("provides", {}) if isinstance(meta.get("provides"), dict) else {}
tap.ok(meta.get("name") == extension, "name is the Makefile's EXTENSION (%s)" % extension,
       "name is %r" % meta.get("name"))
tap.ok(sorted(provides) == sorted(controls),
       "provides lists exactly the extensions with a control file",
       "provides %s, control files %s" % (sorted(provides), sorted(controls)))
for ext, values in controls.items():
    got = provides.get(ext, {}).get("version") if isinstance(provides.get(ext), dict) else None
    tap.ok(got == values.get("default_version"),
           "provides.%s.version is its control file's default_version (%s)" % (ext, values.get("default_version")),
           "META.json says %r" % got)

runtime = meta.get("prereqs", {}).get("runtime", {})
requires = runtime.get("requires", {})
recommends = runtime.get("recommends", {})
pg = requires.get("PostgreSQL")
tap.ok(isinstance(pg, str) and ">= 15.0.0" in pg and "< 16.0.0" in pg,
       "prereqs.runtime.requires.PostgreSQL is 15 (>= 15.0.0, < 16.0.0)", "got %r" % pg)
main_requires = set(control_requires(controls.get(extension, {})))
for ext, values in controls.items():
    for req in control_requires(values):
        if ext == extension or req in main_requires:
            tap.ok(req in requires, "%s requires %s: in prereqs.runtime.requires" % (ext, req))
        else:
            tap.ok(req in recommends and req not in requires,
                   "only %s needs %s: in prereqs.runtime.recommends, not requires" % (ext, req))

# --- the validator rejects what the spec forbids -------------------------------
def broken(description, change):
    doc = copy.deepcopy(meta)
    change(doc)
    tap.ok(bool(validate(doc, ROOT)), "the validator rejects %s" % description)

broken("a missing license", lambda d: d.pop("license", None))
broken("a missing provides", lambda d: d.pop("provides", None))
broken("a licence name outside the spec's list", lambda d: d.__setitem__("license", "PostgreSQL License"))
broken("a two-part version", lambda d: d.__setitem__("version", "0.3"))
broken("a provides entry without file",
       lambda d: [v.pop("file", None) for v in d.get("provides", {}).values()])
broken("a provides file that is not in the tree",
       lambda d: [v.__setitem__("file", "no/such/file.sql") for v in d.get("provides", {}).values()])
broken("a prerequisite version that is no range",
       lambda d: d.setdefault("prereqs", {}).setdefault("runtime", {}).setdefault("requires", {}).__setitem__("PostgreSQL", "15"))
broken("an unknown phase", lambda d: d.setdefault("prereqs", {}).__setitem__("install", {"requires": {"x1": 0}}))
broken("an unknown top-level key", lambda d: d.__setitem__("homepage", "https://example.org/"))
broken("a name with a space", lambda d: d.__setitem__("name", "scim provision"))
broken("meta-spec 2.0.0", lambda d: d.__setitem__("meta-spec", {"version": "2.0.0"}))
broken("a release_status outside the spec", lambda d: d.__setitem__("release_status", "beta"))
tap.done()
