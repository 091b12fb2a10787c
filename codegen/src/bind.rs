use proc_macro2::TokenStream;
use quote::quote;
use syn::{DeriveInput, LitStr};

pub fn expand(input: &DeriveInput) -> syn::Result<TokenStream> {
    if !input.generics.params.is_empty() {
        return Err(syn::Error::new_spanned(
            &input.generics,
            "a bind marker cannot be generic",
        ));
    }
    let mut key: Option<LitStr> = None;
    for attr in input.attrs.iter().filter(|a| a.path().is_ident("bind")) {
        if key.is_some() {
            return Err(syn::Error::new_spanned(
                attr,
                "duplicate #[bind(..)] attribute",
            ));
        }
        let lit: LitStr = attr.parse_args().map_err(|e| {
            syn::Error::new(
                e.span(),
                "expected the bind key as a string: #[bind(\"audit\")]",
            )
        })?;
        let value = lit.value();
        if value.is_empty()
            || !value
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            return Err(syn::Error::new_spanned(
                &lit,
                "a bind key may only contain ASCII letters, digits, `_` and `-`",
            ));
        }
        key = Some(lit);
    }
    let Some(key) = key else {
        return Err(syn::Error::new_spanned(
            &input.ident,
            "missing the bind key: add #[bind(\"<key>\")] naming `databases.<key>` in the configuration",
        ));
    };
    let ident = &input.ident;
    Ok(quote! {
        impl ::rocket_alchemy::Bind for #ident {
            const KEY: &'static str = #key;
        }
    })
}
