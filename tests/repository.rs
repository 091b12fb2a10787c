//! The repository on every backend: reads, writes, upserts, chunking, related rows, filters
//! and their edge cases, keyset pagination and the error table.

mod common;

use chrono::{DateTime, NaiveDate, TimeDelta, Utc};
use common::TestDb;
use rocket_alchemy::filters::{ColumnRef, Filter, Op, SortOrder};
use rocket_alchemy::pagination::Keyset;
use rocket_alchemy::{Alchemy, Changes, DbSession, Model, Repository, RepositoryError};
use uuid::Uuid;

#[derive(Model, Clone, Debug, PartialEq)]
struct Author {
    #[model(primary_key = "uuid_v7")]
    id: Uuid,
    #[model(max_length = 100, unique)]
    name: String,
    dob: Option<NaiveDate>,
    #[model(default = 0)]
    rank: i32,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

#[derive(Model, Clone, Debug, PartialEq)]
struct Book {
    id: Uuid,
    #[model(max_length = 200)]
    title: String,
    #[model(references = Author, on_delete = "cascade")]
    author_id: Uuid,
}

#[derive(Model, Clone, Debug, PartialEq)]
struct Counter {
    id: i64,
    #[model(max_length = 40, unique)]
    code: String,
    hits: i64,
    note: Option<String>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

#[derive(Model, Clone, Debug, PartialEq)]
struct Bulk {
    id: i64,
    #[model(max_length = 40)]
    label: String,
    n: i32,
}

fn author(name: &str) -> Author {
    Author {
        id: Uuid::nil(),
        name: name.into(),
        dob: None,
        rank: 0,
        created_at: DateTime::UNIX_EPOCH,
        updated_at: DateTime::UNIX_EPOCH,
    }
}

fn counter(code: &str, hits: i64) -> Counter {
    Counter {
        id: 0,
        code: code.into(),
        hits,
        note: None,
        created_at: DateTime::UNIX_EPOCH,
        updated_at: DateTime::UNIX_EPOCH,
    }
}

async fn open(db: &TestDb) -> Alchemy {
    let figment = db.figment("[databases.default]\ncreate_all = true\nmax_connections = 3");
    Alchemy::open(
        &figment,
        &[Author::TABLE, Book::TABLE, Counter::TABLE, Bulk::TABLE],
    )
    .await
    .expect("open")
}

fn repo<M: Model>(session: &DbSession) -> Repository<'_, M> {
    Repository::on(session).expect("same bind")
}

async fn crud(db: TestDb) {
    let alchemy = open(&db).await;
    let session = alchemy.session("default").unwrap();
    let authors = repo::<Author>(&session);

    // create: generated key, audit columns
    let before = rocket_alchemy::model::now();
    let ursula = authors
        .create(Author {
            dob: NaiveDate::from_ymd_opt(1929, 10, 21),
            ..author("Ursula")
        })
        .await
        .unwrap();
    assert_eq!(ursula.id.get_version_num(), 7);
    assert!(ursula.created_at >= before && ursula.created_at == ursula.updated_at);
    let octavia = authors.create(author("Octavia")).await.unwrap();
    let _ = authors.create(author("Iain")).await.unwrap();

    // reads
    assert_eq!(
        authors.get(ursula.id).await.unwrap(),
        ursula,
        "what is read is what was written"
    );
    assert!(authors.get_or_none(Uuid::new_v4()).await.unwrap().is_none());
    let missing = authors.get(Uuid::new_v4()).await.unwrap_err();
    assert!(matches!(missing, RepositoryError::NotFound { .. }));
    assert_eq!(missing.status().code, 404);
    assert_eq!(
        authors
            .get_one(&[Filter::eq(Author::NAME, "Octavia")])
            .await
            .unwrap()
            .id,
        octavia.id
    );
    let many = authors
        .get_one(&[Filter::eq(Author::RANK, 0)])
        .await
        .unwrap_err();
    assert!(matches!(many, RepositoryError::MultipleResults { .. }));
    assert_eq!(many.status().code, 500);
    assert!(authors
        .get_one_or_none(&[Filter::eq(Author::NAME, "Nobody")])
        .await
        .unwrap()
        .is_none());
    assert_eq!(authors.count(&[]).await.unwrap(), 3);
    assert_eq!(
        authors
            .count(&[Filter::not_null(Author::DOB), Filter::limit_offset(1, 5)])
            .await
            .unwrap(),
        1,
        "count ignores pagination"
    );
    assert!(authors
        .exists(&[Filter::eq(Author::NAME, "Iain")])
        .await
        .unwrap());
    assert!(!authors
        .exists(&[Filter::eq(Author::NAME, "Nobody")])
        .await
        .unwrap());
    let names: Vec<String> = authors
        .list(&[Filter::order_by(Author::NAME, SortOrder::Asc)])
        .await
        .unwrap()
        .into_iter()
        .map(|a| a.name)
        .collect();
    assert_eq!(names, ["Iain", "Octavia", "Ursula"]);

    // update: partial, explicit null, updated_at only on a real change
    let renamed = authors
        .update(
            ursula.id,
            Changes::new().set(Author::NAME, "Ursula K. Le Guin"),
        )
        .await
        .unwrap();
    assert_eq!(renamed.dob, ursula.dob, "absent fields untouched");
    assert!(renamed.updated_at > ursula.updated_at);
    assert_eq!(renamed.created_at, ursula.created_at);
    let same = authors
        .update(
            ursula.id,
            Changes::new().set(Author::NAME, "Ursula K. Le Guin"),
        )
        .await
        .unwrap();
    assert_eq!(
        same.updated_at, renamed.updated_at,
        "no real change, updated_at stays"
    );
    let cleared = authors
        .update(ursula.id, Changes::new().set(Author::DOB, None))
        .await
        .unwrap();
    assert_eq!(cleared.dob, None);
    assert_eq!(authors.get(ursula.id).await.unwrap(), cleared);
    let err = authors
        .update(Uuid::new_v4(), Changes::new().set(Author::RANK, 1))
        .await
        .unwrap_err();
    assert!(matches!(err, RepositoryError::NotFound { .. }));
    let mut full = cleared.clone();
    full.rank = 7;
    let full = authors.update_model(full).await.unwrap();
    assert_eq!((full.rank, full.name.as_str()), (7, "Ursula K. Le Guin"));
    let mut a = authors.get(octavia.id).await.unwrap();
    a.rank = 2;
    let mut b = full.clone();
    b.rank = 3;
    let updated = authors.update_many(vec![a, b]).await.unwrap();
    assert_eq!(updated.iter().map(|x| x.rank).collect::<Vec<_>>(), [2, 3]);
    assert_eq!(authors.get(octavia.id).await.unwrap().rank, 2);

    // unique violation
    let dup = authors.create(author("Octavia")).await.unwrap_err();
    assert!(matches!(dup, RepositoryError::DuplicateKey { .. }), "{dup}");
    assert_eq!(dup.status().code, 409);
    assert_eq!(
        dup.detail(),
        "A record matching the supplied data already exists."
    );
    session.rollback().await.unwrap();
    assert_eq!(
        authors.count(&[]).await.unwrap(),
        0,
        "rolled back with the session"
    );

    // auto_commit: each write commits at once
    let committing = repo::<Author>(&session).auto_commit(true);
    let kept = committing.create(author("Committed")).await.unwrap();
    assert_eq!(
        db.probe().count("author").await,
        1,
        "visible to another connection immediately"
    );
    session.rollback().await.unwrap();
    assert_eq!(authors.count(&[]).await.unwrap(), 1);

    // deletes
    let rows = authors
        .create_many(vec![author("A"), author("B"), author("C"), author("D")])
        .await
        .unwrap();
    let deleted = authors.delete(kept.id).await.unwrap();
    assert_eq!(deleted.name, "Committed");
    assert!(matches!(
        authors.delete(kept.id).await.unwrap_err(),
        RepositoryError::NotFound { .. }
    ));
    let gone = authors
        .delete_many([rows[0].id, rows[1].id, Uuid::new_v4()])
        .await
        .unwrap();
    assert_eq!(gone.len(), 2, "only existing rows come back");
    let refused = authors
        .delete_where(&[Filter::order_by(Author::NAME, SortOrder::Asc)], false)
        .await
        .unwrap_err();
    assert!(matches!(refused, RepositoryError::Refused(_)));
    assert_eq!(
        authors.count(&[]).await.unwrap(),
        2,
        "nothing deleted by a refused delete_where"
    );
    let gone = authors
        .delete_where(&[Filter::eq(Author::NAME, "C")], false)
        .await
        .unwrap();
    assert_eq!(
        gone.iter().map(|a| a.name.as_str()).collect::<Vec<_>>(),
        ["C"]
    );
    let gone = authors.delete_where(&[], true).await.unwrap();
    assert_eq!(gone.len(), 1);
    session.commit().await.unwrap();
    assert_eq!(db.probe().count("author").await, 0);
    drop(session);
    alchemy.close().await;
}

async fn auto_increment_keys(db: TestDb) {
    let alchemy = open(&db).await;
    let session = alchemy.session("default").unwrap();
    let counters = repo::<Counter>(&session);
    let one = counters.create(counter("one", 1)).await.unwrap();
    assert!(one.id > 0);
    let many = counters
        .create_many((0..25).map(|i| counter(&format!("c{i:02}"), i)).collect())
        .await
        .unwrap();
    for (i, row) in many.iter().enumerate() {
        let stored = counters.get(row.id).await.unwrap();
        assert_eq!(
            stored.code,
            format!("c{i:02}"),
            "the key read back belongs to its row"
        );
    }
    let mut ids: Vec<i64> = many.iter().map(|c| c.id).collect();
    ids.dedup();
    assert_eq!(ids.len(), 25);
    session.commit().await.unwrap();
    drop(session);
    alchemy.close().await;
}

async fn list_and_count_totals(db: TestDb) {
    let alchemy = open(&db).await;
    let session = alchemy.session("default").unwrap();
    let authors = repo::<Author>(&session);
    let (items, total) = authors
        .list_and_count(&[Filter::limit_offset(5, 0)])
        .await
        .unwrap();
    assert_eq!((items.len(), total), (0, 0));
    authors
        .create_many((0..12).map(|i| author(&format!("Author {i:02}"))).collect())
        .await
        .unwrap();
    let page = |limit, offset| {
        vec![
            Filter::order_by(Author::NAME, SortOrder::Asc),
            Filter::limit_offset(limit, offset),
        ]
    };
    let (items, total) = authors.list_and_count(&page(5, 10)).await.unwrap();
    assert_eq!((items.len(), total), (2, 12));
    assert_eq!(items[0].name, "Author 10");
    let (items, total) = authors.list_and_count(&page(5, 100)).await.unwrap();
    assert_eq!(
        (items.len(), total),
        (0, 12),
        "the total is right on a page past the end"
    );
    let (items, total) = authors
        .list_and_count(&[
            Filter::search([Author::NAME], "Author 0", false),
            Filter::limit_offset(3, 0),
        ])
        .await
        .unwrap();
    assert_eq!((items.len(), total), (3, 10));
    let page = authors.paginate(&page(4, 4)).await.unwrap();
    assert_eq!(
        (page.limit, page.offset, page.total, page.items.len()),
        (4, 4, 12, 4)
    );
    assert_eq!(
        serde_json::to_value(page.map(|a| a.name)).unwrap()["total"],
        12
    );
    drop(session);
    alchemy.close().await;
}

/// Paging through rows that tie on the sort key returns each row exactly once.
async fn ordering_is_stable(db: TestDb) {
    let alchemy = open(&db).await;
    let session = alchemy.session("default").unwrap();
    let authors = repo::<Author>(&session);
    let created = authors
        .create_many(
            (0..23)
                .map(|i| Author {
                    rank: i % 3,
                    ..author(&format!("n{i}"))
                })
                .collect(),
        )
        .await
        .unwrap();
    for order in [SortOrder::Asc, SortOrder::Desc] {
        let mut seen = Vec::new();
        for page in 0..5 {
            let filters = [
                Filter::order_by(Author::RANK, order),
                Filter::limit_offset(5, page * 5),
            ];
            seen.extend(
                authors
                    .list(&filters)
                    .await
                    .unwrap()
                    .into_iter()
                    .map(|a| a.id),
            );
        }
        let mut sorted = seen.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(
            (seen.len(), sorted.len()),
            (created.len(), created.len()),
            "{order:?}: every row once"
        );
    }
    drop(session);
    alchemy.close().await;
}

async fn filters(db: TestDb) {
    let alchemy = open(&db).await;
    let session = alchemy.session("default").unwrap();
    let authors = repo::<Author>(&session);
    let day = |d| NaiveDate::from_ymd_opt(2000, 1, d).unwrap();
    let rows = [
        ("Alpha 100% real", Some(day(1)), 1),
        ("alpha_beta", Some(day(2)), 2),
        ("BETA", Some(day(3)), 3),
        ("gamma beta", None, 4),
        ("Delta", Some(day(5)), 5),
        ("x_y%z", None, 6),
    ];
    let mut created = Vec::new();
    for (name, dob, rank) in rows {
        created.push(
            authors
                .create(Author {
                    dob,
                    rank,
                    ..author(name)
                })
                .await
                .unwrap(),
        );
    }
    let names = |filters: Vec<Filter<Author>>| {
        let authors = authors.clone();
        async move {
            let mut f = filters;
            f.push(Filter::order_by(Author::RANK, SortOrder::Asc));
            authors
                .list(&f)
                .await
                .unwrap()
                .into_iter()
                .map(|a| a.name)
                .collect::<Vec<_>>()
        }
    };

    // collections
    assert_eq!(
        names(vec![Filter::collection(
            Author::RANK,
            Some(Vec::<i32>::new())
        )])
        .await,
        Vec::<String>::new(),
        "empty list: no rows"
    );
    assert_eq!(
        names(vec![Filter::collection(Author::RANK, None::<Vec<i32>>)])
            .await
            .len(),
        6,
        "None: no-op"
    );
    assert_eq!(
        names(vec![Filter::collection(Author::RANK, Some([2, 4]))]).await,
        ["alpha_beta", "gamma beta"]
    );
    assert_eq!(
        names(vec![Filter::not_in_collection(
            Author::RANK,
            Some([1, 2, 3])
        )])
        .await,
        ["gamma beta", "Delta", "x_y%z"]
    );
    assert_eq!(
        names(vec![Filter::not_in_collection(
            Author::RANK,
            Some(Vec::<i32>::new())
        )])
        .await
        .len(),
        6,
        "empty NOT IN: no-op"
    );
    assert_eq!(
        names(vec![Filter::not_in_collection(
            Author::RANK,
            None::<Vec<i32>>
        )])
        .await
        .len(),
        6
    );

    // search: OR across fields, wildcards literal, case
    assert_eq!(
        names(vec![Filter::search([Author::NAME], "beta", false)]).await,
        ["alpha_beta", "gamma beta"]
    );
    assert_eq!(
        names(vec![Filter::search([Author::NAME], "beta", true)]).await,
        ["alpha_beta", "BETA", "gamma beta"]
    );
    assert_eq!(
        names(vec![Filter::search([Author::NAME], "100%", false)]).await,
        ["Alpha 100% real"],
        "% is literal"
    );
    assert_eq!(
        names(vec![Filter::search([Author::NAME], "_", false)]).await,
        ["alpha_beta", "x_y%z"],
        "_ is literal"
    );
    assert_eq!(
        names(vec![Filter::search([Author::NAME], "a_b", true)]).await,
        ["alpha_beta"]
    );
    assert_eq!(
        names(vec![Filter::not_in_search([Author::NAME], "beta", true)]).await,
        ["Alpha 100% real", "Delta", "x_y%z"]
    );

    // comparisons
    assert_eq!(names(vec![Filter::eq(Author::RANK, 3)]).await, ["BETA"]);
    assert_eq!(
        names(vec![
            Filter::ne(Author::RANK, 3),
            Filter::lt(Author::RANK, 5)
        ])
        .await
        .len(),
        3
    );
    assert_eq!(
        names(vec![Filter::gt(Author::RANK, 4)]).await,
        ["Delta", "x_y%z"]
    );
    assert_eq!(
        names(vec![
            Filter::ge(Author::RANK, 4),
            Filter::le(Author::RANK, 5)
        ])
        .await,
        ["gamma beta", "Delta"]
    );
    assert_eq!(
        names(vec![Filter::is_in(Author::RANK, [1, 6])]).await,
        ["Alpha 100% real", "x_y%z"]
    );
    assert_eq!(
        names(vec![Filter::is_in(Author::RANK, Vec::<i32>::new())])
            .await
            .len(),
        0
    );
    assert_eq!(
        names(vec![Filter::not_in(Author::RANK, [1, 2, 3, 4, 5])]).await,
        ["x_y%z"]
    );
    assert_eq!(
        names(vec![Filter::comparison(
            Author::NAME,
            Op::StartsWith,
            "alpha"
        )])
        .await,
        ["alpha_beta"],
        "case-sensitive prefix"
    );
    assert_eq!(
        names(vec![Filter::comparison(
            Author::NAME,
            Op::IStartsWith,
            "alpha"
        )])
        .await,
        ["Alpha 100% real", "alpha_beta"]
    );
    assert_eq!(
        names(vec![Filter::comparison(Author::NAME, Op::EndsWith, "beta")]).await,
        ["alpha_beta", "gamma beta"]
    );
    assert_eq!(
        names(vec![Filter::comparison(
            Author::NAME,
            Op::IEndsWith,
            "BETA"
        )])
        .await,
        ["alpha_beta", "BETA", "gamma beta"],
        "iendswith matches suffixes (the original matched prefixes)"
    );
    assert_eq!(
        names(vec![Filter::comparison(
            Author::NAME,
            Op::IEndsWith,
            "alpha"
        )])
        .await,
        Vec::<String>::new()
    );
    assert_eq!(
        names(vec![Filter::comparison(Author::NAME, Op::Like, "%a_b%")]).await,
        ["alpha_beta", "gamma beta"],
        "a user pattern keeps its wildcards (`_` matches the space of `a b`)"
    );
    assert_eq!(
        names(vec![Filter::comparison(Author::NAME, Op::Like, "b%")]).await,
        Vec::<String>::new(),
        "like is case-sensitive"
    );
    assert_eq!(
        names(vec![Filter::comparison(Author::NAME, Op::ILike, "b%")]).await,
        ["BETA"]
    );
    let lone_escape = authors
        .list(&[Filter::comparison(Author::NAME, Op::Like, "a\\")])
        .await
        .unwrap_err();
    assert!(
        matches!(lone_escape, RepositoryError::InvalidFilter(_)),
        "a pattern ending in `\\` is refused: {lone_escape:?}"
    );
    let no_op_or = Filter::or([
        Filter::collection(Author::RANK, None::<Vec<i32>>),
        Filter::eq(Author::RANK, 1),
    ]);
    assert_eq!(
        names(vec![no_op_or]).await.len(),
        6,
        "a no-op member makes an `or` restrict nothing"
    );

    // dates: exclusive vs inclusive
    assert_eq!(
        names(vec![Filter::before_after(
            Author::DOB,
            Some(day(3)),
            Some(day(1))
        )])
        .await,
        ["alpha_beta"]
    );
    assert_eq!(
        names(vec![Filter::on_before_after(
            Author::DOB,
            Some(day(3)),
            Some(day(1))
        )])
        .await,
        ["Alpha 100% real", "alpha_beta", "BETA"]
    );
    assert_eq!(
        names(vec![Filter::before_after(Author::DOB, None, Some(day(3)))]).await,
        ["Delta"]
    );
    assert_eq!(
        names(vec![Filter::on_before_after(
            Author::DOB,
            None,
            Some(day(3))
        )])
        .await,
        ["BETA", "Delta"]
    );
    let t = created[2].created_at;
    assert_eq!(
        names(vec![Filter::before_after(
            Author::CREATED_AT,
            Some(t),
            None
        )])
        .await,
        ["Alpha 100% real", "alpha_beta"]
    );
    assert_eq!(
        names(vec![Filter::on_before_after(
            Author::CREATED_AT,
            Some(t),
            None
        )])
        .await,
        ["Alpha 100% real", "alpha_beta", "BETA"]
    );
    assert_eq!(
        names(vec![Filter::on_before_after(
            Author::CREATED_AT,
            Some(t + TimeDelta::days(1)),
            Some(t)
        )])
        .await
        .len(),
        4
    );

    // null, groups
    assert_eq!(
        names(vec![Filter::is_null(Author::DOB)]).await,
        ["gamma beta", "x_y%z"]
    );
    assert_eq!(names(vec![Filter::not_null(Author::DOB)]).await.len(), 4);
    assert_eq!(
        names(vec![Filter::or([
            Filter::eq(Author::RANK, 1),
            Filter::eq(Author::RANK, 5)
        ])])
        .await,
        ["Alpha 100% real", "Delta"]
    );
    assert_eq!(
        names(vec![Filter::and([
            Filter::gt(Author::RANK, 1),
            Filter::is_null(Author::DOB)
        ])])
        .await,
        ["gamma beta", "x_y%z"]
    );
    assert_eq!(
        names(vec![Filter::or(Vec::<Filter<Author>>::new())])
            .await
            .len(),
        0
    );

    // from strings: checked before any SQL
    assert!(Filter::<Author>::parse_comparison("password", "eq", "x").is_err());
    assert!(Filter::<Author>::parse_comparison("rank", "eq", "seven").is_err());
    assert!(Filter::<Author>::parse_comparison("rank", "sounds_like", "7").is_err());
    assert!(
        Filter::<Author>::parse_comparison("rank", "ilike", "7").is_err(),
        "textual operators need a text column"
    );
    assert_eq!(
        names(vec![Filter::parse_comparison("rank", "in", "2,3").unwrap()]).await,
        ["alpha_beta", "BETA"]
    );
    assert_eq!(
        names(vec![
            Filter::parse_comparison("name", "iendswith", "ETA").unwrap()
        ])
        .await
        .len(),
        3
    );
    assert_eq!(
        names(vec![Filter::parse_range(
            "dob",
            Some("2000-01-02"),
            None,
            true
        )
        .unwrap()])
        .await
        .len(),
        2
    );
    // Another model's column, named by string, is refused when the filter is built.
    let err = Filter::<Author>::search_names(&["title"], "x", true).unwrap_err();
    assert!(
        err.message.contains("`title` is not a column of Author"),
        "{err}"
    );
    drop(session);
    alchemy.close().await;
}

async fn upserts(db: TestDb) {
    let alchemy = open(&db).await;
    let session = alchemy.session("default").unwrap();
    let counters = repo::<Counter>(&session);
    let by_code: [ColumnRef<Counter>; 1] = [Counter::CODE.into()];

    let first = counters.upsert(counter("page", 1), &by_code).await.unwrap();
    assert!(first.id > 0);
    let again = counters.upsert(counter("page", 5), &by_code).await.unwrap();
    assert_eq!(
        (again.id, again.hits, again.created_at),
        (first.id, 5, first.created_at),
        "the existing row was updated"
    );
    assert!(
        again.updated_at > first.updated_at,
        "a real change moves updated_at"
    );
    let same = counters.upsert(counter("page", 5), &by_code).await.unwrap();
    assert_eq!(
        same.updated_at, again.updated_at,
        "an identical upsert leaves updated_at"
    );
    assert_eq!(counters.count(&[]).await.unwrap(), 1);

    let many = counters
        .upsert_many(
            vec![counter("page", 6), counter("home", 1), counter("about", 2)],
            &by_code,
        )
        .await
        .unwrap();
    assert_eq!(
        many.iter()
            .map(|c| (c.code.as_str(), c.hits))
            .collect::<Vec<_>>(),
        [("page", 6), ("home", 1), ("about", 2)]
    );
    assert_eq!(many[0].id, first.id);
    assert_eq!(counters.count(&[]).await.unwrap(), 3);

    let (row, created) = counters
        .get_or_upsert(counter("new", 1), &by_code, true)
        .await
        .unwrap();
    assert!(created);
    let (row2, created) = counters
        .get_or_upsert(
            Counter {
                note: Some("n".into()),
                ..counter("new", 9)
            },
            &by_code,
            false,
        )
        .await
        .unwrap();
    assert!(!created);
    assert_eq!(
        (row2.id, row2.hits, row2.note.clone()),
        (row.id, 1, None),
        "upsert = false leaves the row"
    );
    let (row3, created) = counters
        .get_or_upsert(
            Counter {
                note: Some("n".into()),
                ..counter("new", 9)
            },
            &by_code,
            true,
        )
        .await
        .unwrap();
    assert!(!created);
    assert_eq!(
        (row3.id, row3.hits, row3.note.as_deref()),
        (row.id, 9, Some("n"))
    );

    let (updated, changed) = counters
        .get_and_update(
            &[Filter::eq(Counter::CODE, "home")],
            Changes::new().set(Counter::HITS, 100),
        )
        .await
        .unwrap();
    assert!(changed);
    assert_eq!(updated.hits, 100);
    let (_, changed) = counters
        .get_and_update(
            &[Filter::eq(Counter::CODE, "home")],
            Changes::new().set(Counter::HITS, 100),
        )
        .await
        .unwrap();
    assert!(!changed);
    let missing = counters
        .get_and_update(&[Filter::eq(Counter::CODE, "nope")], Changes::new())
        .await
        .unwrap_err();
    assert!(matches!(missing, RepositoryError::NotFound { .. }));
    session.commit().await.unwrap();
    assert_eq!(db.probe().count("counter").await, 4);
    drop(session);
    alchemy.close().await;
}

/// 70,000 rows inserted and deleted: statements are chunked under the bind-parameter
/// limits (SQLite 32,766; PostgreSQL and MySQL 65,535).
async fn chunking_past_parameter_limits(db: TestDb) {
    let alchemy = open(&db).await;
    let session = alchemy.session("default").unwrap();
    let bulk = repo::<Bulk>(&session);
    const N: i32 = 70_000;
    let rows = bulk
        .create_many(
            (0..N)
                .map(|n| Bulk {
                    id: 0,
                    label: format!("row {n}"),
                    n,
                })
                .collect(),
        )
        .await
        .unwrap();
    assert_eq!(rows.len(), N as usize);
    assert_eq!(bulk.count(&[]).await.unwrap(), N as u64);
    let sample = bulk.get(rows[54_321].id).await.unwrap();
    assert_eq!((sample.n, sample.label.as_str()), (54_321, "row 54321"));
    let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
    session.commit().await.unwrap();
    let deleted = bulk.delete_many(ids).await.unwrap();
    assert_eq!(deleted.len(), N as usize);
    assert_eq!(bulk.count(&[]).await.unwrap(), 0);
    session.commit().await.unwrap();
    assert_eq!(db.probe().count("bulk").await, 0);
    drop(session);
    alchemy.close().await;
}

async fn related_rows_without_n_plus_one(db: TestDb) {
    let alchemy = open(&db).await;
    let session = alchemy.session("default").unwrap();
    let authors = repo::<Author>(&session);
    let books = repo::<Book>(&session);
    let a = authors.create(author("A")).await.unwrap();
    let b = authors.create(author("B")).await.unwrap();
    let c = authors.create(author("C")).await.unwrap();
    for (title, owner) in [("a1", &a), ("c1", &c), ("a2", &a)] {
        books
            .create(Book {
                id: Uuid::nil(),
                title: title.into(),
                author_id: owner.id,
            })
            .await
            .unwrap();
    }
    let page = authors
        .list(&[Filter::order_by(Author::NAME, SortOrder::Asc)])
        .await
        .unwrap();
    let children = authors.children(&page, Book::AUTHOR_ID).await.unwrap();
    let titles: Vec<Vec<&str>> = children
        .iter()
        .map(|bs| bs.iter().map(|b| b.title.as_str()).collect())
        .collect();
    let mut a_titles = titles[0].clone();
    a_titles.sort();
    assert_eq!(
        (a_titles, titles[1].clone(), titles[2].clone()),
        (vec!["a1", "a2"], vec![], vec!["c1"])
    );
    let _ = b;
    drop(session);
    alchemy.close().await;
}

async fn keyset_pagination(db: TestDb) {
    let alchemy = open(&db).await;
    let session = alchemy.session("default").unwrap();
    let authors = repo::<Author>(&session);
    authors
        .create_many(
            (0..17)
                .map(|i| Author {
                    rank: i % 4,
                    ..author(&format!("k{i:02}"))
                })
                .collect(),
        )
        .await
        .unwrap();
    let codec = alchemy.cursor_codec();
    let mut keyset = Keyset::<Author>::new(5).order_by(Author::RANK, SortOrder::Desc);
    let mut seen = Vec::new();
    let mut pages = 0;
    loop {
        let (rows, more) = authors.list_keyset(&[], &keyset).await.unwrap();
        pages += 1;
        seen.extend(rows.iter().map(|a| (a.rank, a.id)));
        if !more {
            break;
        }
        let cursor = codec.encode(&keyset, rows.last().unwrap());
        keyset = keyset
            .clone()
            .after(Some(codec.decode(&keyset, &cursor).unwrap()));
        assert!(
            codec.decode(&Keyset::<Author>::new(5), &cursor).is_err(),
            "a cursor is bound to its ordering"
        );
        let mut tampered = cursor.into_bytes();
        tampered[3] ^= 1;
        assert!(
            codec
                .decode(&keyset, &String::from_utf8_lossy(&tampered))
                .is_err(),
            "tampering is detected"
        );
    }
    assert_eq!(pages, 4);
    let mut sorted = seen.clone();
    sorted.sort_by(|x, y| y.0.cmp(&x.0).then(y.1.cmp(&x.1)));
    assert_eq!(
        seen, sorted,
        "rank desc, then the key in the same direction"
    );
    let offset_order: Vec<(i32, Uuid)> = authors
        .list(&[rocket_alchemy::filters::Filter::order_by(
            Author::RANK,
            SortOrder::Desc,
        )])
        .await
        .unwrap()
        .into_iter()
        .map(|a| (a.rank, a.id))
        .collect();
    assert_eq!(offset_order, seen, "offset and keyset listings order alike");
    assert_eq!(seen.len(), 17);
    drop(session);
    alchemy.close().await;
}

async fn errors_map_to_statuses(db: TestDb) {
    let alchemy = open(&db).await;
    let session = alchemy.session("default").unwrap();
    let books = repo::<Book>(&session);
    let fk = books
        .create(Book {
            id: Uuid::nil(),
            title: "orphan".into(),
            author_id: Uuid::new_v4(),
        })
        .await
        .unwrap_err();
    assert!(matches!(fk, RepositoryError::ForeignKey { .. }), "{fk}");
    assert_eq!(
        (fk.status().code, fk.detail().as_str()),
        (409, "A foreign key is missing or invalid")
    );
    session.rollback().await.unwrap();
    let bad = Filter::<Author>::order_by_name("nope", SortOrder::Asc).unwrap_err();
    let err: RepositoryError = bad.into();
    assert_eq!(err.status().code, 400);
    assert!(err.detail().contains("nope"));
    // A lazy bind on an unreachable server: 503, not an integrity error.
    #[cfg(feature = "postgres")]
    {
        let figment = db.figment("[databases.default]\ncreate_all = true\n[databases.down]\nurl = \"postgres://x:pw@127.0.0.1:9/x\"\nlazy = true\nconnect_timeout = 1");
        let two = Alchemy::open(&figment, &[Author::TABLE]).await.unwrap();
        let down = two.session("down").unwrap();
        let err = Repository::<Counter>::on(&down).unwrap_err();
        assert!(
            matches!(err, RepositoryError::WrongBind { .. }) && err.status().code == 500,
            "a repository refuses a session of another bind"
        );
        let down_authors = Repository::<Author>::on(&two.session("default").unwrap())
            .unwrap()
            .count(&[])
            .await;
        assert!(down_authors.is_ok());
        #[derive(Model)]
        #[model(bind = Down)]
        struct Remote {
            id: i64,
        }
        #[derive(rocket_alchemy::Bind)]
        #[bind("down")]
        struct Down;
        let err = Repository::<Remote>::on(&down)
            .unwrap()
            .count(&[])
            .await
            .unwrap_err();
        assert!(
            matches!(err, RepositoryError::Unavailable { .. }),
            "{err:?}"
        );
        assert_eq!(
            (err.status().code, err.detail().as_str()),
            (503, "The database is unavailable")
        );
        two.close().await;
    }
    drop(session);
    alchemy.close().await;
}

backend_tests!(
    crud,
    auto_increment_keys,
    list_and_count_totals,
    ordering_is_stable,
    filters,
    upserts,
    chunking_past_parameter_limits,
    related_rows_without_n_plus_one,
    keyset_pagination,
    errors_map_to_statuses,
);
