//! Misused `#[kube(...)]` attributes are compile errors that point at the attribute; the
//! messages are held in `tests/ui/*.stderr` (`TRYBUILD=overwrite` writes them anew).

#[test]
fn misuse_is_a_compile_error_at_the_attribute() {
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/ui/*.rs");
}
