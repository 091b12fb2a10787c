//! A catalog schema using every supported column type and every model attribute.

use chrono::{DateTime, NaiveDate, Utc};
use rocket_alchemy::model::{AuditColumn, ColumnType, Literal, PrimaryKey, ReferentialAction};
use rocket_alchemy::{sea_query, Bind, DefaultBind, Model, ModelExt};
use uuid::Uuid;

/// The database holding the catalog.
#[derive(Bind)]
#[bind("catalog")]
pub struct Catalog;

/// Auto-increment key, renamed table.
#[derive(Model, Debug, Clone)]
#[model(table = "publishers", bind = Catalog)]
pub struct Publisher {
    #[model(primary_key = "auto_increment")]
    pub id: i64,
    #[model(max_length = 120, unique)]
    pub name: String,
}

/// Implicit `id: Uuid` key (UUID v4) and a self-reference.
#[derive(Model, Debug, Clone)]
#[model(bind = Catalog)]
pub struct Category {
    pub id: Uuid,
    #[model(max_length = 60)]
    pub label: String,
    #[model(references = Self, on_delete = "set_null", on_update = "cascade")]
    pub parent_id: Option<Uuid>,
}

/// Natural string key.
#[derive(Model, Debug, Clone)]
#[model(bind = Catalog)]
pub struct Tag {
    #[model(primary_key = "natural", max_length = 40)]
    pub slug: String,
}

/// Bare `primary_key` on an integer field not named `id`, on the default bind.
#[derive(Model, Debug, Clone)]
pub struct Shelf {
    #[model(primary_key)]
    pub code: i32,
    pub floor: Option<i16>,
}

/// Every column type, nullable and not, with defaults, foreign keys and audit columns.
#[derive(Model, Debug, Clone)]
#[model(bind = Catalog)]
pub struct BookEdition {
    #[model(primary_key = "uuid_v7")]
    pub id: Uuid,
    #[model(max_length = 200, index)]
    pub title: String,
    pub subtitle: Option<String>,
    #[model(default = true)]
    pub in_print: bool,
    pub signed: Option<bool>,
    #[model(default = 1)]
    pub volume: i16,
    #[model(default = -1)]
    pub pages: i32,
    pub chapters: Option<i32>,
    #[model(default = 0)]
    pub copies_sold: i64,
    pub rank: Option<i64>,
    #[model(default = 1.5)]
    pub weight_kg: f32,
    pub width_cm: Option<f32>,
    #[model(default = -0.5)]
    pub discount: f64,
    #[model(default = 20)]
    pub price: f64,
    pub rating: Option<f64>,
    #[model(default = "en")]
    pub language: String,
    pub cover: Vec<u8>,
    pub thumbnail: Option<Vec<u8>>,
    pub published: NaiveDate,
    pub out_of_print: Option<NaiveDate>,
    pub metadata: serde_json::Value,
    pub extra: Option<serde_json::Value>,
    pub last_sold_at: Option<DateTime<Utc>>,
    #[model(column = "isbn_13", unique)]
    pub isbn: Option<String>,
    #[model(references = Publisher, on_delete = "restrict", on_update = "no_action")]
    pub publisher_id: i64,
    #[model(references = Category, on_delete = "set_null", on_update = "set_null")]
    pub category_id: Option<Uuid>,
    #[model(references = Tag, on_delete = "cascade")]
    pub tag: String,
    #[model(references = Shelf)]
    pub shelf_code: Option<i32>,
    pub translation_of: Option<Uuid>,
    #[model(created_at)]
    pub inserted: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    #[model(skip)]
    pub search_terms: Vec<String>,
}

fn main() {
    // Table names: explicit, or the struct name in snake_case.
    assert_eq!(Publisher::TABLE.name, "publishers");
    assert_eq!(BookEdition::TABLE.name, "book_edition");
    assert_eq!(BookEdition::TABLE.model, "BookEdition");

    // Binds.
    assert_eq!(<Catalog as Bind>::KEY, "catalog");
    assert_eq!(BookEdition::TABLE.bind, "catalog");
    assert_eq!(Shelf::TABLE.bind, <DefaultBind as Bind>::KEY);

    // Primary keys of every kind.
    assert_eq!(
        Publisher::TABLE.primary_key().primary_key,
        Some(PrimaryKey::AutoIncrement)
    );
    assert_eq!(
        Category::TABLE.primary_key().primary_key,
        Some(PrimaryKey::UuidV4)
    );
    assert_eq!(Tag::TABLE.primary_key().name, "slug");
    assert_eq!(
        Tag::TABLE.primary_key().primary_key,
        Some(PrimaryKey::Natural)
    );
    assert_eq!(Shelf::TABLE.primary_key().name, "code");
    assert_eq!(
        Shelf::TABLE.primary_key().primary_key,
        Some(PrimaryKey::AutoIncrement)
    );
    let table = BookEdition::TABLE;
    assert_eq!(table.primary_key().name, "id");
    assert_eq!(table.primary_key().primary_key, Some(PrimaryKey::UuidV7));

    // Columns: every field but the skipped one, in field order.
    assert_eq!(table.columns.len(), 31);
    assert!(table.column("search_terms").is_none());
    assert_eq!(table.columns.last().unwrap().name, "updated_at");

    // Types and nullability.
    let ty = |name: &str| table.column(name).unwrap().ty;
    assert_eq!(ty("title"), ColumnType::String(Some(200)));
    assert_eq!(ty("language"), ColumnType::String(None));
    assert_eq!(ty("in_print"), ColumnType::Bool);
    assert_eq!(ty("volume"), ColumnType::SmallInt);
    assert_eq!(ty("pages"), ColumnType::Integer);
    assert_eq!(ty("copies_sold"), ColumnType::BigInt);
    assert_eq!(ty("weight_kg"), ColumnType::Float);
    assert_eq!(ty("discount"), ColumnType::Double);
    assert_eq!(ty("cover"), ColumnType::Bytes);
    assert_eq!(ty("translation_of"), ColumnType::Uuid);
    assert_eq!(ty("published"), ColumnType::Date);
    assert_eq!(ty("last_sold_at"), ColumnType::DateTimeUtc);
    assert_eq!(ty("metadata"), ColumnType::Json);
    assert!(!table.column("cover").unwrap().nullable);
    assert!(table.column("thumbnail").unwrap().nullable);
    assert!(table.column("extra").unwrap().nullable);

    // Constraints and renames.
    let isbn = table.column("isbn_13").unwrap();
    assert_eq!(isbn.field, "isbn");
    assert!(isbn.unique && isbn.nullable);
    assert!(table.column("title").unwrap().index);
    assert!(!table.column("title").unwrap().unique);
    assert!(Publisher::TABLE.column("name").unwrap().unique);

    // Defaults (an integer default on a float column becomes a float).
    let default = |name: &str| table.column(name).unwrap().default;
    assert_eq!(default("in_print"), Some(Literal::Bool(true)));
    assert_eq!(default("volume"), Some(Literal::Int(1)));
    assert_eq!(default("pages"), Some(Literal::Int(-1)));
    assert_eq!(default("copies_sold"), Some(Literal::Int(0)));
    assert_eq!(default("weight_kg"), Some(Literal::Float(1.5)));
    assert_eq!(default("discount"), Some(Literal::Float(-0.5)));
    assert_eq!(default("price"), Some(Literal::Float(20.0)));
    assert_eq!(default("language"), Some(Literal::Str("en")));
    assert_eq!(default("title"), None);

    // Foreign keys: targets, actions, implied indexes.
    let publisher = table.column("publisher_id").unwrap();
    let fk = publisher.foreign_key.unwrap();
    assert_eq!(fk.table().name, "publishers");
    assert_eq!(fk.on_delete, ReferentialAction::Restrict);
    assert_eq!(fk.on_update, ReferentialAction::NoAction);
    assert!(publisher.index);
    let category = table.column("category_id").unwrap().foreign_key.unwrap();
    assert_eq!(category.table().name, "category");
    assert_eq!(category.on_delete, ReferentialAction::SetNull);
    assert_eq!(category.on_update, ReferentialAction::SetNull);
    let tag = table.column("tag").unwrap().foreign_key.unwrap();
    assert_eq!(tag.table().name, "tag");
    assert_eq!(tag.on_delete, ReferentialAction::Cascade);
    let shelf = table.column("shelf_code").unwrap().foreign_key.unwrap();
    assert_eq!(shelf.table().name, "shelf");
    assert_eq!(shelf.on_delete, ReferentialAction::NoAction);
    assert!(table
        .column("translation_of")
        .unwrap()
        .foreign_key
        .is_none());
    let mut referenced: Vec<&str> = table.references().map(|t| t.name).collect();
    referenced.sort_unstable();
    assert_eq!(referenced, ["category", "publishers", "shelf", "tag"]);

    // Self-reference.
    let parent = Category::TABLE
        .column("parent_id")
        .unwrap()
        .foreign_key
        .unwrap();
    assert_eq!(parent.table().name, "category");
    assert_eq!(parent.on_delete, ReferentialAction::SetNull);
    assert_eq!(parent.on_update, ReferentialAction::Cascade);
    assert_eq!(Category::TABLE.references().count(), 0);

    // Audit columns: explicit `created_at`, and `updated_at` by name.
    assert_eq!(
        table.audit_column(AuditColumn::CreatedAt).unwrap().name,
        "inserted"
    );
    assert_eq!(
        table.audit_column(AuditColumn::UpdatedAt).unwrap().name,
        "updated_at"
    );
    assert!(Publisher::TABLE
        .audit_column(AuditColumn::CreatedAt)
        .is_none());

    // The generated methods.
    let mut book = BookEdition {
        id: Uuid::nil(),
        title: "The Dispossessed".into(),
        subtitle: Some("An Ambiguous Utopia".into()),
        in_print: true,
        signed: None,
        volume: 1,
        pages: 387,
        chapters: Some(13),
        copies_sold: 0,
        rank: None,
        weight_kg: 0.4,
        width_cm: None,
        discount: 0.0,
        price: 9.99,
        rating: Some(4.5),
        language: "en".into(),
        cover: vec![0x89, 0x50, 0x4e, 0x47],
        thumbnail: None,
        published: NaiveDate::from_ymd_opt(1974, 5, 1).unwrap(),
        out_of_print: None,
        metadata: serde_json::json!({ "awards": ["Hugo", "Nebula"] }),
        extra: None,
        last_sold_at: None,
        isbn: Some("9780060512750".into()),
        publisher_id: 7,
        category_id: None,
        tag: "science-fiction".into(),
        shelf_code: Some(12),
        translation_of: None,
        inserted: DateTime::UNIX_EPOCH,
        updated_at: DateTime::UNIX_EPOCH,
        search_terms: vec!["anarres".into()],
    };
    assert_eq!(book.values().len(), table.columns.len());
    let now = Utc::now();
    book.prepare_insert(now);
    assert_eq!(book.id.get_version_num(), 7);
    assert_eq!(book.inserted, now);
    assert_eq!(book.updated_at, now);
    let later = now + chrono::Duration::seconds(5);
    book.touch(later);
    assert_eq!(book.inserted, now);
    assert_eq!(book.updated_at, later);
    assert_eq!(book.primary_key_value(), sea_query::Value::from(book.id));

    let mut publisher = Publisher {
        id: 0,
        name: "Harper & Row".into(),
    };
    publisher.set_primary_key(42_i64.into()).unwrap();
    assert_eq!(publisher.id, 42);
    #[cfg(feature = "sqlite")]
    {
        sqlite_statements(&publisher);
    }
}

#[cfg(feature = "sqlite")]
fn sqlite_statements(publisher: &Publisher) {
    // The auto-increment key is left to the database.
    let insert = publisher
        .insert_statement()
        .to_string(sea_query::SqliteQueryBuilder);
    assert_eq!(
        insert,
        r#"INSERT INTO "publishers" ("name") VALUES ('Harper & Row')"#
    );
    let select = BookEdition::select_statement().to_string(sea_query::SqliteQueryBuilder);
    assert!(select.contains(r#""book_edition"."isbn_13""#));
    assert!(!select.contains("search_terms"));
}
