-- Mathematical functions.
--@ statement ok
CREATE STREAM nums (id STRING KEY, i INT, b BIGINT, d DOUBLE) WITH (kafka_topic='nums', value_format='JSON', partitions=1);

--@ input nums
a|{"I":-3,"B":-40000000000,"D":-2.5}
b|{"I":null,"B":null,"D":null}

--@ query
SELECT ABS(i), ABS(b), ABS(d), CEIL(d), FLOOR(d), CEIL(1.2), FLOOR(1.8) FROM nums WHERE id = 'a';
----
[3, 40000000000, 2.5, -2.0, -3.0, 2.0, 1.0]

-- ksqlDB: ROUND(x) of a DOUBLE is a BIGINT, ROUND(x, places) a DOUBLE; halves round up
-- (towards positive infinity).
--@ query
SELECT ROUND(2.5), ROUND(-2.5), ROUND(1.2345, 2), ROUND(d), ROUND(d, 0) FROM nums WHERE id = 'a';
----
[3, -2, 1.23, -2, -2.0]

--@ query
SELECT SQRT(16.0), SQRT(2), EXP(0), LN(1), POWER(2, 10), POWER(d, 2) FROM nums WHERE id = 'a';
----
[4.0, 1.4142135623730951, 1.0, 0.0, 1024.0, 6.25]

-- ksqlDB: SIGN returns an INT.
--@ query
SELECT SIGN(d), SIGN(0.0), SIGN(7), SIGN(i) FROM nums WHERE id = 'a';
----
[-1, 0, 1, -1]

--@ query
SELECT RANDOM() >= 0.0 AND RANDOM() < 1.0 FROM nums WHERE id = 'a';
----
[true]

--@ query
SELECT ABS(i), CEIL(d), FLOOR(d), ROUND(d), SQRT(d), EXP(d), LN(d), POWER(d, 2), SIGN(d) FROM nums WHERE id = 'b';
----
[null, null, null, null, null, null, null, null, null]
