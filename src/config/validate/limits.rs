//! Rules for the global bounds in `[proxy]`: each value has a range where
//! it protects without breaking anything, and a problem names its key.

use std::ops::RangeInclusive;
use std::time::Duration;

use super::super::limits::Limits;
use super::super::raw::RawProxy;
use super::Checker;

const MAX_CONNECTIONS: RangeInclusive<i64> = 1..=1_000_000;
const SPOOL_MEMORY_TOTAL_MAX: u64 = 64 << 30;
const BODY_IDLE_TIMEOUT_MAX: Duration = Duration::from_secs(3600);
const BODY_TIMEOUT_MAX: Duration = Duration::from_secs(24 * 3600);
const H2_MAX_STREAMS: RangeInclusive<i64> = 1..=10_000;
/// One HTTP/2 frame (16 KiB) at least; at most 16 MiB, far below the
/// protocol's 2^31-1.
const H2_WINDOW: RangeInclusive<u64> = (16 << 10)..=(16 << 20);

impl Checker<'_> {
    pub(super) fn limits(&mut self, raw: &mut RawProxy) -> Limits {
        let d = Limits::default();
        let max_connections = self.count(
            "proxy.max_connections",
            raw.max_connections,
            MAX_CONNECTIONS,
            d.max_connections as i64,
        );
        let spool_memory_total = self.size(
            "proxy.spool_memory_total",
            raw.spool_memory_total.take(),
            d.spool_memory_total,
        );
        if spool_memory_total > SPOOL_MEMORY_TOTAL_MAX {
            self.problem("proxy.spool_memory_total", "must be at most 64GiB");
        }
        let body_idle_timeout = self.duration(
            "proxy.body_idle_timeout",
            raw.body_idle_timeout.take(),
            d.body_idle_timeout,
        );
        let body_timeout = self.duration(
            "proxy.body_timeout",
            raw.body_timeout.take(),
            d.body_timeout,
        );
        if body_idle_timeout > BODY_IDLE_TIMEOUT_MAX {
            self.problem("proxy.body_idle_timeout", "must be at most 1h");
        }
        if body_timeout > BODY_TIMEOUT_MAX {
            self.problem("proxy.body_timeout", "must be at most 24h");
        }
        if body_idle_timeout > body_timeout {
            self.problem(
                "proxy.body_idle_timeout",
                format!("must not be longer than proxy.body_timeout ({body_timeout:?})"),
            );
        }
        let h2_max_streams = self.count(
            "proxy.h2_max_streams",
            raw.h2_max_streams,
            H2_MAX_STREAMS,
            i64::from(d.h2_max_streams),
        );
        let h2_window = self.size(
            "proxy.h2_window",
            raw.h2_window.take(),
            u64::from(d.h2_window),
        );
        if !H2_WINDOW.contains(&h2_window) {
            self.problem("proxy.h2_window", "must be between 16KiB and 16MiB");
        }
        Limits {
            max_connections: usize::try_from(max_connections).unwrap_or(d.max_connections),
            spool_memory_total,
            body_idle_timeout,
            body_timeout,
            h2_max_streams: u32::try_from(h2_max_streams).unwrap_or(d.h2_max_streams),
            h2_window: u32::try_from(h2_window).unwrap_or(d.h2_window),
        }
    }

    /// A whole number in `range`; the default when absent or wrong.
    pub(super) fn count(
        &mut self,
        path: &str,
        raw: Option<i64>,
        range: RangeInclusive<i64>,
        default: i64,
    ) -> i64 {
        match raw {
            None => default,
            Some(n) if range.contains(&n) => n,
            Some(_) => {
                self.problem(
                    path,
                    format!("must be between {} and {}", range.start(), range.end()),
                );
                default
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::validate;
    use super::*;

    fn limits(toml: &str) -> Result<Limits, Vec<(String, String)>> {
        let dir = tempfile::tempdir().unwrap();
        validate(toml, dir.path())
            .map(|c| c.proxy.limits)
            .map_err(|e| {
                e.problems
                    .into_iter()
                    .map(|p| (p.path, p.message))
                    .collect()
            })
    }

    #[test]
    fn defaults_protect_a_small_pod() {
        let l = limits("").unwrap();
        assert_eq!(l, Limits::default());
        assert_eq!(l.spool_memory_total, 32 << 20);
        assert_eq!(l.max_connections, 512);
    }

    #[test]
    fn every_key_is_read() {
        let l = limits(
            "[proxy]\nmax_connections = 7\nspool_memory_total = \"3MiB\"\nbody_idle_timeout = \"250ms\"\nbody_timeout = \"2s\"\nh2_max_streams = 4\nh2_window = \"64KiB\"\n",
        )
        .unwrap();
        assert_eq!(
            l,
            Limits {
                max_connections: 7,
                spool_memory_total: 3 << 20,
                body_idle_timeout: Duration::from_millis(250),
                body_timeout: Duration::from_secs(2),
                h2_max_streams: 4,
                h2_window: 64 << 10,
            }
        );
    }

    #[test]
    fn zero_where_zero_breaks_things_is_refused_by_key() {
        let e = limits(
            "[proxy]\nmax_connections = 0\nbody_idle_timeout = \"0s\"\nbody_timeout = \"0ms\"\nh2_max_streams = 0\nh2_window = 0\n",
        )
        .unwrap_err();
        let keys: Vec<&str> = e.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            keys,
            [
                "proxy.max_connections",
                "proxy.body_idle_timeout",
                "proxy.body_timeout",
                "proxy.h2_max_streams",
                "proxy.h2_window"
            ],
            "{e:?}"
        );
    }

    #[test]
    fn absurd_values_are_refused_by_key() {
        let e = limits(
            "[proxy]\nmax_connections = 99999999\nspool_memory_total = \"100GiB\"\nbody_idle_timeout = \"2h\"\nbody_timeout = \"48h\"\nh2_max_streams = -1\nh2_window = \"1GiB\"\n",
        )
        .unwrap_err();
        let keys: Vec<&str> = e.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            keys,
            [
                "proxy.max_connections",
                "proxy.spool_memory_total",
                "proxy.body_idle_timeout",
                "proxy.body_timeout",
                "proxy.h2_max_streams",
                "proxy.h2_window"
            ],
            "{e:?}"
        );
    }

    #[test]
    fn an_idle_gap_longer_than_the_whole_deadline_is_refused() {
        let e =
            limits("[proxy]\nbody_idle_timeout = \"10m\"\nbody_timeout = \"1m\"\n").unwrap_err();
        assert_eq!(e.len(), 1, "{e:?}");
        assert_eq!(e[0].0, "proxy.body_idle_timeout");
        assert!(e[0].1.contains("proxy.body_timeout"), "{e:?}");
    }

    #[test]
    fn a_total_spool_budget_of_zero_sends_every_body_to_disk() {
        assert_eq!(
            limits("[proxy]\nspool_memory_total = 0\n")
                .unwrap()
                .spool_memory_total,
            0
        );
    }
}
