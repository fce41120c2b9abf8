-- What each page of an entity's last complete pass was, so that an unchanged re-sync can skip parsing and
-- transforming a page whose reply is byte for byte the one that pass wrote (ADR 0015). `page_memo` holds one row per
-- page (its cursor, the digest of the reply, where the next page starts and the page's key hashes); `page_memo_pass`
-- says which pass the rows belong to and the target table's change count when it ended. A memo is only trusted while
-- nothing but that pipeline's page writes changed the table since (the target counts every other statement).
CREATE TABLE page_memo (
    pipeline    TEXT NOT NULL,
    entity      TEXT NOT NULL,
    cursor      TEXT NOT NULL,
    pass        TEXT NOT NULL,
    config      TEXT NOT NULL,
    digest      BLOB NOT NULL,
    next        TEXT,
    records     INTEGER NOT NULL,
    fingerprint INTEGER,
    keys        BLOB NOT NULL,
    PRIMARY KEY (pipeline, entity, cursor)
);

CREATE TABLE page_memo_pass (
    pipeline TEXT NOT NULL,
    entity   TEXT NOT NULL,
    pass     TEXT NOT NULL,
    changes  INTEGER NOT NULL,
    PRIMARY KEY (pipeline, entity)
);
