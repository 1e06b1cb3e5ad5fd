#!/usr/bin/env python3
"""Generates a teaching-resource tree for the file benchmark: N files from 1 KB to 50 MB
(by default 2,000 files, about 1.6 GiB) in nested Chinese-named folders. Documents are
compressible text; slides, PDFs, images and videos are incompressible bytes.
Usage: gen_file_mix.py ROOT [FILES] [TOTAL_MIB]"""
import os, random, sys

root = sys.argv[1]
count = int(sys.argv[2]) if len(sys.argv) > 2 else 2000
total_mib = float(sys.argv[3]) if len(sys.argv) > 3 else 1638.4
rng = random.Random(20261121)

# (share of files, min bytes, max bytes, extensions, compressible)
KINDS = [
    (0.55, 1_000, 64_000, [".txt", ".html", ".csv", ".xml"], True),
    (0.25, 64_000, 1_000_000, [".docx", ".jpg", ".png", ".pdf"], False),
    (0.12, 1_000_000, 8_000_000, [".pptx", ".pdf", ".mp3"], False),
    (0.08, 8_000_000, 50_000_000, [".mp4", ".zip"], False),
]
sizes = []
for share, lo, hi, exts, text in KINDS:
    for _ in range(round(share * count)):
        # log-uniform within the kind's range
        s = int(lo * (hi / lo) ** rng.random())
        sizes.append((s, rng.choice(exts), text))
sizes = sizes[:count]
# scale the large kinds so the total is what was asked (within the 50 MB ceiling)
target = int(total_mib * 1048576)
small = sum(s for s, _, t in sizes if s < 1_000_000)
big = sum(s for s, _, t in sizes if s >= 1_000_000)
factor = max(0.1, (target - small) / max(big, 1))
sizes = [(min(50_000_000, int(s * factor)) if s >= 1_000_000 else s, e, t) for s, e, t in sizes]

subjects = ["语文", "数学", "英语", "物理", "化学", "生物", "历史", "地理"]
grades = ["高一", "高二", "高三", "初一", "初二", "初三"]
word = "第一章 函数与导数 教学设计 课后练习 参考答案\n".encode()
block = os.urandom(1 << 20)
total = 0
for i, (size, ext, text) in enumerate(sizes):
    d = os.path.join(root, rng.choice(grades) + " " + rng.choice(subjects), "单元%02d" % rng.randrange(12))
    os.makedirs(d, exist_ok=True)
    path = os.path.join(d, "资料%04d%s" % (i, ext))
    with open(path, "wb") as f:
        left = size
        while left > 0:
            if text:
                chunk = (word * (min(left, 1 << 20) // len(word) + 1))[:min(left, 1 << 20)]
                chunk = chunk[:-8] + os.urandom(8) if len(chunk) > 8 else chunk
            else:
                n = min(left, 1 << 20)
                off = rng.randrange(0, (1 << 20) - n + 1) if n < (1 << 20) else 0
                chunk = bytearray(block[off:off + n])
                # every file distinct: stamp its index into each MiB
                chunk[:8] = (i * 1000003 + left).to_bytes(8, "little")
                chunk = bytes(chunk)
            f.write(chunk)
            left -= len(chunk)
    total += size
print(f"files={len(sizes)} bytes={total}")
