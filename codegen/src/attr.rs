//! Parsing of `#[model(...)]` attributes, keeping spans for errors.

use syn::meta::ParseNestedMeta;
use syn::{Attribute, Expr, Lit, LitInt, LitStr, Path};

/// `#[model(...)]` on the struct.
#[derive(Default)]
pub struct StructAttrs {
    pub table: Option<LitStr>,
    pub bind: Option<Path>,
    /// `opt_in`: not collected for `Alchemy::fairing()`; managed only where given with
    /// `.model::<M>()` (library-provided models such as the idempotency table).
    pub opt_in: Option<proc_macro2::Span>,
}

/// `#[model(...)]` on a field.
#[derive(Default)]
pub struct FieldAttrs {
    /// `primary_key` (None inside: inferred from the type) or `primary_key = "kind"`.
    pub primary_key: Option<(proc_macro2::Span, Option<LitStr>)>,
    pub max_length: Option<LitInt>,
    pub unique: Option<proc_macro2::Span>,
    pub index: Option<proc_macro2::Span>,
    pub references: Option<Path>,
    pub on_delete: Option<LitStr>,
    pub on_update: Option<LitStr>,
    pub default: Option<Lit>,
    pub column: Option<LitStr>,
    pub created_at: Option<proc_macro2::Span>,
    pub updated_at: Option<proc_macro2::Span>,
    pub version: Option<proc_macro2::Span>,
    pub soft_delete: Option<proc_macro2::Span>,
    pub skip: Option<proc_macro2::Span>,
}

fn once<T>(slot: &mut Option<T>, meta: &ParseNestedMeta<'_>, value: T) -> syn::Result<()> {
    if slot.is_some() {
        return Err(meta.error("duplicate model attribute"));
    }
    *slot = Some(value);
    Ok(())
}

pub fn struct_attrs(attrs: &[Attribute]) -> syn::Result<StructAttrs> {
    let mut out = StructAttrs::default();
    for attr in attrs.iter().filter(|a| a.path().is_ident("model")) {
        attr.parse_nested_meta(|meta| {
            if meta.path.is_ident("table") {
                let lit: LitStr = meta.value()?.parse()?;
                let name = lit.value();
                if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                    return Err(syn::Error::new_spanned(
                        &lit,
                        "a table name may only contain ASCII letters, digits and `_`",
                    ));
                }
                once(&mut out.table, &meta, lit)
            } else if meta.path.is_ident("bind") {
                let path: Path = meta.value()?.parse()?;
                once(&mut out.bind, &meta, path)
            } else if meta.path.is_ident("opt_in") {
                once(&mut out.opt_in, &meta, syn::spanned::Spanned::span(&meta.path))
            } else {
                Err(meta.error(
                    "unknown model attribute; expected `table = \"...\"`, `bind = BindType` or `opt_in`",
                ))
            }
        })?;
    }
    Ok(out)
}

pub fn field_attrs(attrs: &[Attribute]) -> syn::Result<FieldAttrs> {
    let mut out = FieldAttrs::default();
    for attr in attrs.iter().filter(|a| a.path().is_ident("model")) {
        attr.parse_nested_meta(|meta| {
            let span = meta.path.get_ident().map(|i| i.span()).unwrap_or_else(proc_macro2::Span::call_site);
            let path = &meta.path;
            if path.is_ident("primary_key") {
                let kind = if meta.input.peek(syn::Token![=]) { Some(meta.value()?.parse::<LitStr>()?) } else { None };
                once(&mut out.primary_key, &meta, (span, kind))
            } else if path.is_ident("max_length") {
                let lit: LitInt = meta.value()?.parse()?;
                let n: u32 = lit.base10_parse()?;
                if n == 0 {
                    return Err(syn::Error::new_spanned(&lit, "max_length must be at least 1"));
                }
                once(&mut out.max_length, &meta, lit)
            } else if path.is_ident("unique") {
                once(&mut out.unique, &meta, span)
            } else if path.is_ident("index") {
                once(&mut out.index, &meta, span)
            } else if path.is_ident("references") {
                let target: Path = meta.value()?.parse()?;
                once(&mut out.references, &meta, target)
            } else if path.is_ident("on_delete") {
                let lit: LitStr = meta.value()?.parse()?;
                action(&lit)?;
                once(&mut out.on_delete, &meta, lit)
            } else if path.is_ident("on_update") {
                let lit: LitStr = meta.value()?.parse()?;
                action(&lit)?;
                once(&mut out.on_update, &meta, lit)
            } else if path.is_ident("default") {
                let expr: Expr = meta.value()?.parse()?;
                let lit = match expr {
                    Expr::Lit(l) => l.lit,
                    Expr::Unary(syn::ExprUnary { op: syn::UnOp::Neg(_), expr, .. }) => match *expr {
                        Expr::Lit(syn::ExprLit { lit: Lit::Int(i), .. }) => {
                            Lit::Int(LitInt::new(&format!("-{}", i.base10_digits()), i.span()))
                        }
                        Expr::Lit(syn::ExprLit { lit: Lit::Float(f), .. }) => {
                            Lit::Float(syn::LitFloat::new(&format!("-{}", f.base10_digits()), f.span()))
                        }
                        other => return Err(syn::Error::new_spanned(other, "default must be a literal")),
                    },
                    other => return Err(syn::Error::new_spanned(other, "default must be a literal (bool, number or string)")),
                };
                once(&mut out.default, &meta, lit)
            } else if path.is_ident("column") {
                let lit: LitStr = meta.value()?.parse()?;
                let name = lit.value();
                if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                    return Err(syn::Error::new_spanned(&lit, "a column name may only contain ASCII letters, digits and `_`"));
                }
                once(&mut out.column, &meta, lit)
            } else if path.is_ident("created_at") {
                once(&mut out.created_at, &meta, span)
            } else if path.is_ident("updated_at") {
                once(&mut out.updated_at, &meta, span)
            } else if path.is_ident("version") {
                once(&mut out.version, &meta, span)
            } else if path.is_ident("soft_delete") {
                once(&mut out.soft_delete, &meta, span)
            } else if path.is_ident("skip") {
                once(&mut out.skip, &meta, span)
            } else {
                Err(meta.error(
                    "unknown model attribute; expected one of: primary_key, max_length, unique, index, \
                     references, on_delete, on_update, default, column, created_at, updated_at, version, \
                     soft_delete, skip",
                ))
            }
        })?;
    }
    Ok(out)
}

/// The `ReferentialAction` variant for an `on_delete` / `on_update` string.
pub fn action(lit: &LitStr) -> syn::Result<proc_macro2::TokenStream> {
    let variant = match lit.value().as_str() {
        "cascade" => quote::quote!(Cascade),
        "set_null" => quote::quote!(SetNull),
        "restrict" => quote::quote!(Restrict),
        "no_action" => quote::quote!(NoAction),
        _ => {
            return Err(syn::Error::new_spanned(
                lit,
                "expected \"cascade\", \"set_null\", \"restrict\" or \"no_action\"",
            ))
        }
    };
    Ok(variant)
}
