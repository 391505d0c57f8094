//! The person's part of the consent: the scripted browser from the app's
//! ticket, through countersign's start and the provider's login and
//! consent pages, up to the provider's answer to countersign's callback.

use super::*;
use crate::browser::{forms, Browser, Page};

/// What the person does: from the app's ticket for `session` (with the
/// consent `intent`), through countersign's start, the provider's login
/// and consent pages, up to the provider's redirect back to countersign.
/// Returns where the provider sent the browser back (a redirect's URL, not
/// yet requested, or the page of a form_post) and the browser.
pub(super) async fn consent(
    sidecar: &Sidecar,
    server: &OidcProvider,
    session: &str,
) -> (String, Browser) {
    let (page, browser) = consent_page(sidecar, server, session).await;
    assert!(
        page.url.starts_with(REDIRECT_URI),
        "the provider sent the browser back: {}\n{:?}\n{}",
        page.url,
        browser.visited,
        server.log()
    );
    (page.url, browser)
}

/// `consent` for a credential that signs no request object (no intent).
pub(super) async fn consent_without_intent(
    sidecar: &Sidecar,
    server: &OidcProvider,
    session: &str,
) -> (String, Browser) {
    let ticket = format!("/oauth2/api/authorize?session={session}");
    let (page, browser) = consent_page_from(sidecar, server, &ticket).await;
    assert!(
        page.url.starts_with(REDIRECT_URI),
        "the provider sent the browser back: {}\n{:?}\n{}",
        page.url,
        browser.visited,
        server.log()
    );
    (page.url, browser)
}

pub(super) async fn consent_page(
    sidecar: &Sidecar,
    server: &OidcProvider,
    session: &str,
) -> (Page, Browser) {
    let ticket = format!("/oauth2/api/authorize?session={session}&intent={INTENT}");
    consent_page_from(sidecar, server, &ticket).await
}

/// The browser countersign's start sends, from the app's ticket request
/// to `ticket` (the control path and query), and the start's URL.
pub(super) async fn started(sidecar: &Sidecar, ticket: &str) -> (Browser, String) {
    let ticket = send(
        sidecar.control(),
        http::Request::post(ticket)
            .header("host", "admin")
            .body(http_body_util::Full::new(bytes::Bytes::new()))
            .unwrap(),
    )
    .await;
    assert_eq!(ticket.status, 200, "{ticket:?}");
    let ticket: serde_json::Value = serde_json::from_str(&ticket.body).unwrap();
    let mut browser = Browser::default();
    browser.map("countersign.test", sidecar.browser());
    let start = format!(
        "https://countersign.test{}",
        ticket["start"].as_str().unwrap()
    );
    (browser, start)
}

/// `consent_page` from the app's ticket request to `ticket` (the control
/// path and query).
pub(super) async fn consent_page_from(
    sidecar: &Sidecar,
    server: &OidcProvider,
    ticket: &str,
) -> (Page, Browser) {
    let (mut browser, start) = started(sidecar, ticket).await;
    // countersign's start redirects to the provider, which shows its login
    // page (after its own redirect to the interaction).
    let mut page = browser.walk(&start, REDIRECT_URI).await;
    for (step, prompt) in ["login", "consent"].iter().enumerate() {
        assert_eq!(
            page.answer.status,
            200,
            "{prompt}: {:?}\n{:?}\n{}",
            page.answer,
            browser.visited,
            server.log()
        );
        let mut form = forms(&page.answer.body)
            .into_iter()
            .find(|f| f.fields.iter().any(|(n, v)| n == "prompt" && v == prompt))
            .unwrap_or_else(|| panic!("step {step}: no {prompt} form in {}", page.answer.body));
        if *prompt == "login" {
            form.set("login", "interop-user");
            form.set("password", "any");
        }
        page = browser.submit(&page.url, &form, REDIRECT_URI).await;
    }
    (page, browser)
}
