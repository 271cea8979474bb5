-- JSON and AVRO sources decode only the columns a query reads (the others are skipped while
-- scanning): a value that does not fit a column the query does not use does not drop the
-- row; a query that reads that column drops it and logs it. DELIMITED is positional and
-- always decodes every column.
--@ input readings
r1|{"a":1,"b":"not a number"}
r2|{"a":2,"b":3}

--@ statement ok
CREATE STREAM readings (id STRING KEY, a INT, b INT) WITH (kafka_topic='readings', value_format='JSON');

--@ query
SELECT id, a FROM readings;
----
["r1", 1]
["r2", 2]

--@ processing-log 0

--@ query
SELECT id, a, b FROM readings;
----
["r2", 2, 3]

--@ processing-log 1
"offset":0
