//! One dial at a time to an upstream known to pick h2.
//!
//! hyper-util's pool, offering both protocols, only learns that a
//! connection is h2 once it is made; until then every request that finds
//! no connection dials its own, and all but one of those connections are
//! closed when the first h2 one is pooled. Whenever an upstream's h2
//! connection ends (a GOAWAY after its request limit, an idle timeout),
//! every request in flight would dial again at once: with nginx's default
//! of 1000 requests per connection and 32 requests in flight, about 30
//! handshakes per 1000 requests instead of one.
//!
//! So once a dial to an authority has chosen h2, the next dial to it goes
//! alone: the others wait for it; when it gives an h2 connection the pool
//! hands that one to their requests, and their own dials end unmade. When
//! it fails or chooses HTTP/1.1, they dial as before (and a dial that
//! chooses HTTP/1.1 forgets the authority's h2).
//!
//! ```text
//! turn(authority): not known h2        -> Free   (dial)
//!                  known, none under way -> Dial   (dial; tell the others)
//!                  known, one under way  -> Wait   (h2 came: stand down;
//!                                                   else dial)
//! ```

use std::collections::HashMap;
use std::sync::Mutex;

use tokio::sync::watch;

/// How the dial under way ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialled {
    Pending,
    H2,
    /// Failed, or chose HTTP/1.1.
    Other,
}

#[derive(Debug, Default)]
pub struct DialGate {
    /// By authority (`host:port` as the URI has it).
    known: Mutex<HashMap<String, Known>>,
}

#[derive(Debug)]
struct Known {
    h2: bool,
    /// The dial under way, if any (its outcome `Pending` while it is).
    dialling: Option<watch::Receiver<Dialled>>,
}

/// What a dial to an authority should do.
#[derive(Debug)]
pub enum Turn {
    Free,
    Dial(Ticket),
    Wait(watch::Receiver<Dialled>),
}

/// The dial under way; tells the waiting dials how it ended (`Other` if
/// dropped unfinished).
#[derive(Debug)]
pub struct Ticket(watch::Sender<Dialled>);

impl Ticket {
    pub fn done(self, h2: bool) {
        self.0
            .send_replace(if h2 { Dialled::H2 } else { Dialled::Other });
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        self.0.send_if_modified(|d| {
            let pending = *d == Dialled::Pending;
            if pending {
                *d = Dialled::Other;
            }
            pending
        });
    }
}

impl DialGate {
    pub fn turn(&self, authority: &str) -> Turn {
        let mut known = self.known.lock().unwrap_or_else(|p| p.into_inner());
        let Some(entry) = known.get_mut(authority).filter(|k| k.h2) else {
            return Turn::Free;
        };
        if let Some(rx) = &entry.dialling {
            if *rx.borrow() == Dialled::Pending {
                return Turn::Wait(rx.clone());
            }
        }
        let (tx, rx) = watch::channel(Dialled::Pending);
        entry.dialling = Some(rx);
        Turn::Dial(Ticket(tx))
    }

    /// A dial to `authority` made a connection that chose h2, or not.
    pub fn learn(&self, authority: &str, h2: bool) {
        let mut known = self.known.lock().unwrap_or_else(|p| p.into_inner());
        match known.get_mut(authority) {
            Some(entry) => entry.h2 = h2,
            None if h2 => {
                known.insert(authority.to_string(), Known { h2, dialling: None });
            }
            None => {}
        }
    }
}

/// Waits for the dial under way; whether it gave an h2 connection.
pub async fn gave_h2(mut rx: watch::Receiver<Dialled>) -> bool {
    match rx.wait_for(|d| *d != Dialled::Pending).await {
        Ok(d) => *d == Dialled::H2,
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_authority_not_known_to_pick_h2_dials_freely() {
        let gate = DialGate::default();
        assert!(matches!(gate.turn("a:443"), Turn::Free));
        gate.learn("a:443", false);
        assert!(matches!(gate.turn("a:443"), Turn::Free));
    }

    #[tokio::test]
    async fn once_known_one_dials_and_the_others_hear_how_it_went() {
        let gate = DialGate::default();
        gate.learn("a:443", true);
        let Turn::Dial(ticket) = gate.turn("a:443") else {
            panic!("the first dial goes")
        };
        let Turn::Wait(rx) = gate.turn("a:443") else {
            panic!("the second waits")
        };
        assert!(matches!(gate.turn("b:443"), Turn::Free));
        ticket.done(true);
        assert!(gave_h2(rx).await);
        // Finished: the next dial goes again.
        let Turn::Dial(ticket) = gate.turn("a:443") else {
            panic!("a new dial goes")
        };
        let Turn::Wait(rx) = gate.turn("a:443") else {
            panic!("waits")
        };
        drop(ticket);
        assert!(!gave_h2(rx).await, "a dial that failed gave no h2");
        gate.learn("a:443", false);
        assert!(matches!(gate.turn("a:443"), Turn::Free));
    }
}
