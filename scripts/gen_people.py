#!/usr/bin/env python3
"""Generates realistic student or teacher rows (Chinese names, 18-character ID numbers with a
valid check digit, Shanghai district and school codes) as TSV on stdout, or into a SQLite file.

  gen_people.py students N [--sqlite FILE] [--seed S] [--start-id K] [--updatetime TS]
  gen_people.py teachers N [--sqlite FILE] ...
"""
import argparse
import random
import sqlite3
import sys

SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤"
GIVEN = "伟芳娜秀英敏静丽强磊军洋勇艳杰娟涛明超秀兰霞平刚桂英华玉萍红娥玲芬燕彩春菊兰凤洁梅琳素云莲真环雪荣爱妹霞香月莺媛艳瑞凡佳嘉琼勤珍贞莉桂娣叶璧璐娅琦晶妍茜秋珊莎锦黛青倩婷姣婉娴瑾颖露瑶怡婵雁蓓纨仪荷丹蓉眉君琴蕊薇菁梦岚苑婕馨瑗琰韵融园艺咏卿聪澜纯毓悦昭冰爽琬茗羽希宁欣飘育滢馥筠柔竹霭凝晓欢霄枫芸菲寒伊亚宜可姬舒影荔枝思丽"
DISTRICTS = ["310101", "310104", "310105", "310106", "310107", "310109", "310110", "310112",
             "310113", "310114", "310115", "310116", "310117", "310118", "310120", "310151"]
STAGES = ["小学", "初中", "高中", "中职"]
SUBJECTS = ["语文", "数学", "英语", "物理", "化学", "生物", "历史", "地理", "政治", "体育", "音乐", "美术"]
TITLES = ["二级教师", "一级教师", "高级教师", "正高级教师"]
WEIGHTS = [7, 9, 10, 5, 8, 4, 3, 6, 2, 1, 9, 10, 5, 8, 4, 2, 1]


def id_number(rng, district, birth):
    body = district + birth.replace("-", "") + "%03d" % rng.randint(1, 999)
    total = sum(int(d) * w for d, w in zip(body, WEIGHTS))
    return body + "10X98765432"[total % 11]


def name(rng):
    n = rng.choice(SURNAMES) + rng.choice(GIVEN)
    if rng.random() < 0.7:
        n += rng.choice(GIVEN)
    return n


def person(rng, born_from, born_to, updatetime):
    """The fields students and teachers share: district, birth date, school, UPDATETIME."""
    district = rng.choice(DISTRICTS)
    year = rng.randint(born_from, born_to)
    birth = "%04d-%02d-%02d" % (year, rng.randint(1, 12), rng.randint(1, 28))
    school = district + "%04d" % rng.randint(1, 300)
    ut = updatetime or "2026-%02d-%02d %02d:%02d:%02d" % (
        rng.randint(1, 10), rng.randint(1, 28), rng.randint(0, 23), rng.randint(0, 59),
        rng.randint(0, 59))
    return district, birth, school, ut


def students(rng, n, start, updatetime):
    for i in range(start, start + n):
        district, birth, school, ut = person(rng, 2006, 2018, updatetime)
        yield (i, name(rng), id_number(rng, district, birth), school, district,
               rng.choice(STAGES), birth, rng.randint(1, 2), ut)


def teachers(rng, n, start, updatetime):
    for i in range(start, start + n):
        district, birth, school, ut = person(rng, 1965, 2000, updatetime)
        yield (i, name(rng), id_number(rng, district, birth), school, district,
               rng.choice(SUBJECTS), rng.choice(TITLES), birth, ut)


SCHEMAS = {
    "students": ("student", "id BIGINT PRIMARY KEY, name VARCHAR(30) NOT NULL, id_card CHAR(18), "
                 "school_code VARCHAR(10), district_code VARCHAR(6), stage VARCHAR(10), birth DATE, "
                 "gender INT, updatetime DATETIME NOT NULL"),
    "teachers": ("teacher", "id BIGINT PRIMARY KEY, name VARCHAR(30) NOT NULL, id_card CHAR(18), "
                 "school_code VARCHAR(10), district_code VARCHAR(6), subject VARCHAR(10), "
                 "title VARCHAR(20), birth DATE, updatetime DATETIME NOT NULL"),
}


def main():
    p = argparse.ArgumentParser()
    p.add_argument("kind", choices=["students", "teachers"])
    p.add_argument("rows", type=int)
    p.add_argument("--sqlite")
    p.add_argument("--seed", type=int, default=20261121)
    p.add_argument("--start-id", type=int, default=1)
    p.add_argument("--updatetime", default="")
    a = p.parse_args()
    rng = random.Random(a.seed)
    gen = (students if a.kind == "students" else teachers)(rng, a.rows, a.start_id, a.updatetime)
    if a.sqlite:
        table, cols = SCHEMAS[a.kind]
        db = sqlite3.connect(a.sqlite)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("CREATE TABLE IF NOT EXISTS %s (%s)" % (table, cols))
        db.execute("CREATE INDEX IF NOT EXISTS %s_ut ON %s(updatetime, id)" % (table, table))
        marks = ",".join("?" * 9)
        db.executemany("INSERT OR REPLACE INTO %s VALUES (%s)" % (table, marks), gen)
        db.commit()
        db.close()
    else:
        out = sys.stdout
        for row in gen:
            out.write("\t".join(str(v) for v in row) + "\n")


if __name__ == "__main__":
    main()
