-- Smoke: a stream, a pull query, a persistent query.
--@ statement ok
CREATE STREAM s (id STRING KEY, n INT) WITH (kafka_topic='s', value_format='JSON', partitions=1);
----
/0/commandStatus/message = "Stream created"

--@ input s
a|{"N":1}
b|{"N":2}

--@ query
SELECT id, n FROM s;
----
["a", 1]
["b", 2]
