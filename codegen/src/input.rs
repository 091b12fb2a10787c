//! Expansion of `#[derive(ToModel)]` and `#[derive(ToChanges)]`: input structs mapped onto a
//! model's fields by name, every mapping type-checked at the field's own span.

use proc_macro2::TokenStream;
use quote::{quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{Attribute, Data, DeriveInput, Fields, Path, Type};

/// `#[input(model = M, check = f)]` on the struct.
struct InputAttrs {
    model: Path,
    check: Option<Path>,
}

fn struct_attrs(input: &DeriveInput, derive: &str) -> syn::Result<InputAttrs> {
    let mut model = None;
    let mut check = None;
    for attr in input.attrs.iter().filter(|a| a.path().is_ident("input")) {
        attr.parse_nested_meta(|meta| {
            if meta.path.is_ident("model") {
                model = Some(meta.value()?.parse::<Path>()?);
                Ok(())
            } else if meta.path.is_ident("check") {
                check = Some(meta.value()?.parse::<Path>()?);
                Ok(())
            } else {
                Err(meta.error(
                    "unknown input attribute; expected `model = Model` or `check = path::to::fn`",
                ))
            }
        })?;
    }
    let model = model.ok_or_else(|| {
        syn::Error::new_spanned(
            &input.ident,
            format!("#[derive({derive})] needs `#[input(model = YourModel)]`"),
        )
    })?;
    Ok(InputAttrs { model, check })
}

fn skipped(attrs: &[Attribute]) -> syn::Result<bool> {
    let mut skip = false;
    for attr in attrs.iter().filter(|a| a.path().is_ident("input")) {
        attr.parse_nested_meta(|meta| {
            if meta.path.is_ident("skip") {
                skip = true;
                Ok(())
            } else {
                Err(meta.error("unknown input field attribute; expected `skip`"))
            }
        })?;
    }
    Ok(skip)
}

/// Whether `attrs` hold `#[serde(default)]` (or `#[serde(default = "…")]`).
fn serde_default(attrs: &[Attribute]) -> bool {
    attrs
        .iter()
        .filter(|a| a.path().is_ident("serde"))
        .any(|a| {
            let mut found = false;
            let _ = a.parse_nested_meta(|meta| {
                if meta.path.is_ident("default") {
                    found = true;
                }
                if meta.input.peek(syn::Token![=]) {
                    let _: syn::Expr = meta.value()?.parse()?;
                }
                Ok(())
            });
            found
        })
}

fn is_patch(ty: &Type) -> bool {
    matches!(ty, Type::Path(p) if p.qself.is_none()
        && p.path.segments.last().is_some_and(|s| s.ident == "Patch"))
}

struct Field<'a> {
    ident: &'a syn::Ident,
    ty: &'a Type,
    attrs: &'a [Attribute],
}

fn fields<'a>(input: &'a DeriveInput, derive: &str) -> syn::Result<Vec<Field<'a>>> {
    if !input.generics.params.is_empty() {
        return Err(syn::Error::new_spanned(
            &input.generics,
            format!("#[derive({derive})] does not support generics"),
        ));
    }
    let named = match &input.data {
        Data::Struct(s) => match &s.fields {
            Fields::Named(named) => &named.named,
            _ => None.ok_or_else(|| {
                syn::Error::new_spanned(&input.ident, "an input must be a struct with named fields")
            })?,
        },
        _ => {
            return Err(syn::Error::new_spanned(
                &input.ident,
                "an input must be a struct with named fields",
            ))
        }
    };
    let mut out = Vec::new();
    for f in named {
        if skipped(&f.attrs)? {
            continue;
        }
        out.push(Field {
            ident: f.ident.as_ref().expect("named"),
            ty: &f.ty,
            attrs: &f.attrs,
        });
    }
    Ok(out)
}

fn konst(ident: &syn::Ident) -> syn::Ident {
    syn::Ident::new(
        &ident.to_string().trim_start_matches("r#").to_uppercase(),
        ident.span(),
    )
}

fn check_call(check: &Option<Path>) -> TokenStream {
    match check {
        Some(path) => quote_spanned! {path.span()=> #path(&mut self)?; },
        None => quote! {},
    }
}

pub fn expand_to_changes(input: &DeriveInput) -> syn::Result<TokenStream> {
    let attrs = struct_attrs(input, "ToChanges")?;
    let fields = fields(input, "ToChanges")?;
    let struct_default = serde_default(&input.attrs);
    let ident = &input.ident;
    let model = &attrs.model;
    let mut steps = Vec::new();
    for field in &fields {
        if !is_patch(field.ty) {
            return Err(syn::Error::new_spanned(
                field.ty,
                "a #[derive(ToChanges)] field is a `Patch<T>` (absent / null / value); \
                 mark other fields #[input(skip)]",
            ));
        }
        if !struct_default && !serde_default(field.attrs) {
            return Err(syn::Error::new_spanned(
                field.ident,
                "a `Patch` field needs `#[serde(default)]` (on it or on the struct) so that an \
                 absent field deserializes as `Patch::Absent`",
            ));
        }
        let (name, konst) = (field.ident, konst(field.ident));
        steps.push(quote_spanned! {field.ident.span()=>
            let changes = changes.patch(#model::#konst, self.#name)?;
        });
    }
    let check = check_call(&attrs.check);
    Ok(quote! {
        #[automatically_derived]
        impl ::rocket_alchemy::service::ToChanges<#model> for #ident {
            #[allow(unused_mut)]
            fn to_changes(
                mut self,
            ) -> ::std::result::Result<
                ::rocket_alchemy::repository::Changes<#model>,
                ::rocket_alchemy::RepositoryError,
            > {
                #check
                let changes = ::rocket_alchemy::repository::Changes::<#model>::new();
                #(#steps)*
                ::std::result::Result::Ok(changes)
            }
        }
    })
}

pub fn expand_to_model(input: &DeriveInput) -> syn::Result<TokenStream> {
    let attrs = struct_attrs(input, "ToModel")?;
    let fields = fields(input, "ToModel")?;
    let ident = &input.ident;
    let model = &attrs.model;
    let mut assigns = Vec::new();
    let mut names = Vec::new();
    for field in &fields {
        if is_patch(field.ty) {
            return Err(syn::Error::new_spanned(
                field.ty,
                "`Patch` is for updates (#[derive(ToChanges)]); a create input holds the \
                 column's own type",
            ));
        }
        let name = field.ident;
        names.push(name.to_string().trim_start_matches("r#").to_string());
        assigns.push(quote_spanned! {field.ident.span()=> model.#name = self.#name; });
    }
    let check = check_call(&attrs.check);
    let message = format!(
        "#[derive(ToModel)] on `{ident}`: the input must set every column of its model that an \
         insert needs (not an Option, no default, not a generated key or audit column)"
    );
    Ok(quote_spanned! {ident.span()=>
        #[automatically_derived]
        impl ::rocket_alchemy::service::ToModel<#model> for #ident {
            #[allow(unused_mut)]
            fn to_model(
                mut self,
                _: ::rocket_alchemy::service::Operation,
            ) -> ::std::result::Result<#model, ::rocket_alchemy::RepositoryError> {
                #check
                let mut model = <#model as ::rocket_alchemy::input::Blank>::blank();
                #(#assigns)*
                ::rocket_alchemy::input::validate(&model)?;
                ::std::result::Result::Ok(model)
            }
        }

        const _: () = ::std::assert!(
            ::rocket_alchemy::input::covers(
                <#model as ::rocket_alchemy::Model>::TABLE,
                &[#(#names),*],
            ),
            #message
        );
    })
}
