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
    // A declared length past the limit reserves no more than a chunk.
    let mut h = BodyHash::default();
    h.want_message(1000, "a", Some(1 << 40));
    h.update(&[1; 100]);
    assert_eq!(h.message.as_ref().map(MessageCopy::capacity), Some(100));
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
