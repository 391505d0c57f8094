//! A session's grant keeps its facts through every write of a renewal
//! (the presented mark, the rotated successor, an answer that rotates
//! nothing), updated by what each answer carries; and `end` hands the live
//! refresh token over once, then forgets the grant.

use serde_json::json;

use super::*;
use crate::creds::token::store::Facts;

fn session_grant(store: &Arc<Flaky>) -> RefreshGrant {
    let mut g = grant(store, &Arc::default());
    g.key = StoreKey::session("kr", "alice");
    g.seed = None;
    g.seed_sha256 = store::seed_hash(None);
    g.with_facts(FactRule::selecting(
        &["user_seq_no".to_string()],
        Some("login"),
    ))
}

fn authorized(token: &str) -> StoredGrant {
    let mut fields = serde_json::Map::new();
    fields.insert("user_seq_no".into(), json!("1100000001"));
    StoredGrant::new(store::seed_hash(None), Secret::new(token)).with_facts(Some(Facts {
        authorized_at: Some(10),
        scope: Some("login".into()),
        fields,
        ..Facts::default()
    }))
}

fn answer(rotated: Option<&str>, fields: serde_json::Value) -> Issued {
    Issued {
        value: HeaderValue::from_static("Bearer at"),
        lifetime: Duration::from_secs(60),
        refresh_token: rotated.map(Secret::new),
        id_token: None,
        fields: fields.as_object().unwrap().clone(),
    }
}

#[tokio::test]
async fn facts_go_through_the_mark_and_the_rotation() {
    let store = Arc::new(Flaky {
        grace: Some(Duration::from_secs(60)),
        ..Flaky::default()
    });
    store
        .save(&StoreKey::session("kr", "alice"), &authorized("rt-1"))
        .unwrap();
    let g = session_grant(&store);
    let s = Arc::clone(&store);
    let marked = std::sync::Mutex::new(None);
    g.rotate("kr/alice", |_| {
        *marked.lock().unwrap() = s.load(&StoreKey::session("kr", "alice")).unwrap();
        std::future::ready(Ok(answer(
            Some("rt-2"),
            json!({"scope": "login inquiry", "user_seq_no": "1100000001"}),
        )))
    })
    .await
    .unwrap();
    let marked = marked.lock().unwrap().clone().unwrap();
    assert!(marked.presented.is_some());
    assert_eq!(
        marked.facts,
        authorized("rt-1").facts,
        "the mark keeps them"
    );
    let stored = store
        .load(&StoreKey::session("kr", "alice"))
        .unwrap()
        .unwrap();
    assert_eq!(stored.refresh_token.expose(), "rt-2");
    let facts = stored.facts.unwrap();
    assert_eq!(facts.authorized_at, Some(10));
    assert!(facts.renewed_at.is_some());
    assert_eq!(facts.scope.as_deref(), Some("login inquiry"));
    assert_eq!(facts.fields["user_seq_no"], "1100000001");
}

#[tokio::test]
async fn an_answer_that_rotates_nothing_still_updates_the_facts() {
    let store = Arc::new(Flaky::default());
    store
        .save(&StoreKey::session("kr", "alice"), &authorized("rt-1"))
        .unwrap();
    let g = session_grant(&store);
    g.rotate("kr/alice", |_| {
        std::future::ready(Ok(answer(None, json!({"user_seq_no": "1100000009"}))))
    })
    .await
    .unwrap();
    let stored = store
        .load(&StoreKey::session("kr", "alice"))
        .unwrap()
        .unwrap();
    assert_eq!(stored.refresh_token.expose(), "rt-1", "kept");
    let facts = stored.facts.unwrap();
    assert_eq!(facts.fields["user_seq_no"], "1100000009");
    assert!(facts.renewed_at.is_some());
}

#[tokio::test]
async fn end_hands_over_the_unsaved_token_first_then_forgets() {
    let store = Arc::new(Flaky::default());
    store
        .save(&StoreKey::session("kr", "alice"), &authorized("rt-1"))
        .unwrap();
    let g = session_grant(&store);
    // A rotated token the store refused is the live one.
    *g.slot.lock().await = Some(crate::creds::token::store::Unsaved {
        grant: authorized("rt-2"),
        marked: None,
        epoch: None,
    });
    let handed = g
        .end(|token| async move { token.expose().to_string() })
        .await;
    assert_eq!(handed.unwrap().as_deref(), Some("rt-2"));
    assert!(store
        .load(&StoreKey::session("kr", "alice"))
        .unwrap()
        .is_none());
    assert!(g.slot.lock().await.is_none());
    let again = g
        .end(|token| async move { token.expose().to_string() })
        .await;
    assert_eq!(again.unwrap(), None, "nothing left to end");
}
