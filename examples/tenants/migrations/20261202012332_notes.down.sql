-- notes
-- bind: default, backend: postgres

DROP TABLE "note";
