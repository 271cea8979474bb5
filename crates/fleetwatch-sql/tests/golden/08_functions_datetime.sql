-- Date and time functions with Java patterns and time zones. Expected values were computed
-- with Python's zoneinfo: 1612345678901 ms is 2021-02-03 09:47:58.901 UTC.
--@ statement ok
CREATE STREAM times (id STRING KEY, ms BIGINT, txt STRING) WITH (kafka_topic='times', value_format='JSON', partitions=1);

--@ input times
t1|{"MS":1612345678901,"TXT":"2021-07-01 12:00:00"}
t2|{"MS":null,"TXT":null}

--@ query
SELECT TIMESTAMPTOSTRING(ms, 'yyyy-MM-dd HH:mm:ss.SSS'), TIMESTAMPTOSTRING(ms, 'yyyy-MM-dd HH:mm:ss.SSS', 'UTC'), TIMESTAMPTOSTRING(ms, 'yyyy-MM-dd HH:mm:ss.SSS', 'America/Los_Angeles'), TIMESTAMPTOSTRING(ms, 'yyyy-MM-dd HH:mm:ss.SSS', 'Asia/Kolkata'), TIMESTAMPTOSTRING(ms, 'dd/MM/yy HH:mm', '+01:00') FROM times WHERE id = 't1';
----
["2021-02-03 09:47:58.901", "2021-02-03 09:47:58.901", "2021-02-03 01:47:58.901", "2021-02-03 15:17:58.901", "03/02/21 10:47"]

-- Berlin is UTC+2 in July: 12:00 there is 10:00 UTC = 1625133600000.
--@ query
SELECT STRINGTOTIMESTAMP(txt, 'yyyy-MM-dd HH:mm:ss'), STRINGTOTIMESTAMP(txt, 'yyyy-MM-dd HH:mm:ss', 'Europe/Berlin'), STRINGTOTIMESTAMP('2021-01-01', 'yyyy-MM-dd'), STRINGTOTIMESTAMP('2021-01-01T01:00:00+01:00', 'yyyy-MM-dd''T''HH:mm:ssXXX') FROM times WHERE id = 't1';
----
[1625140800000, 1625133600000, 1609459200000, 1609459200000]

-- TIMESTAMP values: FROM_UNIXTIME, FORMAT_TIMESTAMP, PARSE_TIMESTAMP, UNIX_TIMESTAMP.
--@ query
SELECT FORMAT_TIMESTAMP(FROM_UNIXTIME(ms), 'yyyy-MM-dd HH:mm:ss', 'Europe/Berlin'), UNIX_TIMESTAMP(FROM_UNIXTIME(ms)), UNIX_TIMESTAMP(PARSE_TIMESTAMP(txt, 'yyyy-MM-dd HH:mm:ss', 'Europe/Berlin')), UNIX_TIMESTAMP() > 1700000000000 FROM times WHERE id = 't1';
----
["2021-02-03 10:47:58", 1612345678901, 1625133600000, true]

--@ query
SELECT TIMESTAMPTOSTRING(ms, 'yyyy'), STRINGTOTIMESTAMP(txt, 'yyyy-MM-dd HH:mm:ss'), FROM_UNIXTIME(ms), FORMAT_TIMESTAMP(FROM_UNIXTIME(ms), 'yyyy'), PARSE_TIMESTAMP(txt, 'yyyy') FROM times WHERE id = 't2';
----
[null, null, null, null, null]

-- A bad zone or a value that does not parse fails its row (NULL, processing log), as in
-- ksqlDB; the query goes on.
--@ statement ok
CREATE STREAM times_parsed AS SELECT id, STRINGTOTIMESTAMP(txt, 'dd.MM.yyyy') AS ts, TIMESTAMPTOSTRING(ms, 'yyyy', 'Mars/Olympus') AS y, TIMESTAMPTOSTRING(ms, 'yyyy') AS ok FROM times EMIT CHANGES;

--@ output TIMES_PARSED
t1|{"TS":null,"Y":null,"OK":"2021"}
t2|{"TS":null,"Y":null,"OK":null}

--@ processing-log 2
STRINGTOTIMESTAMP
Mars/Olympus
