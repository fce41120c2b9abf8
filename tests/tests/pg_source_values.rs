//! The PostgreSQL source reads typed columns in binary and builds each record itself; a record must be exactly the
//! object `row_to_json` writes for its row (the engine read rows so before, and records' hashes depend on every
//! value's spelling): here every type the source decodes itself, and some it leaves to `to_json`, with their edge
//! values (nulls, infinities, NaN, years BC and past 9999, padded char(n), control characters, -0), read in
//! pages of 3 through a composite key with a char(n) part, from a table and from a query.

use serde_json::Value;
use syncflow_engine::config::{Entity, PostgresSource};
use syncflow_engine::source::postgres::PgSource;
use syncflow_engine::source::PageCursor;
use syncflow_tests::pg::PgCluster;

const TABLE: &str = "CREATE TYPE mood AS ENUM ('calm', 'busy');
CREATE TABLE every_type (
  id integer, code char(3), i2 smallint, i8 bigint, b boolean, t text, vc varchar(10), nm name, u uuid,
  n numeric, n2 numeric(12,2), r real, d double precision, ts timestamp, ts3 timestamp(3), tz timestamptz,
  dt date, j json, jb jsonb, arr int[], tags text[], iv interval, tm time, by bytea, m mood, ch \"char\",
  na numeric(5,1)[], ca char(2)[], va varchar(4)[], ta timestamp(3)[],
  PRIMARY KEY (id, code))";

const ROWS: &str = "INSERT INTO every_type VALUES
  (1, 'a', NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
   NULL, NULL, NULL, NULL, NULL, NULL, NULL),
  (1, 'b', 7, 42, true, 'plain', 'short', 'a_name', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', 12.5, 7.00, 0.1, 0.1,
   '2026-03-04 05:06:07', '2026-03-04 05:06:07.123', '2026-03-04 05:06:07.00012+00', '2026-03-04',
   '{\"b\": [1, 2.50, \"x\"],  \"a\": null}', '{\"b\": 1, \"a\": {\"z\": 2}}', '{1,NULL,3}', '{\"x y\",\"\\\"q\\\"\"}',
   '1 day 02:03:04', '23:59:59.5', '\\x00ff', 'busy', 'x'),
  (2, 'ab', -32768, -9223372036854775808, false, E'tab\\there\\nnew \"quoted\" back\\\\slash \\u0001 ü 😀', 'ü',
   'x', '00000000-0000-0000-0000-000000000000', 'NaN', -0.00, 'Infinity', '-Infinity', 'infinity', '-infinity',
   '294276-12-31 23:59:59.999999+00', 'infinity', '[]', '[]', '{}', '{}', '-1 year', '00:00', '\\x', 'calm', ' '),
  (3, 'abc', 32767, 9223372036854775807, true, '', '', '', NULL, '-0.000', 1234567890.34, 3.4028235e38,
   1e-300, '0044-03-15 12:00:00 BC', '1999-12-31 23:59:59.999', '4713-01-01 00:00:00+00 BC', '4713-01-01 BC',
   '1e400', '12345678901234567890.123456789', '{{1,2},{3,4}}', '{NULL}', '0', '12:00', NULL, NULL, NULL),
  (4, 'a', 1, 1, true, 'x', 'x', 'x', NULL, '1e40', 1.5, -0, -0, '10000-01-01 00:00:00', '2000-02-29 00:00:00',
   '1970-01-01 00:00:00.000001+00', '0001-01-01', 'true', '\"s\"', '{1}', '{a}', NULL, NULL, NULL, NULL, NULL)";

/// Every row of `sql` (ordered by the key) as `row_to_json` writes it, parsed as the engine parses JSON.
async fn as_row_to_json(pool: &sqlx::PgPool, sql: &str) -> Vec<Value> {
    let texts: Vec<String> = sqlx::query_scalar(&format!(
        "SELECT row_to_json(x)::text FROM ({sql}) x ORDER BY x.id, x.code"
    ))
    .fetch_all(pool)
    .await
    .unwrap();
    texts
        .iter()
        .map(|text| serde_json::from_str(text).unwrap())
        .collect()
}

/// Every page the source gives for `entity`, from the first cursor to the last page.
async fn read_all(source: &PgSource, entity: &Entity) -> Vec<Value> {
    let mut cursor = PgSource::first_cursor();
    let mut records = Vec::new();
    loop {
        let page = source.fetch_page(entity, &cursor).await.unwrap();
        assert!(page.records.len() <= 3, "a page of at most page_size rows");
        records.extend(page.records.into_objects());
        match page.next {
            Some(next) => cursor = next,
            None => return records,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_are_what_row_to_json_writes_for_every_type() {
    let pg = PgCluster::start();
    let url = pg.create_database("values_src").await;
    let pool = sqlx::PgPool::connect(&url).await.unwrap();
    sqlx::raw_sql(TABLE).execute(&pool).await.unwrap();
    sqlx::raw_sql(ROWS).execute(&pool).await.unwrap();
    sqlx::raw_sql(
        "INSERT INTO every_type (id, code, i8, t, n2, d, tz, dt, jb, na, ca, va, ta)
         SELECT i, 'z', i * 7919, 'row ' || i, i / 7.0, i / 3.0, timestamptz '2026-01-01' + i * interval '1.25 s',
                date '2026-01-01' + i, jsonb_build_object('i', i), ARRAY[i / 3.0, NULL, -0.5]::numeric(5,1)[],
                ARRAY['a', 'bc', NULL]::char(2)[], ARRAY['x' || i, '']::varchar(4)[],
                ARRAY[timestamp '2026-01-01 00:00:00.5' + i * interval '1 ms']::timestamp(3)[]
         FROM generate_series(5, 40) i",
    )
    .execute(&pool)
    .await
    .unwrap();

    let config: PostgresSource =
        serde_json::from_value(serde_json::json!({ "url": url, "page_size": 3 })).unwrap();
    let listed: Vec<Entity> = serde_json::from_value(serde_json::json!([
        { "name": "every_type" },
        { "name": "some_columns", "business_key": ["id", "code"],
          "query": "SELECT id, code, tz, n2, arr, t FROM every_type WHERE id > 1" }
    ]))
    .unwrap();
    let source = PgSource::connect(&config, &listed).await.unwrap();
    let entities = source.entities(&listed).unwrap();
    assert_eq!(entities[0].business_key, ["id", "code"]);

    let table = read_all(&source, &entities[0]).await;
    let expected = as_row_to_json(&pool, "SELECT * FROM every_type").await;
    assert_eq!(table.len(), 41);
    assert_eq!(expected.len(), 41);
    for (got, want) in table.iter().zip(&expected) {
        assert_eq!(got, want);
        // Same values and the same spelling of each (numbers keep their digits): the hashes' canonical form.
        assert_eq!(got.to_string(), want.to_string());
    }

    let query = read_all(&source, &entities[1]).await;
    let expected = as_row_to_json(
        &pool,
        "SELECT id, code, tz, n2, arr, t FROM every_type WHERE id > 1",
    )
    .await;
    assert_eq!(query.len(), expected.len());
    assert_eq!(query, expected);
    assert!(matches!(PgSource::first_cursor(), PageCursor::Key(None)));

    // Two columns of one name cannot both become fields: said before anything is read.
    let twice: Vec<Entity> = serde_json::from_value(serde_json::json!([
        { "name": "joined", "business_key": ["id"],
          "query": "SELECT a.id, b.id, a.t FROM every_type a JOIN every_type b USING (id, code)" }
    ]))
    .unwrap();
    let refused = PgSource::connect(&config, &twice)
        .await
        .err()
        .unwrap()
        .to_string();
    assert!(
        refused.contains("entities \"joined\": the query returns two columns named \"id\""),
        "{refused}"
    );
}

/// A database that stores bytes as they came (SQL_ASCII) can hold text that is not UTF-8: PostgreSQL refuses to
/// send it as UTF-8, and the error names the entity and the page and says what to do; nothing is made up in its
/// place.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn text_that_is_not_utf8_names_the_page_and_the_way_out() {
    let pg = PgCluster::start();
    pg.sql(&["CREATE DATABASE raw_bytes ENCODING 'SQL_ASCII' LC_COLLATE 'C' LC_CTYPE 'C' TEMPLATE template0"])
        .await;
    let url = pg.url("raw_bytes");
    let pool = sqlx::PgPool::connect(&url).await.unwrap();
    sqlx::raw_sql(
        "CREATE TABLE notes (id int PRIMARY KEY, body text);
         INSERT INTO notes VALUES (1, 'fine'), (2, convert_from('\\x6869ff'::bytea, 'SQL_ASCII'))",
    )
    .execute(&pool)
    .await
    .unwrap();
    let config: PostgresSource =
        serde_json::from_value(serde_json::json!({ "url": url, "page_size": 10 })).unwrap();
    let listed: Vec<Entity> =
        serde_json::from_value(serde_json::json!([{ "name": "notes" }])).unwrap();
    let source = PgSource::connect(&config, &listed).await.unwrap();
    let entities = source.entities(&listed).unwrap();
    let refused = source
        .fetch_page(&entities[0], &PgSource::first_cursor())
        .await
        .err()
        .unwrap()
        .to_string();
    assert!(
        refused.contains("entities \"notes\": the first page: ")
            && refused.contains("invalid byte sequence")
            && refused.contains("convert_from"),
        "{refused}"
    );
}
