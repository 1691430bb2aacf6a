#!/usr/bin/env python3
"""tools/upgrade-sync.py - keep an unreleased upgrade script's function
definitions equal to the install script's.

    tools/upgrade-sync.py scim_provision--0.2.0--0.3.0.sql [--check]

Several concerns of one release each write a section of the same upgrade
script, and two of them may re-create the same function (each with only its
own change).  This rewrites every CREATE [OR REPLACE] FUNCTION/PROCEDURE of
the upgrade script with the definition the install script (src/sql/*.sql, in
name order) holds now, and keeps only the last definition of a function that
several sections re-create (the latest position: everything it may refer to
exists by then).  Grants, tables and every other statement are left as they
are.  --check only reports what it would change (exit 1 when anything).

A released upgrade script is never edited: run this only on the one being
written.
"""
import glob
import os
import re
import sys


def statements(text):
    """Split SQL text into (start, end) spans of top-level statements,
    honouring quotes, dollar quotes and comments; each span ends after its
    semicolon."""
    spans = []
    i, n, start = 0, len(text), 0
    while i < n:
        c = text[i]
        if c == "-" and text.startswith("--", i):
            j = text.find("\n", i)
            i = n if j < 0 else j + 1
        elif c == "/" and text.startswith("/*", i):
            j = text.find("*/", i + 2)
            i = n if j < 0 else j + 2
        elif c == "'":
            i += 1
            while i < n:
                if text[i] == "'" and i + 1 < n and text[i + 1] == "'":
                    i += 2
                elif text[i] == "'":
                    i += 1
                    break
                else:
                    i += 1
        elif c == "$":
            m = re.match(r"\$([A-Za-z_][A-Za-z_0-9]*)?\$", text[i:])
            if m:
                tag = m.group(0)
                j = text.find(tag, i + len(tag))
                i = n if j < 0 else j + len(tag)
            else:
                i += 1
        elif c == ";":
            spans.append((start, i + 1))
            start = i + 1
            i += 1
        else:
            i += 1
    return spans


CREATE = re.compile(
    r"\s*(?:--[^\n]*\n\s*|/\*.*?\*/\s*)*CREATE\s+(?:OR\s+REPLACE\s+)?(?:FUNCTION|PROCEDURE)\s+"
    r"([A-Za-z_][\w]*\.[A-Za-z_][\w]*)\s*\(", re.S | re.I)


def arg_types(text, open_paren):
    """The argument list's types (names, defaults and OUT arguments dropped),
    a key that tells overloads apart."""
    depth, i = 0, open_paren
    while True:
        if text[i] == "(":
            depth += 1
        elif text[i] == ")":
            depth -= 1
            if depth == 0:
                break
        i += 1
    args = text[open_paren + 1:i]
    parts, depth, cur = [], 0, ""
    for ch in args:
        if ch == "," and depth == 0:
            parts.append(cur)
            cur = ""
            continue
        depth += ch == "("
        depth -= ch == ")"
        cur += ch
    if cur.strip():
        parts.append(cur)
    types = []
    for p in parts:
        p = re.split(r"\s+DEFAULT\s+|\s*=\s*", p.strip(), flags=re.I)[0]
        words = p.split()
        if words and words[0].upper() == "OUT":
            continue
        if words and words[0].upper() in ("IN", "INOUT", "VARIADIC"):
            words = words[1:]
        # "name type" or "type": a name is a lone identifier followed by a type
        if len(words) >= 2 and re.match(r"^[a-z_][a-z_0-9]*$", words[0]) and \
                words[0].lower() not in ("double", "character", "timestamp", "time", "bit"):
            words = words[1:]
        types.append(" ".join(words).lower())
    return tuple(types)


def functions(text):
    """[(key, start, name_start, end)] of every function statement, key
    being (name, argtypes)."""
    found = []
    for s, e in statements(text):
        m = CREATE.match(text, s)
        if m and m.start() == s:
            key = (m.group(1).lower(), arg_types(text, m.end() - 1))
            # the statement proper starts at CREATE, after leading comments;
            # name_start: where the function's name begins
            found.append((key, text.upper().find("CREATE", s), m.start(1), e))
    return found


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    path = sys.argv[1]
    check = "--check" in sys.argv[2:]
    top = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    install = "".join(open(f).read() for f in sorted(glob.glob(os.path.join(top, "src/sql/*.sql"))))
    fresh = {}
    for key, s, name, e in functions(install):
        fresh[key] = install[name:e]
    text = open(path).read()
    found = functions(text)
    last = {}
    for key, s, name, e in found:
        last[key] = (s, e)
    changes = []
    out, pos = [], 0
    for key, s, name, e in found:
        out.append(text[pos:s])
        if last[key] != (s, e):
            changes.append("%s(%s): earlier re-creation dropped" % (key[0], ", ".join(key[1])))
            # drop the statement and the newline after it
            pos = e + 1 if text[e:e + 1] == "\n" else e
            continue
        if key not in fresh:
            sys.exit("upgrade-sync: %s(%s) is not in the install script" % (key[0], ", ".join(key[1])))
        # keep this script's CREATE [OR REPLACE] FUNCTION, the rest as installed
        if text[name:e] != fresh[key]:
            changes.append("%s(%s): install script's definition" % (key[0], ", ".join(key[1])))
        out.append(text[s:name] + fresh[key])
        pos = e
    out.append(text[pos:])
    for c in changes:
        print("upgrade-sync:", c)
    if check:
        sys.exit(1 if changes else 0)
    if changes:
        open(path, "w").write("".join(out))


if __name__ == "__main__":
    main()
