//! Expansion of `#[derive(Model)]`.

use proc_macro2::TokenStream;
use quote::{quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{Data, DeriveInput, Fields, GenericArgument, Lit, PathArguments, Type};

use crate::attr::{self, FieldAttrs};

/// The column kind of a Rust field type.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Bool,
    SmallInt,
    Integer,
    BigInt,
    Float,
    Double,
    String,
    Bytes,
    Uuid,
    Date,
    DateTimeUtc,
    Json,
}

const SUPPORTED: &str = "supported column types: bool, i16, i32, i64, f32, f64, String, Vec<u8>, \
    uuid::Uuid, chrono::NaiveDate, chrono::DateTime<Utc>, serde_json::Value, and Option of these";

fn last_segment(ty: &Type) -> Option<&syn::PathSegment> {
    match ty {
        Type::Path(p) if p.qself.is_none() => p.path.segments.last(),
        _ => None,
    }
}

fn single_arg(segment: &syn::PathSegment) -> Option<&Type> {
    match &segment.arguments {
        PathArguments::AngleBracketed(args) if args.args.len() == 1 => match &args.args[0] {
            GenericArgument::Type(t) => Some(t),
            _ => None,
        },
        _ => None,
    }
}

/// Splits `Option<T>` and classifies `T`.
fn classify(ty: &Type) -> syn::Result<(Kind, bool)> {
    let unsupported = || {
        syn::Error::new_spanned(
            ty,
            format!("unsupported field type for a model column; {SUPPORTED}"),
        )
    };
    let segment = last_segment(ty).ok_or_else(unsupported)?;
    if segment.ident == "Option" {
        let inner = single_arg(segment).ok_or_else(unsupported)?;
        if last_segment(inner).is_some_and(|s| s.ident == "Option") {
            return Err(syn::Error::new_spanned(
                ty,
                "nested Option is not a column type",
            ));
        }
        return classify(inner).map(|(kind, _)| (kind, true));
    }
    let name = segment.ident.to_string();
    let kind = match name.as_str() {
        "bool" => Kind::Bool,
        "i16" => Kind::SmallInt,
        "i32" => Kind::Integer,
        "i64" => Kind::BigInt,
        "f32" => Kind::Float,
        "f64" => Kind::Double,
        "String" => Kind::String,
        "Uuid" => Kind::Uuid,
        "NaiveDate" => Kind::Date,
        "Value" | "JsonValue" => Kind::Json,
        "Vec" => match single_arg(segment).and_then(last_segment) {
            Some(s) if s.ident == "u8" => Kind::Bytes,
            _ => return Err(unsupported()),
        },
        "DateTime" => match single_arg(segment).and_then(last_segment) {
            Some(s) if s.ident == "Utc" => Kind::DateTimeUtc,
            _ => {
                return Err(syn::Error::new_spanned(
                    ty,
                    "only DateTime<Utc> is supported: timestamps are stored in UTC",
                ))
            }
        },
        _ => return Err(unsupported()),
    };
    Ok((kind, false))
}

fn snake_case(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 4);
    let chars: Vec<char> = name.chars().collect();
    for (i, &c) in chars.iter().enumerate() {
        if c.is_uppercase() {
            let prev_lower =
                i > 0 && (chars[i - 1].is_lowercase() || chars[i - 1].is_ascii_digit());
            let next_lower = chars.get(i + 1).is_some_and(|n| n.is_lowercase());
            if i > 0 && (prev_lower || (next_lower && chars[i - 1].is_uppercase())) {
                out.push('_');
            }
            out.extend(c.to_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

struct ColumnField {
    ident: syn::Ident,
    ty: Type,
    name: String,
    kind: Kind,
    nullable: bool,
    attrs: FieldAttrs,
    pk: Option<TokenStream>,
    audit: Option<TokenStream>,
}

pub fn expand(input: &DeriveInput) -> syn::Result<TokenStream> {
    if !input.generics.params.is_empty() {
        return Err(syn::Error::new_spanned(
            &input.generics,
            "a model cannot be generic",
        ));
    }
    let fields = match &input.data {
        Data::Struct(s) => match &s.fields {
            Fields::Named(named) => &named.named,
            _ => {
                return Err(syn::Error::new_spanned(
                    &input.ident,
                    "a model must be a struct with named fields",
                ))
            }
        },
        _ => {
            return Err(syn::Error::new_spanned(
                &input.ident,
                "a model must be a struct with named fields",
            ))
        }
    };
    let struct_attrs = attr::struct_attrs(&input.attrs)?;
    let ident = &input.ident;
    let struct_ident = ident;
    let table_name = struct_attrs
        .table
        .as_ref()
        .map(|l| l.value())
        .unwrap_or_else(|| snake_case(&ident.to_string()));
    let bind = match &struct_attrs.bind {
        Some(path) => quote!(#path),
        None => quote!(::rocket_alchemy::DefaultBind),
    };

    let mut columns: Vec<ColumnField> = Vec::new();
    let mut skipped: Vec<TokenStream> = Vec::new();
    for field in fields {
        let attrs = attr::field_attrs(&field.attrs)?;
        let field_ident = field.ident.clone().expect("named field");
        if let Some(span) = attrs.skip {
            let others = attrs.primary_key.is_some()
                || attrs.max_length.is_some()
                || attrs.unique.is_some()
                || attrs.index.is_some()
                || attrs.references.is_some()
                || attrs.default.is_some()
                || attrs.column.is_some()
                || attrs.created_at.is_some()
                || attrs.updated_at.is_some()
                || attrs.version.is_some()
                || attrs.soft_delete.is_some()
                || attrs.on_delete.is_some()
                || attrs.on_update.is_some();
            if others {
                return Err(syn::Error::new(
                    span,
                    "`skip` cannot be combined with other model attributes",
                ));
            }
            let ty = &field.ty;
            skipped.push(
                quote_spanned! {ty.span()=> #field_ident: ::std::default::Default::default()},
            );
            continue;
        }
        let (kind, nullable) = classify(&field.ty)?;
        let name = attrs
            .column
            .as_ref()
            .map(|l| l.value())
            .unwrap_or_else(|| field_ident.to_string());
        columns.push(ColumnField {
            ident: field_ident,
            ty: field.ty.clone(),
            name,
            kind,
            nullable,
            attrs,
            pk: None,
            audit: None,
        });
    }
    if columns.is_empty() {
        return Err(syn::Error::new_spanned(
            ident,
            "a model needs at least one column",
        ));
    }

    // Primary key: the field marked `primary_key`, else the field named `id`.
    let marked: Vec<usize> = columns
        .iter()
        .enumerate()
        .filter(|(_, c)| c.attrs.primary_key.is_some())
        .map(|(i, _)| i)
        .collect();
    if marked.len() > 1 {
        let second = &columns[marked[1]];
        return Err(syn::Error::new(
            second.attrs.primary_key.as_ref().unwrap().0,
            "only one field can be the primary key (composite keys are not supported)",
        ));
    }
    let pk_index = match marked.first() {
        Some(&i) => i,
        None => columns.iter().position(|c| c.ident == "id").ok_or_else(|| {
            syn::Error::new_spanned(ident, "a model needs a primary key: name a field `id` or mark one with #[model(primary_key)]")
        })?,
    };
    {
        let column = &mut columns[pk_index];
        if column.nullable {
            return Err(syn::Error::new_spanned(
                &column.ty,
                "the primary key cannot be an Option",
            ));
        }
        let explicit = column.attrs.primary_key.as_ref().and_then(|p| p.1.clone());
        let variant = match explicit {
            Some(lit) => match (lit.value().as_str(), column.kind) {
                ("uuid_v4", Kind::Uuid) => quote!(UuidV4),
                ("uuid_v7", Kind::Uuid) => quote!(UuidV7),
                ("auto_increment", Kind::Integer | Kind::BigInt) => quote!(AutoIncrement),
                ("natural", _) => quote!(Natural),
                ("uuid_v4" | "uuid_v7", _) => {
                    return Err(syn::Error::new_spanned(
                        &lit,
                        "a UUID primary key needs a `Uuid` field",
                    ))
                }
                ("auto_increment", _) => {
                    return Err(syn::Error::new_spanned(
                        &lit,
                        "an auto_increment primary key needs an i64 (or i32) field",
                    ))
                }
                _ => {
                    return Err(syn::Error::new_spanned(
                        &lit,
                        "expected \"uuid_v4\", \"uuid_v7\", \"auto_increment\" or \"natural\"",
                    ))
                }
            },
            None => match column.kind {
                Kind::Uuid => quote!(UuidV4),
                Kind::Integer | Kind::BigInt => quote!(AutoIncrement),
                _ => quote!(Natural),
            },
        };
        column.pk = Some(variant);
    }

    // Audit columns: explicit, or by name for DateTime<Utc> fields.
    for column in columns.iter_mut() {
        let explicit_created = column.attrs.created_at;
        let explicit_updated = column.attrs.updated_at;
        if let (Some(_), Some(span)) = (explicit_created, explicit_updated) {
            return Err(syn::Error::new(
                span,
                "a column cannot be both created_at and updated_at",
            ));
        }
        let audit = match (explicit_created, explicit_updated) {
            (Some(span), None) => Some((span, quote!(CreatedAt))),
            (None, Some(span)) => Some((span, quote!(UpdatedAt))),
            _ if column.ident == "created_at"
                && column.kind == Kind::DateTimeUtc
                && !column.nullable =>
            {
                Some((column.ident.span(), quote!(CreatedAt)))
            }
            _ if column.ident == "updated_at"
                && column.kind == Kind::DateTimeUtc
                && !column.nullable =>
            {
                Some((column.ident.span(), quote!(UpdatedAt)))
            }
            _ => None,
        };
        if let Some((span, variant)) = audit {
            if column.kind != Kind::DateTimeUtc || column.nullable {
                return Err(syn::Error::new(
                    span,
                    "audit columns must be `DateTime<Utc>`",
                ));
            }
            column.audit = Some(variant);
        }
    }

    // Managed columns: the optimistic-locking version and the soft-delete timestamp.
    for (pick, what) in [(0, "version"), (1, "soft_delete")] {
        let marked: Vec<usize> = columns
            .iter()
            .enumerate()
            .filter(|(_, c)| [c.attrs.version, c.attrs.soft_delete][pick].is_some())
            .map(|(i, _)| i)
            .collect();
        if let Some(&second) = marked.get(1) {
            let span = [
                columns[second].attrs.version,
                columns[second].attrs.soft_delete,
            ][pick];
            return Err(syn::Error::new(
                span.expect("marked"),
                format!("only one field can be the model's `{what}` column"),
            ));
        }
        let Some(&i) = marked.first() else { continue };
        let column = &mut columns[i];
        let span = [column.attrs.version, column.attrs.soft_delete][pick].expect("marked");
        if column.pk.is_some() || column.audit.is_some() {
            return Err(syn::Error::new(
                span,
                format!("`{what}` cannot be the primary key or an audit column"),
            ));
        }
        column.audit = Some(match pick {
            0 if matches!(column.kind, Kind::Integer | Kind::BigInt) && !column.nullable => {
                quote!(Version)
            }
            0 => {
                return Err(syn::Error::new(
                    span,
                    "the `version` column must be an `i64` (or `i32`), not an Option",
                ))
            }
            _ if column.kind == Kind::DateTimeUtc && column.nullable => quote!(DeletedAt),
            _ => {
                return Err(syn::Error::new(
                    span,
                    "the `soft_delete` column must be an `Option<DateTime<Utc>>` (NULL while the row is live)",
                ))
            }
        });
    }

    // Per-column checks.
    for column in &columns {
        let a = &column.attrs;
        if let Some(lit) = &a.max_length {
            if column.kind != Kind::String {
                return Err(syn::Error::new_spanned(
                    lit,
                    "max_length applies to String fields only",
                ));
            }
        }
        if a.references.is_none() {
            if let Some(lit) = a.on_delete.as_ref().or(a.on_update.as_ref()) {
                return Err(syn::Error::new_spanned(
                    lit,
                    "on_delete / on_update need `references = Model`",
                ));
            }
        }
        for lit in [&a.on_delete, &a.on_update].into_iter().flatten() {
            if lit.value() == "set_null" && !column.nullable {
                return Err(syn::Error::new_spanned(
                    lit,
                    "\"set_null\" needs an Option field",
                ));
            }
        }
        if let Some(lit) = &a.default {
            let ok = matches!(
                (lit, column.kind),
                (Lit::Bool(_), Kind::Bool)
                    | (
                        Lit::Int(_),
                        Kind::SmallInt | Kind::Integer | Kind::BigInt | Kind::Float | Kind::Double
                    )
                    | (Lit::Float(_), Kind::Float | Kind::Double)
                    | (Lit::Str(_), Kind::String)
            );
            if !ok {
                return Err(syn::Error::new_spanned(
                    lit,
                    "this default does not match the field's type",
                ));
            }
        }
        if column.pk.is_some() {
            if let Some(span) = a.unique.or(a.index) {
                return Err(syn::Error::new(
                    span,
                    "the primary key is already unique and indexed",
                ));
            }
        }
    }

    let column_defs = columns.iter().map(column_def);
    let column_names: Vec<&String> = columns.iter().map(|c| &c.name).collect();
    let field_idents: Vec<&syn::Ident> = columns.iter().map(|c| &c.ident).collect();
    let field_types: Vec<&Type> = columns.iter().map(|c| &c.ty).collect();
    let model_name = ident.to_string();

    let pk = &columns[pk_index];
    let pk_ident = &pk.ident;
    let pk_ty = &pk.ty;
    let pk_generate = match pk.pk.as_ref().map(|t| t.to_string()).as_deref() {
        Some("UuidV4") => {
            quote! { if self.#pk_ident.is_nil() { self.#pk_ident = ::rocket_alchemy::__private::Uuid::new_v4(); } }
        }
        Some("UuidV7") => {
            quote! { if self.#pk_ident.is_nil() { self.#pk_ident = ::rocket_alchemy::__private::Uuid::now_v7(); } }
        }
        _ => quote! {},
    };
    let stamp_created = columns
        .iter()
        .filter(|c| {
            c.audit
                .as_ref()
                .is_some_and(|a| a.to_string() == "CreatedAt")
        })
        .map(|c| &c.ident);
    let stamp_updated: Vec<&syn::Ident> = columns
        .iter()
        .filter(|c| {
            c.audit
                .as_ref()
                .is_some_and(|a| a.to_string() == "UpdatedAt")
        })
        .map(|c| &c.ident)
        .collect();

    let stamp_version: Vec<&syn::Ident> = columns
        .iter()
        .filter(|c| c.audit.as_ref().is_some_and(|a| a.to_string() == "Version"))
        .map(|c| &c.ident)
        .collect();

    let value_exprs = columns.iter().map(|c| {
        let (ident, ty) = (&c.ident, &c.ty);
        quote_spanned! {ty.span()=>
            ::rocket_alchemy::sea_query::Value::from(::std::clone::Clone::clone(&self.#ident))
        }
    });
    let column_consts = columns.iter().map(|c| {
        let (ident, ty, name) = (&c.ident, &c.ty, &c.name);
        let konst = syn::Ident::new(&ident.to_string().trim_start_matches("r#").to_uppercase(), ident.span());
        // A foreign key's column names the model it references (what `children` checks).
        let (doc, referenced) = match &c.attrs.references {
            Some(target) => (
                format!("The `{name}` column, a foreign key to `{}`.", quote!(#target).to_string().replace(' ', "")),
                quote!(#target),
            ),
            None => (format!("The `{name}` column."), quote!(())),
        };
        quote_spanned! {ident.span()=>
            #[doc = #doc]
            #[allow(dead_code)]
            pub const #konst: ::rocket_alchemy::model::Col<#struct_ident, #ty, #referenced> = ::rocket_alchemy::model::Col::new(#name);
        }
    });
    let value_arms = columns.iter().map(|c| {
        let (ident, name) = (&c.ident, &c.name);
        quote! { #name => ::std::option::Option::Some(::rocket_alchemy::sea_query::Value::from(::std::clone::Clone::clone(&self.#ident))), }
    });
    let set_arms = columns.iter().map(|c| {
        let (ident, ty, name) = (&c.ident, &c.ty, &c.name);
        quote_spanned! {ty.span()=>
            #name => {
                self.#ident = <#ty as ::rocket_alchemy::sea_query::ValueType>::try_from(value)
                    .map_err(|e| ::std::boxed::Box::new(e) as ::rocket_alchemy::sqlx::error::BoxDynError)?;
            }
        }
    });
    let decode_bounds = field_types.iter().map(|ty| {
        quote_spanned! {ty.span()=>
            #ty: ::rocket_alchemy::sqlx::Decode<'__r, <__R as ::rocket_alchemy::sqlx::Row>::Database>
                + ::rocket_alchemy::sqlx::Type<<__R as ::rocket_alchemy::sqlx::Row>::Database>
        }
    });

    // Collected at link time: `Alchemy::fairing()` manages every declared model.
    let collect = if struct_attrs.opt_in.is_some() {
        quote! {}
    } else {
        quote! {
            ::rocket_alchemy::__private::inventory::submit! {
                ::rocket_alchemy::model::Declared(<#ident as ::rocket_alchemy::Model>::TABLE)
            }
        }
    };

    Ok(quote! {
        #[automatically_derived]
        impl #ident {
            #(#column_consts)*
        }

        #collect

        #[automatically_derived]
        impl ::rocket_alchemy::Model for #ident {
            type Bind = #bind;

            const TABLE: &'static ::rocket_alchemy::model::Table = &::rocket_alchemy::model::Table {
                name: #table_name,
                bind: <#bind as ::rocket_alchemy::Bind>::KEY,
                model: #model_name,
                columns: &[#(#column_defs),*],
            };

            fn values(&self) -> ::std::vec::Vec<::rocket_alchemy::sea_query::Value> {
                ::std::vec![#(#value_exprs),*]
            }

            fn primary_key_value(&self) -> ::rocket_alchemy::sea_query::Value {
                ::rocket_alchemy::sea_query::Value::from(::std::clone::Clone::clone(&self.#pk_ident))
            }

            fn set_primary_key(
                &mut self,
                value: ::rocket_alchemy::sea_query::Value,
            ) -> ::std::result::Result<(), ::rocket_alchemy::sqlx::error::BoxDynError> {
                self.#pk_ident = <#pk_ty as ::rocket_alchemy::sea_query::ValueType>::try_from(value)
                    .map_err(|e| ::std::boxed::Box::new(e) as ::rocket_alchemy::sqlx::error::BoxDynError)?;
                ::std::result::Result::Ok(())
            }

            fn value(&self, column: &str) -> ::std::option::Option<::rocket_alchemy::sea_query::Value> {
                match column {
                    #(#value_arms)*
                    _ => ::std::option::Option::None,
                }
            }

            fn set_value(
                &mut self,
                column: &str,
                value: ::rocket_alchemy::sea_query::Value,
            ) -> ::std::result::Result<(), ::rocket_alchemy::sqlx::error::BoxDynError> {
                match column {
                    #(#set_arms)*
                    other => {
                        return ::std::result::Result::Err(::std::format!("{} has no column `{}`", #model_name, other).into())
                    }
                }
                ::std::result::Result::Ok(())
            }

            fn prepare_insert(&mut self, now: ::rocket_alchemy::__private::DateTime<::rocket_alchemy::__private::Utc>) {
                #pk_generate
                #(self.#stamp_created = now;)*
                #(self.#stamp_updated = now;)*
                #(self.#stamp_version = 1;)*
            }

            fn touch(&mut self, now: ::rocket_alchemy::__private::DateTime<::rocket_alchemy::__private::Utc>) {
                let _ = now;
                #(self.#stamp_updated = ::rocket_alchemy::model::advance(self.#stamp_updated, now);)*
            }
        }

        #[automatically_derived]
        impl ::rocket_alchemy::input::Blank for #ident {
            fn blank() -> Self {
                #ident {
                    #(#field_idents: ::std::default::Default::default(),)*
                    #(#skipped,)*
                }
            }
        }

        #[automatically_derived]
        impl<'__r, __R: ::rocket_alchemy::sqlx::Row> ::rocket_alchemy::sqlx::FromRow<'__r, __R> for #ident
        where
            &'__r str: ::rocket_alchemy::sqlx::ColumnIndex<__R>,
            #(#decode_bounds,)*
        {
            fn from_row(row: &'__r __R) -> ::std::result::Result<Self, ::rocket_alchemy::sqlx::Error> {
                ::std::result::Result::Ok(#ident {
                    #(#field_idents: ::rocket_alchemy::sqlx::Row::try_get(row, #column_names)?,)*
                    #(#skipped,)*
                })
            }
        }
    })
}

fn column_def(column: &ColumnField) -> TokenStream {
    let name = &column.name;
    let field = column.ident.to_string();
    let ty = match column.kind {
        Kind::Bool => quote!(Bool),
        Kind::SmallInt => quote!(SmallInt),
        Kind::Integer => quote!(Integer),
        Kind::BigInt => quote!(BigInt),
        Kind::Float => quote!(Float),
        Kind::Double => quote!(Double),
        Kind::String => match &column.attrs.max_length {
            Some(n) => quote!(String(::std::option::Option::Some(#n))),
            None => quote!(String(::std::option::Option::None)),
        },
        Kind::Bytes => quote!(Bytes),
        Kind::Uuid => quote!(Uuid),
        Kind::Date => quote!(Date),
        Kind::DateTimeUtc => quote!(DateTimeUtc),
        Kind::Json => quote!(Json),
    };
    let nullable = column.nullable;
    let primary_key = match &column.pk {
        Some(variant) => {
            quote!(::std::option::Option::Some(::rocket_alchemy::model::PrimaryKey::#variant))
        }
        None => quote!(::std::option::Option::None),
    };
    let unique = column.attrs.unique.is_some();
    let index = column.attrs.index.is_some() || column.attrs.references.is_some();
    let default = match &column.attrs.default {
        Some(Lit::Bool(b)) => {
            quote!(::std::option::Option::Some(::rocket_alchemy::model::Literal::Bool(#b)))
        }
        Some(Lit::Int(i)) if matches!(column.kind, Kind::Float | Kind::Double) => {
            let f: f64 = i.base10_parse().unwrap_or_default();
            quote!(::std::option::Option::Some(::rocket_alchemy::model::Literal::Float(#f)))
        }
        Some(Lit::Int(i)) => {
            quote!(::std::option::Option::Some(::rocket_alchemy::model::Literal::Int(#i)))
        }
        Some(Lit::Float(f)) => {
            quote!(::std::option::Option::Some(::rocket_alchemy::model::Literal::Float(#f)))
        }
        Some(Lit::Str(s)) => {
            quote!(::std::option::Option::Some(::rocket_alchemy::model::Literal::Str(#s)))
        }
        _ => quote!(::std::option::Option::None),
    };
    let foreign_key = match &column.attrs.references {
        Some(target) => {
            let on_delete = column
                .attrs
                .on_delete
                .as_ref()
                .map(|l| attr::action(l).unwrap())
                .unwrap_or(quote!(NoAction));
            let on_update = column
                .attrs
                .on_update
                .as_ref()
                .map(|l| attr::action(l).unwrap())
                .unwrap_or(quote!(NoAction));
            let target_fn = if target.is_ident("Self") {
                quote!(<Self as ::rocket_alchemy::Model>::table)
            } else {
                quote_spanned!(target.span()=> <#target as ::rocket_alchemy::Model>::table)
            };
            quote!(::std::option::Option::Some(::rocket_alchemy::model::ForeignKey {
                target: #target_fn,
                on_delete: ::rocket_alchemy::model::ReferentialAction::#on_delete,
                on_update: ::rocket_alchemy::model::ReferentialAction::#on_update,
            }))
        }
        None => quote!(::std::option::Option::None),
    };
    let audit = match &column.audit {
        Some(variant) => {
            quote!(::std::option::Option::Some(::rocket_alchemy::model::AuditColumn::#variant))
        }
        None => quote!(::std::option::Option::None),
    };
    quote! {
        ::rocket_alchemy::model::Column {
            name: #name,
            field: #field,
            ty: ::rocket_alchemy::model::ColumnType::#ty,
            nullable: #nullable,
            primary_key: #primary_key,
            unique: #unique,
            index: #index,
            default: #default,
            foreign_key: #foreign_key,
            audit: #audit,
        }
    }
}
