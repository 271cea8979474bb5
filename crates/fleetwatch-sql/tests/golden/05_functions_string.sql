-- String functions, on literals and on columns (one row per input), NULL in → NULL out.
--@ statement ok
CREATE STREAM words (id STRING KEY, s STRING, n INT) WITH (kafka_topic='words', value_format='JSON', partitions=1);

--@ input words
a|{"S":"  Hello World  ","N":5}
b|{"S":null,"N":null}

--@ query ordered
SELECT id, UCASE(s), LCASE(s), LEN(s), TRIM(s), LTRIM(s), RTRIM(s) FROM words;
----
["a", "  HELLO WORLD  ", "  hello world  ", 15, "Hello World", "Hello World  ", "  Hello World"]
["b", null, null, null, null, null, null]

--@ query
SELECT SUBSTRING('hello world', 7), SUBSTRING('hello', 2, 3), SUBSTRING(TRIM(s), 1, n) FROM words WHERE id = 'a';
----
["world", "ell", "Hello"]

--@ query
SELECT CONCAT('a', 'b', 'c'), CONCAT(id, '-', TRIM(s)), CONCAT_WS('-', 'x', 'y', 'z'), CONCAT_WS(', ', id, TRIM(s)) FROM words WHERE id = 'a';
----
["abc", "a-Hello World", "x-y-z", "a, Hello World"]

--@ query
SELECT REPLACE('abcabc', 'b', 'X'), INSTR('hello', 'l'), INSTR('hello', 'z'), LPAD('ab', 5, '*'), RPAD('ab', 5, '*+'), LPAD('abcdef', 3, '*') FROM words WHERE id = 'a';
----
["aXcaXc", 3, 0, "***ab", "ab*+*", "abc"]

--@ query
SELECT INITCAP('hello wORLD'), SPLIT('a,b,,c', ','), REGEXP_REPLACE('aaa bbb', 'a+', 'X'), CHR(75), CHR(228) FROM words WHERE id = 'a';
----
["Hello World", ["a", "b", "", "c"], "X bbb", "K", "ä"]

-- NULL in, NULL out for every string function (ksqlDB's rule).
--@ query
SELECT UCASE(s), SUBSTRING(s, 1), REPLACE(s, 'a', 'b'), INSTR(s, 'a'), LPAD(s, 3, '*'), RPAD(s, 3, '*'), INITCAP(s), SPLIT(s, ','), REGEXP_REPLACE(s, 'a', 'b') FROM words WHERE id = 'b';
----
[null, null, null, null, null, null, null, null, null]
