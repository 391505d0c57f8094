//! The one pass: every digest, stream and copy asked for, and only those.

use super::*;

#[test]
fn one_pass_feeds_every_wanted_digest() {
    let body = b"{\"a\":1}";
    let mut h = BodyHash::default();
    h.want_md5(b"application/json");
    h.want_sha256();
    h.want_sha512();
    for chunk in body.chunks(3) {
        h.update(chunk);
    }
    let d = h.finish();
    let mut md5 = Md5::new();
    md5.update(b"application/json");
    md5.update(body);
    assert_eq!(d.md5(), Some(md5.finalize().into()));
    assert_eq!(d.sha256(), Some(Sha256::digest(body).into()));
    assert_eq!(d.sha512(), Some(Sha512::digest(body).into()));
}

#[test]
fn only_what_was_asked_is_computed() {
    let mut h = BodyHash::default();
    assert!(!h.is_wanted());
    h.want_sha256();
    h.update(b"x");
    let d = h.finish();
    assert_eq!(d.md5(), None);
    assert!(d.sha256().is_some());
    assert!(matches!(BodyHash::default().finish(), BodyDigest::Absent));
    let mut h = BodyHash::default();
    h.want_length();
    assert!(h.is_wanted(), "the length alone asks for the body");
    h.update(b"xy");
    assert_eq!(h.finish().sha512(), None);
}

#[test]
fn the_message_is_kept_whole_under_the_smaller_limit_and_dropped_past_it() {
    let mut h = BodyHash::default();
    h.want_message(10, "a", None);
    h.want_message(6, "b", None);
    h.want_message(8, "c", None);
    assert_eq!(h.message_limit(), Some((6, "b")));
    assert!(h.is_wanted());
    h.update(b"abc");
    h.update(b"def");
    let d = h.finish();
    assert_eq!(d.message().as_deref(), Some(&b"abcdef"[..]));
    assert_eq!(d.sha256(), None, "not asked for");

    let mut h = BodyHash::default();
    h.want_message(4, "a", None);
    h.update(b"abc");
    h.update(b"de");
    h.update(b"f");
    assert_eq!(h.finish().message(), None, "over the limit: not kept");
}

#[test]
fn a_declared_length_within_the_limit_is_reserved_once() {
    let mut h = BodyHash::default();
    h.want_message(1000, "a", Some(300));
    h.update(&[1; 100]);
    let cap = h.message.as_ref().map(MessageCopy::capacity);
    assert_eq!(cap, Some(300));
    // A declared length past the limit reserves no more than the limit.
    let mut h = BodyHash::default();
    h.want_message(1000, "a", Some(1 << 40));
    h.update(&[1; 100]);
    assert_eq!(h.message.as_ref().map(MessageCopy::capacity), Some(1000));
}

/// The copy takes what it allocates from the process-wide budget, gives
/// it back when the last handle on the body is dropped, and past the
/// budget is given up (counted as a refusal) rather than grown.
#[test]
fn the_copy_takes_its_memory_from_the_budget_and_gives_it_back() {
    use crate::body::SpoolUsage;
    use std::sync::Arc;
    let usage = Arc::new(SpoolUsage::default());
    let mut first = BodyHash::default();
    first.want_message(1000, "a", Some(600));
    first.budget_message(|| usage.hold(), 1000);
    first.update(&[1; 100]);
    assert_eq!(usage.memory(), 600, "the declared length, taken at once");
    first.update(&[2; 500]);
    assert!(first.spent().is_none());

    // Unknown length: grows within what is left, then is refused.
    let mut second = BodyHash::default();
    second.want_message(1000, "b", None);
    second.budget_message(|| usage.hold(), 1000);
    second.update(&[3; 300]);
    assert_eq!(
        usage.memory(),
        900,
        "what was left cannot double: just enough"
    );
    assert!(second.spent().is_none());
    second.update(&[4; 200]);
    let spent = second.spent().expect("over the budget").clone();
    assert_eq!((spent.credential.as_str(), spent.budget), ("b", 1000));
    assert_eq!(usage.memory(), 600, "the refused copy gave its share back");
    assert_eq!(usage.refusals(), 1);
    assert_eq!(second.finish().message(), None);

    let kept = first.finish().message().unwrap();
    let again = kept.clone();
    assert_eq!(&kept[..], [&[1; 100][..], &[2; 500][..]].concat());
    drop(kept);
    assert_eq!(usage.memory(), 600, "held while any handle is");
    drop(again);
    assert_eq!(usage.memory(), 0);
}

/// Shared with the spool's bytes, the copy gives its share back at once.
#[test]
fn a_shared_copy_gives_its_share_back() {
    use crate::body::SpoolUsage;
    use std::sync::Arc;
    let usage = Arc::new(SpoolUsage::default());
    let mut h = BodyHash::default();
    h.want_message(100, "a", None);
    h.budget_message(|| usage.hold(), 1 << 20);
    h.update(b"{}");
    assert!(usage.memory() >= 2);
    let d = h.finish().sharing(Some(Bytes::from_static(b"{}")));
    assert_eq!(usage.memory(), 0);
    assert_eq!(d.message().as_deref(), Some(&b"{}"[..]));
}

/// No copy asked for: no hold is even made.
#[test]
fn no_copy_no_hold() {
    let mut h = BodyHash::default();
    h.want_sha256();
    h.budget_message(|| unreachable!("no copy, no hold"), 0);
    h.update(b"x");
    assert!(h.spent().is_none());
}

#[test]
fn a_body_the_spool_keeps_in_memory_is_shared_not_held_twice() {
    let mut h = BodyHash::default();
    h.want_message(100, "a", None);
    h.update(b"{\"a\":1}");
    let spooled = Bytes::from_static(b"{\"a\":1}");
    let d = h.finish().sharing(Some(spooled.clone()));
    let kept = d.message().unwrap();
    assert_eq!(kept.as_ptr(), spooled.as_ptr(), "the spool's bytes");
    // Nothing to share when the spool went to disk, or nobody asked.
    let mut h = BodyHash::default();
    h.want_sha256();
    h.update(b"x");
    assert_eq!(h.finish().sharing(Some(spooled)).message(), None);
}
