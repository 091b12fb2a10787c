//! Compile-time checks of `#[derive(Model)]` and `#[derive(Bind)]`: every misuse is an error
//! pointing at the offending field, attribute or type (`tests/ui/fail`), and a model using
//! every supported type and attribute compiles (`tests/ui/pass`).
//!
//! Regenerate the expected output with `TRYBUILD=overwrite cargo test --test ui`; the
//! `.stderr` files are pinned to the toolchain CI uses.

#[test]
fn ui() {
    // trybuild's project does not inherit this workspace's profiles, and each pass case
    // links a binary: without debug info they take a fraction of the disk.
    std::env::set_var("CARGO_PROFILE_DEV_DEBUG", "false");
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/ui/fail/*.rs");
    t.pass("tests/ui/pass/*.rs");
}
