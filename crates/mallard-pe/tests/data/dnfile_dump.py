#!/usr/bin/env python3
"""Reference for tests/clr_dnfile.rs: dnfile's reading of .NET metadata, as digests.

    python3 -m venv /tmp/dnv && /tmp/dnv/bin/pip install dnfile==0.18.0
    /tmp/dnv/bin/python dnfile_dump.py KEY=PATH ... > clr_dnfile.tsv      (KEY: the test's name for the file)

For each file, the metadata version, the row count of each of the 45 tables, every TypeRef
(namespace, name), MemberRef (parent table and row, name), ImplMap (module, import name),
AssemblyRef name and MethodDef (RVA, name) as text lines; printed is the sha256 prefix of
those lines and their number (`--lines` prints the lines themselves, to find a difference).
"""
import hashlib
import logging
import sys

import dnfile

logging.disable(logging.CRITICAL)


def s(x):
    if x is None:
        return ""
    if hasattr(x, "value_bytes"):
        return x.value_bytes().decode("utf-8", "replace")
    return str(x)


def dump(path):
    out = []
    try:
        pe = dnfile.dnPE(path, fast_load=False)
    except Exception as e:  # not a PE file for pefile
        return [f"ERR\t{type(e).__name__}"]
    net = pe.net
    if net is None or net.metadata is None:
        return ["NOMD"]
    v = net.metadata.struct.Version
    v = v.split(b"\x00")[0].decode("utf-8", "replace") if isinstance(v, bytes) else str(v).split("\x00")[0]
    out.append(f"V\t{v}")
    md = net.mdtables
    if md is None:
        return out + ["NOTABLES"]
    rows = {t.number: t.num_rows for t in md.tables_list}
    out.append("R\t" + ",".join(str(rows.get(i, 0)) for i in range(0x2D)))
    for r in md.TypeRef.rows if md.TypeRef else []:
        out.append(f"TR\t{s(r.TypeNamespace)}\t{s(r.TypeName)}")
    for r in md.MemberRef.rows if md.MemberRef else []:
        c = r.Class
        out.append(f"MR\t{c.table.number if c and c.table else -1}\t{c.row_index if c else 0}\t{s(r.Name)}")
    for r in md.ImplMap.rows if md.ImplMap else []:
        mod = r.ImportScope.row.Name if r.ImportScope and r.ImportScope.row else None
        out.append(f"IM\t{s(mod)}\t{s(r.ImportName)}")
    for r in md.AssemblyRef.rows if md.AssemblyRef else []:
        out.append(f"AR\t{s(r.Name)}")
    for r in md.MethodDef.rows if md.MethodDef else []:
        out.append(f"MD\t{r.Rva}\t{s(r.Name)}")
    return out


def main():
    lines = "--lines" in sys.argv
    for arg in sys.argv[1:]:
        if arg == "--lines":
            continue
        key, _, path = arg.partition("=")
        d = dump(path)
        if lines:
            print("\n".join([f"F\t{key}"] + d))
        else:
            text = "".join(l + "\n" for l in d)
            print(f"{key}\t{hashlib.sha256(text.encode()).hexdigest()[:16]}\t{len(d)}")


if __name__ == "__main__":
    main()
