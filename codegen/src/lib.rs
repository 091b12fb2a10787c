//! Derive macros for `rocket_alchemy`.
//!
//! This crate is an implementation detail: depend on `rocket_alchemy`, which re-exports
//! `Bind` and `Model` and documents them.

mod attr;
mod bind;
mod model;

use proc_macro::TokenStream;

/// Declares a bind marker: `#[derive(Bind)] #[bind("audit")] struct Audit;`.
#[proc_macro_derive(Bind, attributes(bind))]
pub fn derive_bind(input: TokenStream) -> TokenStream {
    let input = syn::parse_macro_input!(input as syn::DeriveInput);
    bind::expand(&input)
        .unwrap_or_else(syn::Error::into_compile_error)
        .into()
}

/// Declares a table: see `rocket_alchemy::model`.
#[proc_macro_derive(Model, attributes(model))]
pub fn derive_model(input: TokenStream) -> TokenStream {
    let input = syn::parse_macro_input!(input as syn::DeriveInput);
    model::expand(&input)
        .unwrap_or_else(syn::Error::into_compile_error)
        .into()
}
