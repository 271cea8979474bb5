-- SET / UNSET (auto.offset.reset for push queries), RUN SCRIPT, PRINT, push queries with LIMIT.
--@ file setup.ksql
CREATE STREAM s (id STRING KEY, n INT) WITH (kafka_topic='s', value_format='JSON', partitions=1);
CREATE STREAM s2 AS SELECT id, n * 2 AS n2 FROM s EMIT CHANGES;

--@ statement ok
RUN SCRIPT '$DIR/setup.ksql';
----
/0/commandStatus/message = "Stream created"
/1/commandStatus/queryId = "CSAS_S2_1"

--@ statement error RUN SCRIPT
RUN SCRIPT '$DIR/missing.ksql';

--@ input s
a|{"N":1}
b|{"N":2}
c|{"N":3}

--@ output S2
a|{"N2":2}
b|{"N2":4}
c|{"N2":6}

--@ statement ok
SET 'auto.offset.reset' = 'earliest';
----
/0 = null

-- Push queries from the start (the property was SET), stopping at LIMIT.
--@ query ordered
SELECT id, n FROM s EMIT CHANGES LIMIT 2;
----
["a", 1]
["b", 2]

--@ query
SELECT id, n2 FROM s2 WHERE n2 > 2 EMIT CHANGES LIMIT 2;
----
["b", 4]
["c", 6]

--@ statement ok
UNSET 'auto.offset.reset';
PRINT 's' FROM BEGINNING LIMIT 1;
----
/0 = null
/1 = {"stream": "print"}

--@ statement error Could not find topic 'nope'
PRINT 'nope';

-- Latest (the default again): a push query sees only new rows; none come.
--@ query
SELECT id FROM s EMIT CHANGES;
----
