#!/usr/bin/env python3
"""Generates src/cmdspec/generated.rs from Redis 7.0's command JSON files.

Usage: tools/gen-command-spec.py [REDIS_SRC/src/commands] > src/cmdspec/generated.rs
       cargo fmt   (the checked-in file is the rustfmt'ed output)

The JSON files (one per command and subcommand) are Redis's own description
of its command table; this turns the facts keel uses (arity, flags, key specs,
ACL categories, tips, docs, arguments) into static Rust data. Derived facts are
computed here the way redis-server computes them at startup: the implicit ACL
categories, the legacy first/last/step range and the movablekeys flag.
"""
import glob
import json
import os
import sys

SRC = sys.argv[1] if len(sys.argv) > 1 else "/work/redis-7.0.15/src/commands"

CATEGORIES = [
    "keyspace", "read", "write", "set", "sortedset", "list", "hash", "string",
    "bitmap", "hyperloglog", "geo", "stream", "pubsub", "admin", "fast", "slow",
    "blocking", "dangerous", "connection", "transaction", "scripting",
]
KEY_FLAGS = ["RO", "RW", "OW", "RM", "ACCESS", "UPDATE", "INSERT", "DELETE",
             "NOT_KEY", "INCOMPLETE", "VARIABLE_FLAGS"]
GROUPS = {"sorted_set": "sorted-set"}


def lit(s):
    if s is None:
        return '""'
    out = s.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return '"%s"' % out


def flags_expr(names):
    names = [n for n in names]
    return " | ".join(names) if names else "0"


def acl_bits(desc, flags):
    cats = set(c.lower() for c in desc.get("acl_categories", []))
    if "WRITE" in flags:
        cats.add("write")
    if "READONLY" in flags and "scripting" not in cats:
        cats.add("read")
    if "ADMIN" in flags:
        cats |= {"admin", "dangerous"}
    if "PUBSUB" in flags:
        cats.add("pubsub")
    if "FAST" in flags:
        cats.add("fast")
    if "BLOCKING" in flags:
        cats.add("blocking")
    if "fast" not in cats:
        cats.add("slow")
    return " | ".join("cat::%s" % c.upper() for c in CATEGORIES if c in cats) or "0"


def is_plain(ks):
    return "index" in ks["begin_search"] and "range" in ks["find_keys"]


def legacy_range(specs, flags):
    """populateCommandLegacyRangeSpec: (first, last, step) and movable."""
    movable = False
    if not specs:
        return (0, 0, 0), False
    if len(specs) == 1 and is_plain(specs[0]):
        s = specs[0]
        first = s["begin_search"]["index"]["pos"]
        r = s["find_keys"]["range"]
        last = r["lastkey"] + first if r["lastkey"] >= 0 else r["lastkey"]
        return (first, last, r["step"]), "INCOMPLETE" in s["flags"]
    first, last, prev = None, 0, 0
    u32 = lambda v: v & 0xFFFFFFFF
    for s in specs:
        if not is_plain(s):
            movable = True
            continue
        pos = s["begin_search"]["index"]["pos"]
        r = s["find_keys"]["range"]
        if r["step"] != 1 or (prev and prev != pos - 1):
            movable = True
            continue
        if "INCOMPLETE" in s["flags"]:
            movable = True
        first = pos if first is None else min(first, pos)
        la = r["lastkey"] + pos if r["lastkey"] >= 0 else r["lastkey"]
        last = la if u32(la) > u32(last) else last
        prev = last
    if first is None:
        return (0, 0, 0), True
    return (first, last, 1), movable


def key_spec(ks):
    flags = " | ".join("kf::%s" % f for f in ks["flags"]) or "0"
    bs = ks["begin_search"]
    if "index" in bs:
        b = "Begin::Index(%d)" % bs["index"]["pos"]
    elif "keyword" in bs:
        b = "Begin::Keyword(%s, %d)" % (lit(bs["keyword"]["keyword"]), bs["keyword"]["startfrom"])
    else:
        b = "Begin::Unknown"
    fk = ks["find_keys"]
    if "range" in fk:
        r = fk["range"]
        f = "Find::Range(%d, %d, %d)" % (r["lastkey"], r["step"], r["limit"])
    elif "keynum" in fk:
        r = fk["keynum"]
        f = "Find::Keynum(%d, %d, %d)" % (r["keynumidx"], r["firstkey"], r["step"])
    else:
        f = "Find::Unknown"
    return "KeySpec { notes: %s, flags: %s, begin: %s, find: %s }" % (
        lit(ks.get("notes")), flags, b, f)


def args_code(args, ind):
    if not args:
        return "&[]"
    pad = " " * ind
    out = ["&["]
    for a in args:
        fl = []
        if a.get("optional"):
            fl.append("af::OPTIONAL")
        if a.get("multiple"):
            fl.append("af::MULTIPLE")
        if a.get("multiple_token"):
            fl.append("af::MULTIPLE_TOKEN")
        tok = a.get("token")
        if tok == '""':
            # Redis's generator pastes tokens into C quotes unescaped, so
            # MIGRATE's `""` token becomes the C literal `""""`: empty.
            tok = ""
        out.append(
            "%s    Arg { name: %s, kind: %s, key_spec: %d, token: %s, summary: %s, since: %s, deprecated_since: %s, flags: %s, sub: %s },"
            % (pad, lit(a["name"].lower()), lit(a["type"]), a.get("key_spec_index", -1),
               lit(tok.upper() if tok else None), lit(a.get("summary")), lit(a.get("since")),
               lit(a.get("deprecated_since")), " | ".join(fl) or "0",
               args_code(a.get("arguments"), ind + 4)))
    out.append(pad + "]")
    return "\n".join(out)


# Redis's get_keys_function per command, as keel's GetKeys finders; the
# numkeys ones are genericGetKeys(store, numkeys, first, step).
GETKEYS = {
    "sortGetKeys": "Sort", "sortROGetKeys": "SortRo", "migrateGetKeys": "Migrate",
    "setGetKeys": "Set", "bitfieldGetKeys": "Bitfield",
    "georadiusGetKeys": "Georadius", "xreadGetKeys": "Xread",
    "evalGetKeys": "Numkeys(0, 2, 3, 1)", "functionGetKeys": "Numkeys(0, 2, 3, 1)",
    "zunionInterDiffGetKeys": "Numkeys(0, 1, 2, 1)",
    "zunionInterDiffStoreGetKeys": "Numkeys(1, 2, 3, 1)",
    "sintercardGetKeys": "Numkeys(0, 1, 2, 1)", "lmpopGetKeys": "Numkeys(0, 1, 2, 1)",
    "blmpopGetKeys": "Numkeys(0, 2, 3, 1)", "zmpopGetKeys": "Numkeys(0, 1, 2, 1)",
    "bzmpopGetKeys": "Numkeys(0, 2, 3, 1)",
}


def spec_code(fullname, d, subs, ind):
    pad = " " * ind
    flags = list(d.get("command_flags", []))
    specs = d.get("key_specs", [])
    (first, last, step), movable = legacy_range(specs, flags)
    cf = flags + (["MOVABLE_KEYS"] if movable else [])
    tips = ", ".join(lit(t.lower()) for t in d.get("command_tips", []))
    hist = ", ".join("(%s, %s)" % (lit(h[0]), lit(h[1])) for h in d.get("history", []) or [])
    docf = " | ".join("DOC_%s" % f for f in d.get("doc_flags", [])) or "0"
    gk = d.get("get_keys_function")
    getkeys = "Some(GetKeys::%s)" % GETKEYS[gk] if gk else "None"
    s = [
        "%sSpec {" % pad,
        "%s    name: %s," % (pad, lit(fullname)),
        "%s    arity: %d," % (pad, d["arity"]),
        "%s    flags: %s," % (pad, flags_expr(cf)),
        "%s    acl: %s," % (pad, acl_bits(d, flags)),
        "%s    tips: &[%s]," % (pad, tips),
        "%s    key_specs: &[%s]," % (pad, ", ".join(key_spec(k) for k in specs)),
        "%s    range: (%d, %d, %d)," % (pad, first, last, step),
        "%s    getkeys: %s," % (pad, getkeys),
        "%s    summary: %s," % (pad, lit(d.get("summary"))),
        "%s    since: %s," % (pad, lit(d.get("since"))),
        "%s    group: %s," % (pad, lit(GROUPS.get(d["group"], d["group"]))),
        "%s    complexity: %s," % (pad, lit(d.get("complexity"))),
        "%s    doc_flags: %s," % (pad, docf),
        "%s    deprecated_since: %s," % (pad, lit(d.get("deprecated_since"))),
        "%s    replaced_by: %s," % (pad, lit(d.get("replaced_by"))),
        "%s    history: &[%s]," % (pad, hist),
        "%s    args: %s," % (pad, args_code(d.get("arguments"), ind + 4)),
    ]
    if subs:
        s.append("%s    subs: &[" % pad)
        for (sname, sd) in subs:
            s.append(spec_code("%s|%s" % (fullname, sname), sd, None, ind + 8) + ",")
        s.append("%s    ]," % pad)
    else:
        s.append("%s    subs: &[]," % pad)
    s.append("%s}" % pad)
    return "\n".join(s)


def main():
    top, subs = {}, {}
    for path in sorted(glob.glob(os.path.join(SRC, "*.json"))):
        with open(path) as f:
            for name, d in json.load(f).items():
                if "ONLY_SENTINEL" in d.get("command_flags", []):
                    continue
                if "container" in d:
                    subs.setdefault(d["container"].lower(), []).append((name.lower(), d))
                else:
                    top[name.lower()] = d
    print("// @generated by tools/gen-command-spec.py from Redis 7.0's src/commands/*.json;")
    print("// do not edit: change the generator or the table in src/commands.")
    print("// Facts only (no Redis code): the same data redis-server compiles in.")
    print("")
    print("use super::flags::*;")
    print("use super::*;")
    print("")
    print("pub static SPECS: &[Spec] = &[")
    for name in sorted(top):
        print(spec_code(name, top[name], sorted(subs.get(name, [])), 4) + ",")
    print("];")


main()
