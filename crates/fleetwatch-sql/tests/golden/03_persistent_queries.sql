-- Persistent queries: CSAS, INSERT INTO … SELECT, INSERT INTO … VALUES, SHOW QUERIES,
-- EXPLAIN, TERMINATE, and restarts that resume without writing any output twice.
--@ statement ok
CREATE STREAM ev (vin STRING KEY, speed DOUBLE, kind STRING) WITH (kafka_topic='ev', value_format='JSON', partitions=2);

--@ input ev
V1|{"SPEED":10,"KIND":"a"}
V2|{"SPEED":120,"KIND":"b"}

--@ statement ok
CREATE STREAM fast WITH (kafka_topic='fast') AS SELECT vin, speed, kind FROM ev WHERE speed > 100 EMIT CHANGES;
----
/0/commandStatus/message = "Created query with ID CSAS_FAST_1"
/0/commandStatus/queryId = "CSAS_FAST_1"

--@ output fast
V2|{"SPEED":120.0,"KIND":"b"}

-- Restart with the CSAS as the sink's only writer: it resumes from its checkpoint and
-- writes nothing twice. (Two writers: see 12_restart_two_writers.sql.)
--@ restart commands=2
--@ input ev
V0|{"SPEED":101,"KIND":"z"}

--@ output fast
V2|{"SPEED":120.0,"KIND":"b"}
V0|{"SPEED":101.0,"KIND":"z"}

--@ statement error must include the key column(s) VIN
CREATE STREAM nokey AS SELECT speed FROM ev EMIT CHANGES;

--@ statement error A stream with the same name already exists
CREATE STREAM fast AS SELECT vin, speed, kind FROM ev EMIT CHANGES;

-- A second writer into the same sink.
--@ statement ok
INSERT INTO fast SELECT vin, speed * 10 AS speed, kind FROM ev WHERE speed < 100 EMIT CHANGES;
----
/0/commandStatus/queryId = "INSERTQUERY_2"

--@ output fast
V2|{"SPEED":120.0,"KIND":"b"}
V0|{"SPEED":101.0,"KIND":"z"}
V1|{"SPEED":100.0,"KIND":"a"}

--@ statement error Incompatible schema between results and sink
INSERT INTO fast SELECT vin, kind FROM ev EMIT CHANGES;

-- INSERT … VALUES, with and without a column list; ROWTIME can be given.
--@ statement ok
INSERT INTO ev (vin, speed, kind) VALUES ('V3', 150.5, 'c');
INSERT INTO ev VALUES ('V4', 1.0, 'd');
INSERT INTO ev (ROWTIME, vin, speed) VALUES (1234, 'V5', 200.0);
----
/0 = null

--@ output fast
V2|{"SPEED":120.0,"KIND":"b"}
V0|{"SPEED":101.0,"KIND":"z"}
V1|{"SPEED":100.0,"KIND":"a"}
V3|{"SPEED":150.5,"KIND":"c"}
V4|{"SPEED":10.0,"KIND":"d"}
V5|{"SPEED":200.0,"KIND":null}

--@ query
SELECT vin, ROWTIME FROM ev WHERE vin = 'V5';
----
["V5", 1234]

--@ statement error Column name NOPE does not exist.
INSERT INTO ev (vin, nope) VALUES ('V9', 1);

--@ statement error Expected number columns and values to match
INSERT INTO ev (vin, speed) VALUES ('V9');

--@ statement ok
SHOW QUERIES; EXPLAIN CSAS_FAST_1; EXPLAIN SELECT vin FROM ev WHERE speed > 1; DESCRIBE fast;
----
/0/queries # 2
/0/queries/[id=CSAS_FAST_1]/state = "RUNNING"
/0/queries/[id=CSAS_FAST_1]/sinks = ["FAST"]
/0/queries/[id=CSAS_FAST_1]/sinkKafkaTopics = ["fast"]
/0/queries/[id=CSAS_FAST_1]/queryType = "PERSISTENT"
/0/queries/[id=INSERTQUERY_2]/queryString ~ INSERT INTO fast
/1/@type = "queryDescription"
/1/queryDescription/id = "CSAS_FAST_1"
/1/queryDescription/sources = ["EV"]
/1/queryDescription/executionPlan ~ FILTER
/1/queryDescription/fields/0/type = "KEY"
/2/queryDescription/executionPlan ~ SOURCE
/3/sourceDescription/writeQueries # 2
/3/sourceDescription/readQueries # 0

--@ statement error Query with id:NOPE_9 does not exist
EXPLAIN NOPE_9;

-- New rows go on flowing through both queries.
--@ input ev
V6|{"SPEED":300,"KIND":"e"}

--@ output fast
V2|{"SPEED":120.0,"KIND":"b"}
V0|{"SPEED":101.0,"KIND":"z"}
V1|{"SPEED":100.0,"KIND":"a"}
V3|{"SPEED":150.5,"KIND":"c"}
V4|{"SPEED":10.0,"KIND":"d"}
V5|{"SPEED":200.0,"KIND":null}
V6|{"SPEED":300.0,"KIND":"e"}

--@ statement error Cannot drop EV
DROP STREAM ev;

--@ statement error Unknown queryId: NOPE_1
TERMINATE NOPE_1;

--@ statement ok
TERMINATE INSERTQUERY_2; SHOW QUERIES;
----
/0/commandStatus/message = "Query terminated."
/1/queries # 1

-- Terminated: rows the INSERT query would have taken are not written.
--@ input ev
V7|{"SPEED":5,"KIND":"f"}
V8|{"SPEED":500,"KIND":"g"}

--@ output fast
V2|{"SPEED":120.0,"KIND":"b"}
V0|{"SPEED":101.0,"KIND":"z"}
V1|{"SPEED":100.0,"KIND":"a"}
V3|{"SPEED":150.5,"KIND":"c"}
V4|{"SPEED":10.0,"KIND":"d"}
V5|{"SPEED":200.0,"KIND":null}
V6|{"SPEED":300.0,"KIND":"e"}
V8|{"SPEED":500.0,"KIND":"g"}

--@ restart commands=4
--@ statement ok
SHOW QUERIES;
----
/0/queries # 1

--@ statement ok
TERMINATE ALL; DROP STREAM fast; DROP STREAM ev;
----
/1/commandStatus/message = "Source `FAST` (topic: fast) was dropped."

--@ restart commands=7
--@ statement ok
SHOW QUERIES; SHOW STREAMS;
----
/0/queries # 0
/1/streams # 0
