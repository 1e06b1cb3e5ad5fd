#!/usr/bin/env python3
"""A table of 60 columns of every catalog type, filled with awkward values, for the wide-table
end-to-end test: source DDL and data as SQL for each DBMS's own command-line client, the DX
manifest, and a canonical SELECT per DBMS whose output two clients can compare cell by cell.

  wide_table.py ddl DBMS [--upper]              CREATE TABLE for a source
  wide_table.py load DBMS --rows N [--upper]    INSERTs of rows 1..N
  wide_table.py update DBMS --rows N [--upper]  changes of every 10th row, 100 new rows
  wide_table.py manifest --connection C [--upper]
  wide_table.py select DBMS --names lower|upper|catalog --table T
  wide_table.py compare SOURCE_DUMP TARGET_DUMP
  wide_table.py bench-sql --rows N              the table with N plain rows (SQLite), for
                                                tests/bench/table_bench.sh
  wide_table.py copy-select                     its rows as PostgreSQL COPY text

DBMS is sqlite, pg or mariadb. Values travel in SQL as hex so that no quoting can alter them.
The canonical SELECT prints each cell as text that every DBMS spells alike, normalising only
what docs/DECISIONS.md ("Exact values") documents: char(n) compared without trailing spaces
(PAD SPACE); SQLite decimals stored as numbers printed with the column's scale; timestamps
printed with the column's fractional digits. Text and binary cells are printed as hex.
"""
import argparse
import random
import sys

TYPES = ["int", "bigint", "decimal(5,1)", "decimal(10,2)", "decimal(15,4)", "decimal(20,6)",
         "varchar(30)", "varchar(200)", "char(10)", "char(18)", "text", "date", "datetime",
         "datetime(3)", "datetime(6)", "blob", "varbinary(16)"]
TABLE = "wide_all"


def columns():
    """(name, type) of all 60 columns: key, UPDATETIME, then the types in turn."""
    cols = [("id", "bigint"), ("updatetime", "datetime")]
    for i in range(58):
        t = TYPES[i % len(TYPES)]
        short = t.replace("(", "").replace(")", "").replace(",", "_")
        cols.append(("c%02d_%s" % (i + 1, short), t))
    return cols


def name(n, upper):
    return n.upper() if upper else n


def base(t):
    return t.split("(")[0]


def args_of(t):
    return [int(x) for x in t[t.index("(") + 1:-1].split(",")] if "(" in t else []


AWKWARD = ["", "𠮷野家", "😀👍🏽🇨🇳", "它's \"quoted\"", "back\\slash\\\\", "tab\there", "new\nline",
           "cr\r\nlf", "  leading", "trailing  ", "'); DROP TABLE x; --", "100%_like?", "张三",
           "NULL", "\\N", "a|b", " ", "Ωμέγα ∑", "قاعدة", "\u200bzero width", "~"]


def text_value(rng, limit):
    pick = rng.random()
    if pick < 0.5:
        s = rng.choice(AWKWARD)
    elif pick < 0.8:
        s = "".join(rng.choice("学生教师语文数学𠮷😀abcXYZ 0'\"\\\t\n") for _ in range(rng.randint(1, 40)))
    else:
        s = "".join(rng.choice("上海市徐汇区第一中学abc ") for _ in range(rng.randint(1, 12)))
    return s[:limit] if limit else s


def value(rng, t, row, version):
    """A Python value for type t: None, int, str (text) or bytes (binary)."""
    if rng.random() < 0.1:
        return None
    b = base(t)
    a = args_of(t)
    if b == "int":
        return rng.choice([-2147483648, 2147483647, 0, -1, rng.randint(-2**31, 2**31 - 1)])
    if b == "bigint":
        return rng.choice([-9223372036854775808, 9223372036854775807, 0,
                           rng.randint(-2**63, 2**63 - 1)])
    if b == "decimal":
        p, s = a
        whole_digits = p - s
        choice = rng.random()
        if choice < 0.1:
            whole, frac = "9" * whole_digits, "9" * s
        elif choice < 0.2:
            whole, frac = "0", "0" * (s - 1) + "1" if s else ""
        elif choice < 0.3:
            whole, frac = "0", "0" * s
        else:
            whole = str(rng.randint(0, 10 ** whole_digits - 1))
            frac = "".join(rng.choice("0123456789") for _ in range(s))
            if s and rng.random() < 0.3:
                frac = frac[:-1] + "0"  # trailing zeros of the scale
        sign = "-" if rng.random() < 0.3 and (whole.strip("0") or frac.strip("0")) else ""
        return ("dec", sign + whole + ("." + frac if s else ""))
    if b in ("varchar", "char"):
        s = text_value(rng, a[0])
        if b == "char" and rng.random() < 0.3:
            s = (s[:a[0] - 2] + "  ")[:a[0]]  # trailing spaces
        return s
    if b == "text":
        if rng.random() < 0.08:
            return ("长文本" + "𠮷😀'\"\\\t\n" + "abcdefghij" * 500 + "尾")[: rng.randint(4100, 6000)]
        return text_value(rng, 0)
    if b == "date":
        return ("date", rng.choice(["2024-02-29", "1900-01-01", "2099-12-31",
                                    "%04d-%02d-%02d" % (rng.randint(1901, 2098), rng.randint(1, 12),
                                                        rng.randint(1, 28))]))
    if b == "datetime":
        p = a[0] if a else 0
        ts = "%04d-%02d-%02d %02d:%02d:%02d" % (rng.randint(1971, 2037), rng.randint(1, 12),
                                                rng.randint(1, 28), rng.randint(0, 23),
                                                rng.randint(0, 59), rng.randint(0, 59))
        if p:
            frac = rng.choice(["0" * p, "0" * (p - 1) + "1", "9" * p,
                               "".join(rng.choice("0123456789") for _ in range(p))])
            ts += "." + frac
        return ("ts", ts)
    if b == "blob":
        n = rng.choice([0, 1, 16, rng.randint(0, 300), 5000])
        return bytes(rng.randint(0, 255) for _ in range(n)) if n != 1 else b"\x00"
    if b == "varbinary":
        n = rng.choice([0, a[0], rng.randint(1, a[0])])
        return bytes(rng.choice([0, 255, rng.randint(0, 255)]) for _ in range(n))
    raise ValueError(t)


def row_values(row, version):
    rng = random.Random(row * 7919 + version)
    vals = [row, ("ts", "2024-01-01 %02d:%02d:%02d" % (row // 3600 % 24, row // 60 % 60, row % 60))]
    for _, t in columns()[2:]:
        vals.append(value(rng, t, row, version))
    return vals


def literal(dbms, v):
    if v is None:
        return "NULL"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, tuple):  # decimals, dates, timestamps: plain quoted text
        return "'" + v[1] + "'"
    if isinstance(v, bytes):
        h = v.hex()
        if dbms == "pg":
            return "'\\x%s'::bytea" % h
        return "X'%s'" % h
    h = v.encode("utf-8").hex()
    if dbms == "sqlite":
        return "CAST(X'%s' AS TEXT)" % h
    if dbms == "pg":
        return "convert_from('\\x%s'::bytea, 'UTF8')" % h
    return "CONVERT(X'%s' USING utf8mb4)" % h


def sql_type(dbms, t):
    b, a = base(t), args_of(t)
    if dbms == "sqlite":
        if b == "decimal" and a[0] > 15:
            return "TEXT"  # numeric affinity would keep only 15 significant digits
        return {"blob": "BLOB", "varbinary": "BLOB", "datetime": "DATETIME"}.get(b, t.upper())
    if dbms == "pg":
        if b == "datetime":
            return "TIMESTAMP(%d)" % a[0] if a else "TIMESTAMP(0)"
        return {"blob": "BYTEA", "varbinary": "BYTEA", "decimal": t.upper().replace("DECIMAL", "NUMERIC")}.get(b, t.upper())
    if b == "text":
        return "LONGTEXT"
    if b == "blob":
        return "LONGBLOB"
    return t.upper()


def ddl(dbms, upper):
    cols = ", ".join("%s %s%s" % (name(n, upper), sql_type(dbms, t), " NOT NULL" if n in ("id", "updatetime") else "")
                     for n, t in columns())
    tail = " DEFAULT CHARSET=utf8mb4" if dbms == "mariadb" else ""
    return "CREATE TABLE %s (%s, PRIMARY KEY (%s))%s;\n" % (name(TABLE, upper), cols, name("id", upper), tail)


def inserts(dbms, rows, upper, version, out):
    names = ", ".join(name(n, upper) for n, _ in columns())
    out.write("BEGIN;\n" if dbms != "mariadb" else "START TRANSACTION;\n")
    chunk = []
    for r in rows:
        chunk.append("(" + ", ".join(literal(dbms, v) for v in row_values(r, version)) + ")")
        if len(chunk) == 50:
            out.write("INSERT INTO %s (%s) VALUES %s;\n" % (name(TABLE, upper), names, ",\n".join(chunk)))
            chunk = []
    if chunk:
        out.write("INSERT INTO %s (%s) VALUES %s;\n" % (name(TABLE, upper), names, ",\n".join(chunk)))
    out.write("COMMIT;\n")


NOW = {"sqlite": "datetime('now', 'localtime')", "pg": "date_trunc('second', LOCALTIMESTAMP)",
       "mariadb": "NOW()"}


def updates(dbms, n, upper, out):
    cols = columns()
    out.write("BEGIN;\n" if dbms != "mariadb" else "START TRANSACTION;\n")
    for r in range(3, n + 1, 10):
        vals = row_values(r, 2)
        sets = ", ".join("%s = %s" % (name(c, upper), literal(dbms, v)) for (c, _), v in zip(cols[2:], vals[2:]))
        out.write("UPDATE %s SET %s, %s = %s WHERE %s = %d;\n" % (
            name(TABLE, upper), sets, name("updatetime", upper), NOW[dbms], name("id", upper), r))
    out.write("COMMIT;\n")
    inserts(dbms, range(n + 1, n + 101), upper, 3, out)
    # The new rows are stamped now as well, so that the next run picks them up.
    out.write("UPDATE %s SET %s = %s WHERE %s > %d;\n" % (
        name(TABLE, upper), name("updatetime", upper), NOW[dbms], name("id", upper), n))


def canonical(dbms, col, t):
    b, a = base(t), args_of(t)
    c = col
    if b in ("int", "bigint"):
        e = {"sqlite": c, "pg": c + "::text", "mariadb": "CAST(%s AS CHAR)" % c}[dbms]
    elif b == "decimal":
        s = a[1]
        e = {"sqlite": "CASE typeof(%s) WHEN 'text' THEN %s ELSE printf('%%.%df', %s) END" % (c, c, s, c),
             "pg": c + "::text", "mariadb": "CAST(%s AS CHAR)" % c}[dbms]
    elif b in ("varchar", "text", "char"):
        v = c
        if b == "char":  # PAD SPACE: trailing spaces are padding
            v = {"sqlite": "rtrim(%s, ' ')" % c, "pg": "rtrim(%s::text, ' ')" % c,
                 "mariadb": "RTRIM(%s)" % c}[dbms]
        e = {"sqlite": "hex(%s)" % v, "pg": "upper(encode(convert_to(%s, 'UTF8'), 'hex'))" % v,
             "mariadb": "HEX(%s)" % v}[dbms]
    elif b == "date":
        e = {"sqlite": c, "pg": c + "::text", "mariadb": "CAST(%s AS CHAR)" % c}[dbms]
    elif b == "datetime":
        p = a[0] if a else 0
        n = 19 + (p + 1 if p else 0)
        e = {"sqlite": c,
             "pg": "left(to_char(%s, 'YYYY-MM-DD HH24:MI:SS.US'), %d)" % (c, n),
             "mariadb": "LEFT(DATE_FORMAT(%s, '%%Y-%%m-%%d %%H:%%i:%%s.%%f'), %d)" % (c, n)}[dbms]
    elif b in ("blob", "varbinary"):
        e = {"sqlite": "hex(%s)" % c, "pg": "upper(encode(%s, 'hex'))" % c, "mariadb": "HEX(%s)" % c}[dbms]
    else:
        raise ValueError(t)
    return "CASE WHEN %s IS NULL THEN '~' ELSE %s END" % (c, e)


def select(dbms, names, table):
    cols = columns()
    def nm(n):
        return n.upper() if names == "upper" else n
    exprs = [canonical(dbms, nm(n), t) for n, t in cols]
    sep = {"sqlite": " || '|' || ", "pg": " || '|' || ", "mariadb": ", '|', "}[dbms]
    body = sep.join(exprs)
    if dbms == "mariadb":
        body = "CONCAT(" + body + ")"
    return "SELECT %s FROM %s ORDER BY %s;" % (body, nm(table), nm("id"))


def missing_awkward(lines):
    """What the data lacks of the awkward values the test promises to carry."""
    found = set()
    cols = columns()
    for line in lines:
        for (n, t), cell in zip(cols, line.split("|")):
            b = base(t)
            if cell == "~":
                found.add("NULL")
                continue
            if b in ("varchar", "char", "text"):
                v = bytes.fromhex(cell).decode("utf-8")
                checks = {"empty string": v == "", "non-BMP 𠮷": "𠮷" in v, "emoji": "😀" in v,
                          "quote": "'" in v, "backslash": "\\" in v, "tab": "\t" in v,
                          "newline": "\n" in v, "text over 4000": len(v) > 4000,
                          "leading space": v.startswith(" "),
                          "varchar trailing space": b == "varchar" and v.endswith(" ")}
                found.update(k for k, ok in checks.items() if ok)
            elif b in ("blob", "varbinary"):
                v = bytes.fromhex(cell)
                if v == b"":
                    found.add("empty binary")
                if b"\x00" in v:
                    found.add("zero byte")
            elif b == "datetime" and "." in cell:
                found.add("fractional seconds")
            elif b == "decimal" and cell.startswith("-"):
                found.add("negative decimal")
    wanted = ["NULL", "empty string", "non-BMP 𠮷", "emoji", "quote", "backslash", "tab", "newline",
              "text over 4000", "leading space", "varchar trailing space", "empty binary", "zero byte", "fractional seconds",
              "negative decimal"]
    return ["the data lacks: " + w for w in wanted if w not in found]


def compare(a_path, b_path):
    names = [n for n, _ in columns()]
    with open(a_path, encoding="utf-8") as f:
        a = f.read().splitlines()
    with open(b_path, encoding="utf-8") as f:
        b = f.read().splitlines()
    problems = []
    if len(a) != len(b):
        problems.append("source has %d rows, target %d" % (len(a), len(b)))
    ids_a = {line.split("|")[0]: line for line in a}
    ids_b = {line.split("|")[0]: line for line in b}
    for key in sorted(set(ids_a) | set(ids_b), key=lambda k: int(k) if k.lstrip("-").isdigit() else 0):
        if key not in ids_b:
            problems.append("row id=%s missing at the target" % key)
            continue
        if key not in ids_a:
            problems.append("row id=%s at the target is not at the source" % key)
            continue
        ca, cb = ids_a[key].split("|"), ids_b[key].split("|")
        for i, (x, y) in enumerate(zip(ca, cb)):
            if x != y:
                problems.append("row id=%s column %s: source %r, target %r" % (key, names[i], x[:80], y[:80]))
    cells = sum(len(line.split("|")) for line in a)
    problems += missing_awkward(a)
    if problems:
        print("%d difference(s):" % len(problems))
        for p in problems[:15]:
            print("  " + p)
        return 1
    print("%d rows, %d cells identical" % (len(a), cells))
    return 0


def manifest(connection, upper):
    fields = []
    for n, t in columns():
        extra = ", primary_key: true" if n == "id" else (", not_null: true" if n == "updatetime" else "")
        fields.append("  - {item: %s, column: %s, type: \"%s\"%s}" % (n, name(n, upper), t, extra))
    return """kind: Source
name: wide-src
connection: "%s"
---
kind: CatalogEntry
name: 测试-宽表全部类型
provider: 测试
summary: 60 列,全部目录类型与难处理的值
share_type: unconditional
topic: student
source: wide-src
source_table: %s
updatetime_column: %s
fields:
%s
---
kind: Agent
name: wide-agent
secret: wide-agent-secret-0001
---
kind: Subscription
name: wide
agent: wide-agent
entry: 测试-宽表全部类型
columns: [%s]
target_table: %s
schedule: manual
""" % (connection, name(TABLE, upper), name("updatetime", upper), "\n".join(fields),
       ", ".join(name(n, upper) for n, _ in columns()), name(TABLE, upper))


def bench_sql(rows):
    """SQLite script: the 60-column table filled with N plain rows computed in SQL (fast to
    make in any number; every column set), for the benchmark."""
    exprs = []
    for n, t in columns():
        b, a = base(t), args_of(t)
        if n == "id":
            e = "x"
        elif n == "updatetime":
            e = "datetime('2024-01-01', '+' || (x / 10) || ' seconds')"
        elif b == "int":
            e = "(x * 7919) %% 2147483647 - 1000000"
        elif b == "bigint":
            e = "x * 1000003"
        elif b == "decimal":
            p, sc = a
            e = "printf('%%d.%%0%dd', x %% %d, (x * 37) %% %d)" % (sc, 10 ** min(p - sc, 9), 10 ** sc)
        elif b == "varchar":
            e = "substr(printf('学生%%d号 上海市徐汇区', x), 1, %d)" % a[0]
        elif b == "char":
            e = "substr(printf('%%0%dd', x), 1, %d)" % (a[0], a[0])
        elif b == "text":
            e = "printf('备注 %d: 在籍学生基本信息,按学年更新。', x)"
        elif b == "date":
            e = "date('2000-01-01', '+' || (x % 9000) || ' days')"
        elif b == "datetime":
            p = a[0] if a else 0
            e = "datetime('2020-01-01', '+' || x || ' seconds')"
            if p:
                e += " || printf('.%%0%dd', x %% %d)" % (p, 10 ** p)
        elif b == "blob":
            e = "randomblob(32)"
        else:
            e = "randomblob(%d)" % a[0]
        exprs.append(e.replace("%%", "%"))
    return (ddl("sqlite", False) +
            "CREATE INDEX wide_ut ON %s (updatetime, id);\n" % TABLE +
            "INSERT INTO %s WITH RECURSIVE r(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM r "
            "WHERE x < %d) SELECT %s FROM r;\n" % (TABLE, rows, ", ".join(exprs)))


def copy_select():
    """SELECT of the bench rows as PostgreSQL COPY text: binary as \\x hex, its backslash
    escaped for COPY."""
    out = []
    for n, t in columns():
        out.append("'\\\\x' || hex(%s)" % n if base(t) in ("blob", "varbinary") else n)
    return "SELECT %s FROM %s ORDER BY id;" % (", ".join(out), TABLE)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("what")
    ap.add_argument("arg", nargs="*")
    ap.add_argument("--rows", type=int, default=2000)
    ap.add_argument("--upper", action="store_true")
    ap.add_argument("--connection")
    ap.add_argument("--names", default="catalog")
    ap.add_argument("--table", default=TABLE)
    o = ap.parse_args()
    out = sys.stdout
    if o.what == "ddl":
        out.write(ddl(o.arg[0], o.upper))
    elif o.what == "load":
        inserts(o.arg[0], range(1, o.rows + 1), o.upper, 1, out)
    elif o.what == "update":
        updates(o.arg[0], o.rows, o.upper, out)
    elif o.what == "manifest":
        out.write(manifest(o.connection, o.upper))
    elif o.what == "select":
        out.write(select(o.arg[0], o.names, o.table) + "\n")
    elif o.what == "bench-sql":
        out.write(bench_sql(o.rows))
    elif o.what == "copy-select":
        out.write(copy_select() + "\n")
    elif o.what == "compare":
        sys.exit(compare(o.arg[0], o.arg[1]))
    else:
        ap.error("unknown command " + o.what)


if __name__ == "__main__":
    main()
