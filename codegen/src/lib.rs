//! Derive macros for `rocket_alchemy`.
//!
//! This crate is an implementation detail: depend on `rocket_alchemy`, which re-exports
//! `Bind` and `Model` and documents them.

mod attr;
mod bind;
mod input;
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

/// Builds a model from an input struct by field name: see `rocket_alchemy::input`.
#[proc_macro_derive(ToModel, attributes(input))]
pub fn derive_to_model(input: TokenStream) -> TokenStream {
    let input = syn::parse_macro_input!(input as syn::DeriveInput);
    input::expand_to_model(&input)
        .unwrap_or_else(syn::Error::into_compile_error)
        .into()
}

/// Builds the `Changes` of an update from a struct of `Patch` fields: see
/// `rocket_alchemy::input`.
#[proc_macro_derive(ToChanges, attributes(input))]
pub fn derive_to_changes(input: TokenStream) -> TokenStream {
    let input = syn::parse_macro_input!(input as syn::DeriveInput);
    input::expand_to_changes(&input)
        .unwrap_or_else(syn::Error::into_compile_error)
        .into()
}
