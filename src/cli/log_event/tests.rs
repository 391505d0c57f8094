//! The whole line is the one tracing-subscriber's default format writes with
//! the same field formatter and timer.

use super::*;

use crate::log_capture::Lines;

use crate::cli::log_format::PlainFields;

/// The lines `log` writes through the default `Full` format and through
/// `PlainEvent`, each without its timestamp (the time differs between the
/// two runs; its text is `PlainTime`'s in both).
fn both(log: impl Fn()) -> (Vec<String>, Vec<String>) {
    let default = Lines::default();
    let ours = Lines::default();
    let (d, o) = (default.clone(), ours.clone());
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .fmt_fields(PlainFields)
        .with_timer(PlainTime)
        .with_writer(move || d.clone())
        .finish();
    tracing::subscriber::with_default(subscriber, &log);
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .fmt_fields(PlainFields)
        .event_format(PlainEvent::default())
        .with_writer(move || o.clone())
        .finish();
    tracing::subscriber::with_default(subscriber, &log);
    let lines = |l: Lines| {
        let text = l.text();
        assert!(text.ends_with('\n'), "{text:?}");
        text.lines()
            .map(|line| {
                // `2026-12-02T01:36:03.147319Z ` then the rest.
                assert_eq!(&line[19..20], ".", "{line}");
                assert_eq!(&line[26..28], "Z ", "{line}");
                line[28..].to_owned()
            })
            .collect::<Vec<_>>()
    };
    (lines(default), lines(ours))
}

#[test]
fn writes_the_line_the_default_writes() {
    let (default, ours) = both(|| {
        tracing::info!(target: "countersign::proxy::access", route = %"bank", status = 200_u16, "request");
        let outer = tracing::info_span!("http", method = %"GET", host = %"bank.test", route = tracing::field::Empty);
        outer.record("route", tracing::field::display("bank"));
        let _outer = outer.enter();
        tracing::warn!(reason = "upstream-failed", "request failed");
        let inner = tracing::debug_span!("token", credential = "oauth2");
        let _inner = inner.enter();
        let bare = tracing::error_span!("bare");
        let _bare = bare.enter();
        tracing::error!(target: "hyper", "no fields {}", 1);
        tracing::debug!(n = 1_u64);
        tracing::trace!("trace");
    });
    assert_eq!(ours, default);
    assert_eq!(ours.len(), 5, "{ours:#?}");
    assert_eq!(
        ours[0],
        r#" INFO countersign::proxy::access: request route=bank status=200"#
    );
    assert_eq!(
        ours[1],
        r#" WARN http{method=GET host=bank.test route=bank}: countersign::cli::log_event::tests: request failed reason="upstream-failed""#
    );
    assert!(
        ours[2].starts_with(r#"ERROR http{method=GET host=bank.test route=bank}:token{credential="oauth2"}:bare: hyper: no fields 1"#),
        "{}",
        ours[2]
    );
}
