-- The MASK family (ksqlDB's documented examples) and HASH_PII with a key file.
-- HASH_PII's expected values are HMAC-SHA-256 computed outside fleetwatch (Python's hmac).
--@ hash-keys
# 32 bytes: "0123456789abcdef0123456789abcdef"
golden = MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=

--@ statement ok
CREATE STREAM people (id STRING KEY, t STRING, card STRING, email STRING) WITH (kafka_topic='people', value_format='JSON', partitions=1);

--@ input people
p1|{"T":"My Test $123","CARD":"4111111111111111","EMAIL":"jane@example.com"}
p2|{"T":null,"CARD":null,"EMAIL":null}

-- ksqlDB docs: MASK("My Test $123") = "Xx-Xxxx--nnn";
-- MASK("My Test $123", '*', NULL, '1', NULL) = "*y *est $111".
--@ query
SELECT MASK(t), MASK(t, '*', NULL, '1', NULL), MASK(t, NULL, NULL, NULL, NULL), MASK(t, 'U') FROM people WHERE id = 'p1';
----
["Xx-Xxxx--nnn", "*y *est $111", "My Test $123", "Ux-Uxxx--nnn"]

-- ksqlDB docs: MASK_KEEP_LEFT("My Test $123", 4) = "My Txxx--nnn",
-- MASK_KEEP_RIGHT("My Test $123", 4) = "Xx-Xxxx-$123", MASK_LEFT("My Test $123", 4) =
-- "Xx-Xest $123", MASK_RIGHT("My Test $123", 4) = "My Test -nnn".
--@ query
SELECT MASK_KEEP_LEFT(t, 4), MASK_KEEP_RIGHT(t, 4), MASK_LEFT(t, 4), MASK_RIGHT(t, 4) FROM people WHERE id = 'p1';
----
["My Txxx--nnn", "Xx-Xxxx-$123", "Xx-Xest $123", "My Test -nnn"]

-- With replacements; counts beyond the length; zero.
--@ query
SELECT MASK_KEEP_LEFT(t, 1, '#', NULL, NULL, NULL), MASK_LEFT(t, 100), MASK_RIGHT(t, 0), MASK_KEEP_RIGHT(card, 4, NULL, NULL, '*', NULL) FROM people WHERE id = 'p1';
----
["My #est $123", "Xx-Xxxx--nnn", "My Test $123", "************1111"]

--@ query
SELECT MASK(t), MASK_KEEP_LEFT(t, 2), MASK_KEEP_RIGHT(t, 2), MASK_LEFT(t, 2), MASK_RIGHT(t, 2), HASH_PII(email, 'golden') FROM people WHERE id = 'p2';
----
[null, null, null, null, null, null]

--@ query
SELECT HASH_PII(card, 'golden'), HASH_PII(email, 'golden'), LEN(HASH_PII('', 'golden')) FROM people WHERE id = 'p1';
----
["7b7e6cb2715c7b1c37110f035123abd3fe93c04fa302da2946c4bd9342d2fd2c", "e54ecd8285defd5c7a03f9025dba809862224f8c4b3b8ec1b7844d775a27b734", 64]

-- A persistent query pseudonymises and masks; a key that is not in the file fails each
-- row (processing log), which gets NULL, and the query goes on.
--@ statement ok
CREATE STREAM people_safe AS SELECT id, HASH_PII(email, 'golden') AS who, MASK_KEEP_RIGHT(card, 4) AS card FROM people EMIT CHANGES;

--@ output PEOPLE_SAFE
p1|{"WHO":"e54ecd8285defd5c7a03f9025dba809862224f8c4b3b8ec1b7844d775a27b734","CARD":"nnnnnnnnnnnn1111"}
p2|{"WHO":null,"CARD":null}

--@ statement ok
CREATE STREAM people_bad AS SELECT id, HASH_PII(email, 'nokey') AS who FROM people EMIT CHANGES;

--@ output PEOPLE_BAD
p1|{"WHO":null}
p2|{"WHO":null}

-- (A key missing from the file is reported for every row, NULL ones too.)
--@ processing-log 2
no key named \"nokey\" in the hash key file (it has: golden)
no key named \"nokey\"

-- A negative count is an error, as in ksqlDB.
--@ statement ok
CREATE STREAM people_neg AS SELECT id, MASK_LEFT(t, -1) AS m FROM people EMIT CHANGES;

--@ output PEOPLE_NEG
p1|{"M":null}
p2|{"M":null}

--@ processing-log 1
must be >= 0
