//! How the human log writes a whole line when the log is not a terminal:
//! the bytes tracing-subscriber's default (`Full`) format writes with ANSI
//! off, `PlainFields` and `PlainTime` (time, level, the spans the event is
//! in as `name{fields}:`, target, fields), but with the fixed parts written
//! as plain strings instead of through `core::fmt` and the default's styling
//! (which it runs for every level, span name and target even with colours
//! off). The access line is written once per request, so this is on the
//! request path.
//!
//! Events that came from the `log` crate are handed to the default format,
//! which rewrites their metadata (target, file, line) from the record first.

use std::fmt;

use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::format::{Format, Full, Writer};
use tracing_subscriber::fmt::time::FormatTime;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, FormattedFields};
use tracing_subscriber::registry::LookupSpan;

use super::log_format::PlainTime;

/// The event formatter (see the module's comment).
#[derive(Debug)]
pub struct PlainEvent {
    /// The default format with the same settings, for events from `log`.
    fallback: Format<Full, PlainTime>,
}

impl Default for PlainEvent {
    fn default() -> Self {
        PlainEvent {
            fallback: Format::default().with_timer(PlainTime),
        }
    }
}

impl<S, N> FormatEvent<S, N> for PlainEvent
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let meta = event.metadata();
        // The callsites tracing-log emits `log` records through.
        if meta.target() == "log" {
            return self.fallback.format_event(ctx, writer, event);
        }
        if PlainTime.format_time(&mut writer).is_err() {
            writer.write_str("<unknown time>")?;
        }
        writer.write_char(' ')?;
        writer.write_str(level_text(meta.level()))?;
        writer.write_char(' ')?;
        if let Some(scope) = ctx.event_scope() {
            let mut seen = false;
            for span in scope.from_root() {
                seen = true;
                writer.write_str(span.metadata().name())?;
                let extensions = span.extensions();
                if let Some(fields) = extensions.get::<FormattedFields<N>>() {
                    if !fields.is_empty() {
                        writer.write_char('{')?;
                        writer.write_str(fields)?;
                        writer.write_char('}')?;
                    }
                }
                writer.write_char(':')?;
            }
            if seen {
                writer.write_char(' ')?;
            }
        }
        writer.write_str(meta.target())?;
        writer.write_str(": ")?;
        ctx.format_fields(writer.by_ref(), event)?;
        writer.write_char('\n')
    }
}

/// The level as the default writes it: five characters, right-aligned.
fn level_text(level: &Level) -> &'static str {
    match *level {
        Level::TRACE => "TRACE",
        Level::DEBUG => "DEBUG",
        Level::INFO => " INFO",
        Level::WARN => " WARN",
        Level::ERROR => "ERROR",
    }
}

#[cfg(test)]
mod tests;
