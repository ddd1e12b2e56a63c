//! Golden transcripts of the command line's user-facing failures: each `tests/cmd/NAME.toml`
//! runs `tollgate` in `tests/cmd/NAME.in/` and compares its stdout, stderr and exit code with
//! `NAME.stdout`, `NAME.stderr` and the case's `status`, so that any change to a message shows
//! up in review. Refresh them with `TRYCMD=overwrite cargo test --test tests transcripts` and
//! read the diff; `tests/cmd/make-fixtures.sh` rebuilds the signed input files.

#[test]
fn transcripts() {
    let cases = trycmd::TestCases::new();
    cases
        .register_bin(
            "tollgate",
            std::path::Path::new(env!("CARGO_BIN_EXE_tollgate")),
        )
        .env("NO_COLOR", "1")
        .case("tests/cmd/*.toml");
    // `pull` and `push` exist only with the registry feature.
    if cfg!(not(feature = "registry")) {
        cases.skip("tests/cmd/pull_*.toml");
    }
}
