#!/usr/bin/env bash
# Issue 8, defects 5, 6 and 7, on a tree that mixes every kind of name: Chinese, full-width
# punctuation, emoji, NFC/NFD twins, names of 231 to 255 bytes, hidden files and folders, empty
# files and folders, deep nesting, and a name in GBK. Two subscriptions take it through
# include/exclude globs with '**'; what each delivers is compared with what Python's glob
# (recursive, hidden files included) says the patterns take. The GBK name is refused on its
# own with its bytes escaped, and the admin API stays valid JSON; a resource that declares
# name_encoding: gb18030 gets such names converted.
source "$(dirname "$0")/harness.sh"
harness_init files_names
SRC=$T/provider
SHARED=$T/shared
mkdir -p "$SRC" "$SHARED" "$T/gbk"
python3 - "$SRC" "$T/gbk" <<'PY'
import os, sys, unicodedata
root, gbk = sys.argv[1].encode(), sys.argv[2].encode()
def put(rel, data=b"x"):
    path = os.path.join(root, rel.encode() if isinstance(rel, str) else rel)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)
long255 = "长" * 85                      # 255 bytes
long253 = "长" * 83 + ".pdf"             # 253 bytes
long231 = "长" * 75 + "ab.txt"           # 231 bytes
for rel in ["课件/高一 数学/第一章 函数.pdf", "课件/高一 数学/第一章 函数.txt",
            "课件/高一 数学/第一单元/第二节/例题.pdf", "课件/a/b/c/d/e/深层.pdf",
            "课件/高一 数学/草稿 一.pdf", "课件/草稿.pdf",
            "资料（第二版）：习题，答案！.docx", "「通知」《校历》.pdf", "📚 阅读/😀 笑脸.pdf",
            "📚 阅读/🧪 实验【一】.txt", ".隐藏.pdf", ".隐藏目录/秘.pdf", ".git/config",
            "临时/缓存.tmp", "根目录.pdf", "课件/" + long255, "课件/" + long253,
            "课件/" + long231, "🎵/" + long253]:
    put(rel, ("内容 " + rel).encode())
put("空文件.pdf", b"")
put("课件/空文件.txt", b"")
put("café.pdf", b"NFC")
put(unicodedata.normalize("NFD", "café.pdf"), b"NFD")
os.makedirs(os.path.join(root, "空目录/更空".encode()), exist_ok=True)
os.makedirs(os.path.join(root, "课件/空单元".encode()), exist_ok=True)
put(b"\xb2\xe2\xca\xd4.pdf", b"GBK name")               # 测试.pdf in GBK
put(b"\xbf\xce\xbc\xfe/\xbd\xb2\xd2\xe5.txt", b"GBK")     # 课件/讲义.txt in GBK
for rel, data in [(b"\xb2\xe2\xca\xd4.pdf", b"one"), (b"\xbf\xce\xbc\xfe/\xbd\xb2\xd2\xe5.txt", b"two"),
                  (b"\x81\x20.txt", b"not GB18030")]:
    path = os.path.join(gbk, rel)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    open(path, "wb").write(data)
PY
backdate "$SRC"
backdate "$T/gbk"

write_scheduler_config "safety_lag_s: 0, retry_min_s: 1, retry_max_s: 2"
start_scheduler
cat >"$T/manifest.yaml" <<YAML
kind: FileResource
name: 市教委-教学资源文件
provider: 市教委教研室
summary: 各种名字的教学资源
share_type: unconditional
topic: institution
directory: $SRC
exclude: ["**/*.tmp", ".git"]
---
kind: FileResource
name: 市教委-讲义PDF
provider: 市教委教研室
summary: 所有 PDF，草稿除外
share_type: unconditional
topic: institution
directory: $SRC
include: ["**/*.pdf"]
exclude: ["课件/**/草稿*"]
---
kind: FileResource
name: 某区-旧共享
provider: 某区教育局
summary: 来自 Windows 共享（GBK 文件名）
share_type: unconditional
topic: institution
directory: $T/gbk
name_encoding: gb18030
---
kind: Agent
name: 徐汇区教育局
secret: agent-a-secret-0001
---
kind: Subscription
name: files-all
agent: 徐汇区教育局
entry: 市教委-教学资源文件
target_path: 全部
propagate_deletes: true
---
kind: Subscription
name: files-pdf
agent: 徐汇区教育局
entry: 市教委-讲义PDF
target_path: 讲义
---
kind: Subscription
name: files-gbk
agent: 徐汇区教育局
entry: 某区-旧共享
target_path: 旧共享
YAML
dxctl apply -f "$T/manifest.yaml" >/dev/null
start_file_agent a "$SHARED"
wait_for 20 "agent online" agent_online 徐汇区教育局

# What each subscription should deliver, by Python's glob over the provider's tree.
expected() {  # expected INCLUDE_JSON EXCLUDE_JSON -> sorted relative paths (valid UTF-8 only)
  python3 - "$SRC" "$1" "$2" <<'PY'
import glob, json, os, sys
root, inc, exc = sys.argv[1], json.loads(sys.argv[2]), json.loads(sys.argv[3])
def take(patterns):
    out = set()
    for p in patterns:
        for hit in glob.glob(p, root_dir=root, recursive=True, include_hidden=True):
            out.add(hit)
            # a folder that matches takes what is below it
            if os.path.isdir(os.path.join(root, hit)):
                out.update(os.path.join(hit, x) for x in glob.glob("**", root_dir=os.path.join(root, hit), recursive=True, include_hidden=True))
    return out
files = {p for p in glob.glob("**", root_dir=root, recursive=True, include_hidden=True)
         if os.path.isfile(os.path.join(root, p))}
chosen = (take(inc) if inc else files) - take(exc)
for p in sorted(chosen & files):
    try:
        p.encode("utf-8")
    except UnicodeEncodeError:
        continue  # not UTF-8 on disk: refused, checked apart
    print(p)
PY
}
delivered() { (cd "$1" && find . -type f ! -name '*.dxpart' | sed 's#^\./##' | LC_ALL=C sort); }

run_and_wait files-all
run_all=$(run_field id)
echo "files-all: $(run_field status): $(run_field error)"
diff <(expected '[]' '["**/*.tmp", ".git"]' | LC_ALL=C sort) <(delivered "$SHARED/全部") ||
  fail "files-all did not deliver what its patterns take"
same_content() {  # same_content DIR: each delivered file has its provider file's bytes
  python3 - "$SRC" "$1" <<'PY'
import os, sys
src, dst = sys.argv[1], sys.argv[2]
for d, _, names in os.walk(dst):
    for n in names:
        rel = os.path.relpath(os.path.join(d, n), dst)
        if open(os.path.join(src, rel), "rb").read() != open(os.path.join(dst, rel), "rb").read():
            sys.exit("differs: " + rel)
PY
}
same_content "$SHARED/全部" || fail "contents differ"
[ "$(cat "$SHARED/全部/café.pdf")" = NFC ] && [ "$(cat "$SHARED/全部/$(python3 -c 'import unicodedata; print(unicodedata.normalize("NFD", "café.pdf"))')")" = NFD ] ||
  fail "NFC/NFD twins were not kept apart"
for d in 空目录/更空 课件/空单元; do [ -d "$SHARED/全部/$d" ] || fail "empty folder $d not reproduced"; done
[ ! -e "$SHARED/全部/.git" ] || fail "an excluded hidden folder was delivered"
[ -f "$SHARED/全部/空文件.pdf" ] && [ ! -s "$SHARED/全部/空文件.pdf" ] || fail "the empty file"
pass "files-all: $(delivered "$SHARED/全部" | wc -l) files (255/253/231-byte names, emoji, full-width, NFC/NFD twins, hidden, empty) and empty folders"

# Defect 5: the GBK name is refused on its own, shown escaped; the API stays valid JSON.
[ "$RUN_RC" = 1 ] && [ "$(run_field status)" = partial ] || fail "files-all: rc $RUN_RC, $(run_field status)"
line=$(receipt_line "$run_all" '\xB2\xE2\xCA\xD4.pdf')
echo "$line" | grep -q "^refused.*not valid UTF-8.*name_encoding" || fail "GBK name: '$line'"
line=$(receipt_line "$run_all" '\xBFμ\xFE/')   # CE BC happens to be UTF-8 for μ
echo "$line" | grep -q "^refused" || fail "GBK folder: '$line'"
for call in "receipt $run_all" "runs" "subscriptions" "runs -s files-all"; do
  # shellcheck disable=SC2086
  dxctl --json $call | python3 -c 'import json,sys; json.load(sys.stdin)' || fail "dxctl --json $call is not valid JSON"
done
pass "a GBK name refused on its own ('${line#*	}'); receipt, runs and subscriptions stay valid JSON"

# Defect 7: '**' takes any depth.
run_and_wait files-pdf   # partial again: the two GBK names cannot be matched, so they are reported
[ "$(run_field status)" = partial ] && run_field error | grep -q "^2 of " ||
  fail "files-pdf: $(run_field status): $(run_field error)"
diff <(expected '["**/*.pdf"]' '["课件/**/草稿*"]' | LC_ALL=C sort) <(delivered "$SHARED/讲义") ||
  fail "files-pdf did not deliver what '**/*.pdf' minus '课件/**/草稿*' takes"
same_content "$SHARED/讲义" || fail "contents differ"
pass "files-pdf: '**/*.pdf' took $(delivered "$SHARED/讲义" | wc -l) PDFs at every depth (hidden ones too), drafts excluded"

# name_encoding: gb18030 converts names from a Windows-fed share.
run_and_wait files-gbk
[ "$(cat "$SHARED/旧共享/测试.pdf")" = one ] && [ "$(cat "$SHARED/旧共享/课件/讲义.txt")" = two ] ||
  fail "GBK names were not converted: $(delivered "$SHARED/旧共享")"
receipt_line "$(run_field id)" '\x81 .txt' | grep -q "^refused.*not valid gb18030" ||
  fail "a name invalid in GB18030: $(dxctl receipt "$(run_field id)")"
pass "gb18030 names converted (测试.pdf, 课件/讲义.txt); a name invalid in GB18030 refused on its own"

# Emptied folders are removed when deletes propagate; the 255-byte names go too.
rm -r "$SRC/课件/a" "$SRC/空目录"
rm "$SRC/课件/$(python3 -c 'print("长" * 85)')"
run_and_wait files-all
[ ! -e "$SHARED/全部/课件/a" ] || fail "an emptied folder stayed: $(find "$SHARED/全部/课件/a")"
[ ! -e "$SHARED/全部/空目录" ] || fail "a removed empty folder stayed"
[ ! -e "$SHARED/全部/课件/$(python3 -c 'print("长" * 85)')" ] || fail "a deleted 255-byte name stayed"
diff <(expected '[]' '["**/*.tmp", ".git"]' | LC_ALL=C sort) <(delivered "$SHARED/全部") ||
  fail "files-all differs after deletions"
pass "deleted files and emptied folders removed at the consumer"
