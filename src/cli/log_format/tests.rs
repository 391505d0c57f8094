//! The plain format writes what tracing-subscriber's default writes, escapes
//! what could forge a line, and tells the same time.

use super::*;

use crate::log_capture::Lines;

/// What `log` writes through the human format, with the default field
/// formatter and with `PlainFields`, both without colours or time.
fn both(log: impl Fn()) -> (String, String) {
    let default = Lines::default();
    let plain = Lines::default();
    let (d, p) = (default.clone(), plain.clone());
    let subscriber = tracing_subscriber::fmt()
        .with_ansi(false)
        .without_time()
        .with_writer(move || d.clone())
        .finish();
    tracing::subscriber::with_default(subscriber, &log);
    let subscriber = tracing_subscriber::fmt()
        .with_ansi(false)
        .without_time()
        .fmt_fields(PlainFields)
        .with_writer(move || p.clone())
        .finish();
    tracing::subscriber::with_default(subscriber, &log);
    let text = |l: Lines| l.text();
    (text(default), text(plain))
}

#[test]
fn writes_what_the_default_writes() {
    let (default, plain) = both(|| {
        let host = "bank.test";
        let span = tracing::info_span!("http", method = "GET", route = tracing::field::Empty);
        span.record("route", "bank");
        let _in = span.enter();
        tracing::info!(
            route = %"bank",
            host = %host,
            credential = "oauth2",
            status = 200_u16,
            duration_ms = 0_u64,
            bytes_in = 18_446_744_073_709_551_615_u64,
            delta = -42_i64,
            ok = true,
            error = "",
            r#type = "x",
            list = ?["a", "b"],
            "request"
        );
        tracing::warn!("a message with {} in it", "format args");
    });
    assert_eq!(plain, default);
    assert!(
        plain.contains(r#"request route=bank host=bank.test credential="oauth2" status=200"#),
        "{plain}"
    );
    assert!(
        plain.contains("http{method=\"GET\" route=\"bank\"}"),
        "{plain}"
    );
}

#[test]
fn strings_are_quoted_and_escaped_as_the_default_does() {
    let (default, plain) = both(|| {
        for value in [
            "",
            "plain words, punctuation ~!@#$%^&*()_+-={}[]|:;'<>?,./",
            "a \"quoted\" word",
            "back\\slash",
            "tab\there",
            "line\nbreak\r",
            "esc\x1b[31m bel\x07 del\x7f nul\0",
            "caf\u{e9} \u{301}accent \u{200b}zero-width \u{9b}c1 \u{1F600}",
        ] {
            tracing::info!(value, "string");
        }
    });
    assert_eq!(plain, default);
    assert!(plain.contains(r#"value="a \"quoted\" word""#), "{plain}");
}

/// Tries to log a line of its own while it is written.
struct Chatty;

impl std::fmt::Display for Chatty {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        tracing::info!(inner = %"value", "written while formatting");
        f.write_str("chatty")
    }
}

/// A value whose `Display` logs runs while this thread's scratch text is
/// in use; the line is still the default's (tracing itself drops the event
/// logged from inside another, in both).
#[test]
fn a_value_that_logs_while_it_is_written_is_written_as_the_default_does() {
    let (default, plain) = both(|| {
        let span = tracing::info_span!("http", host = %Chatty);
        let _in = span.enter();
        tracing::info!(value = %Chatty, n = 1_u64, "outer");
    });
    assert_eq!(plain, default);
    assert!(
        plain.contains(
            "http{host=chatty}: countersign::cli::log_format::tests: outer value=chatty n=1"
        ),
        "{plain}"
    );
}

#[test]
fn errors_show_their_sources_as_the_default_does() {
    let outer = std::io::Error::other(std::io::Error::other("inner cause"));
    let (default, plain) = both(|| {
        tracing::error!(
            error = &outer as &(dyn std::error::Error + 'static),
            "failed"
        );
    });
    assert_eq!(plain, default);
}

#[test]
fn terminal_controls_and_line_breaks_are_escaped() {
    let (_, plain) = both(|| {
        let evil = "a\x1b[31mred\x07\nnext\u{9b}line";
        tracing::info!(host = %evil, "bad {}", evil);
    });
    assert_eq!(plain.lines().count(), 1, "{plain}");
    assert!(
        !plain.contains('\x1b') && !plain.contains('\x07'),
        "{plain:?}"
    );
    assert!(
        plain.contains(r"a\u{1b}[31mred\u{7}\nnext\u{9b}line"),
        "{plain}"
    );
}

#[test]
fn the_timestamp_is_the_defaults() {
    let mut ours = String::new();
    let mut theirs = String::new();
    PlainTime.format_time(&mut Writer::new(&mut ours)).unwrap();
    tracing_subscriber::fmt::time::SystemTime
        .format_time(&mut Writer::new(&mut theirs))
        .unwrap();
    assert_eq!(ours.len(), theirs.len(), "{ours} {theirs}");
    // The same second (or the next one, if it turned in between).
    assert_eq!(ours[..16], theirs[..16], "{ours} {theirs}");
    assert!(ours.ends_with('Z') && ours.as_bytes()[19] == b'.', "{ours}");
}

#[test]
fn dates_across_leap_years_and_centuries() {
    for (secs, text) in [
        (0, "1970-01-01T00:00:00"),
        (951_782_400, "2000-02-29T00:00:00"),
        (1_709_251_199, "2024-02-29T23:59:59"),
        (1_796_089_983, "2026-12-01T01:53:03"),
        (4_107_542_400, "2100-03-01T00:00:00"),
        (253_402_300_799, "9999-12-31T23:59:59"),
    ] {
        assert_eq!(second_text(secs), text, "{secs}");
    }
}

#[test]
fn decimals() {
    for n in [0, 7, 10, 99, 12345, u64::MAX] {
        assert_eq!(Decimal::new(n).as_str(), n.to_string());
    }
}
