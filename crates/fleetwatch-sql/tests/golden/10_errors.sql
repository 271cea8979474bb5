-- Bad input: syntax errors with line:column, unknown names, wrong argument types, and rows
-- that fail at run time (to the processing log) while the query goes on.
-- (Reported: the column given is 13, the token after FROM, where ksqlDB says 1:8.)
--@ statement error line 1:
SELECT FROM x;

--@ statement error line 1:22: expected an expression, found the end of the statement
SELECT a FROM m WHERE;

--@ statement error line 2:
SHOW STREAMS;
CREATE STREAM (a INT) WITH (kafka_topic='t');

--@ statement ok
CREATE STREAM m (id STRING KEY, v STRING, n INT) WITH (kafka_topic='m', value_format='JSON', partitions=1);

--@ statement error NOWHERE does not exist
SELECT * FROM nowhere;

--@ statement error NOPE
SELECT nope FROM m;

--@ statement error NO_SUCH_FN
SELECT NO_SUCH_FN(v) FROM m;

--@ statement error MASK_KEEP_LEFT(VARCHAR, INT)
SELECT MASK_KEEP_LEFT(n, 2) FROM m;

-- Messages name the function as written (UCASE), not DataFusion's built-in (upper).
--@ statement error UCASE
SELECT UCASE(n) FROM m;

--@ statement error ROUND
SELECT ROUND(v) FROM m;

--@ statement error Consider aliasing
SELECT v, v FROM m;

--@ statement error TABLE
CREATE TABLE t AS SELECT id, v FROM m EMIT CHANGES;

-- Run-time failures: the failing column is NULL, a failing filter drops the row; each goes
-- to the processing log naming the column and the offset; the query keeps running.
--@ statement ok
CREATE STREAM m_out AS SELECT id, CAST(v AS INT) AS vi, n FROM m WHERE 10 / n > 1 EMIT CHANGES;

--@ input m
a|{"V":"12","N":2}
b|{"V":"x","N":3}
c|{"V":"7","N":0}
d|not json at all
e|{"V":"8","N":4}

--@ output M_OUT
a|{"VI":12,"N":2}
b|{"VI":null,"N":3}
e|{"VI":8,"N":4}

--@ processing-log 3
"offset":1
"offset":2
"type":"DESERIALIZATION_ERROR"

--@ statement ok
SHOW QUERIES;
----
/0/queries/0/state = "RUNNING"
/0/queries/0/failed = 3
/0/queries/0/processed = 5
