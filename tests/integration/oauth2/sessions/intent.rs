//! The app's consent id (`intent`) when it asks for a ticket: only a
//! credential that signs its request objects can carry one, and a
//! malformed one is refused before anything is kept.

use super::*;

#[tokio::test]
async fn an_intent_is_refused_without_a_signed_request_object_or_when_malformed() {
    let (_tokens, _upstream, sidecar) = setup().await;
    let answer = admin_with(
        &sidecar,
        "POST",
        "/oauth2/bank/authorize?session=alice&intent=urn-bank-intent-1",
        None,
    )
    .await;
    assert_eq!(answer.status, 400, "{answer:?}");
    assert!(answer.body.contains("request_object"), "{}", answer.body);
    for bad in ["a%20b", "x%0Ay", "%3Cscript%3E"] {
        let answer = admin_with(
            &sidecar,
            "POST",
            &format!("/oauth2/bank/authorize?session=alice&intent={bad}"),
            None,
        )
        .await;
        assert_eq!(answer.status, 400, "{bad}: {answer:?}");
        assert!(answer.body.contains("intent"), "{}", answer.body);
    }
    // Without one, the plain flow is unchanged.
    let answer = admin_with(
        &sidecar,
        "POST",
        "/oauth2/bank/authorize?session=alice",
        None,
    )
    .await;
    assert_eq!(answer.status, 200, "{answer:?}");
}
