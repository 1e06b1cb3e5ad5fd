-- Generates :rows student-like rows fast, inside SQLite: id, a 2-3 character Chinese name,
-- an 18-character ID number, a school code, birth date, gender and UPDATETIME.
-- Usage: sqlite3 FILE -cmd ".parameter set :rows 1000000" < gen_students.sql
PRAGMA journal_mode=WAL;
PRAGMA synchronous=OFF;
CREATE TABLE IF NOT EXISTS student (
  id BIGINT PRIMARY KEY, name VARCHAR(30) NOT NULL, id_card CHAR(18), school_code VARCHAR(10),
  birth DATE, gender INT, updatetime DATETIME NOT NULL);
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < :rows),
  chars(sur, giv) AS (SELECT '王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤',
                                '伟芳娜秀英敏静丽强磊军洋勇艳杰娟涛明超兰霞平刚玉萍红娥玲芬燕彩春菊凤洁梅琳素云莲真环雪荣爱妹香月莺媛瑞凡佳嘉琼勤珍贞莉娣叶璧璐娅琦晶妍茜秋珊莎锦黛青倩婷姣婉娴瑾颖露瑶怡婵雁蓓纨仪荷丹蓉眉君琴蕊薇菁梦岚苑婕馨瑗琰韵融园艺咏卿聪澜纯毓悦昭冰爽琬茗羽希宁欣飘育滢馥筠柔竹霭凝晓欢霄枫芸菲寒伊亚宜可姬舒影荔枝思')
INSERT INTO student
SELECT i,
       substr(sur, 1 + abs(random() % 100), 1) || substr(giv, 1 + abs(random() % 160), 1) ||
         CASE WHEN i % 3 THEN substr(giv, 1 + abs(random() % 160), 1) ELSE '' END,
       printf('3101%02d%04d%02d%02d%03d%d', 1 + i % 18, 2006 + i % 13, 1 + i % 12, 1 + i % 28,
              i % 1000, i % 10),
       printf('3101%02d%04d', 1 + i % 18, i % 300),
       printf('%04d-%02d-%02d', 2006 + i % 13, 1 + i % 12, 1 + i % 28),
       1 + i % 2,
       printf('2026-%02d-%02d %02d:%02d:%02d', 1 + i % 10, 1 + (i / 7) % 28, (i / 3) % 24,
              (i / 11) % 60, i % 60)
FROM n, chars;
CREATE INDEX IF NOT EXISTS student_ut ON student(updatetime, id);
