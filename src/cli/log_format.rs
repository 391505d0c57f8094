//! How the human log format writes an event's and a span's fields, and its
//! timestamp, when the log is not a terminal (a file, a pipe, a
//! container's stderr): the same text as tracing-subscriber's default
//! (`name=value`, strings quoted, the message first and unquoted; RFC 3339
//! UTC time with microseconds), without the styling machinery that default
//! runs for every field name even with colours off (about 8k of the 15k
//! instructions the access log line cost per request), and with the date
//! and time of day formatted once a second.
//!
//! An event's or a span's fields are gathered in a text of the thread's own
//! and handed to the line in one piece. Each thread keeps that text between
//! lines up to 4 KiB (`SCRATCH_KEEP`); a longer one is freed after use. So
//! the log holds at most 4 KiB per thread that logged: the runtime's
//! workers, and blocking-pool threads while they live (tokio frees an idle
//! one after 10 s).
//!
//! Control characters that could drive a terminal (ESC, BEL, BS, FF, DEL,
//! C1) are escaped in messages and in values written with `%` (Display),
//! as the default does for messages; line breaks too, so one event stays
//! one line.

use std::fmt::{self, Write};

use tracing::field::{Field, Visit};
use tracing_subscriber::field::RecordFields;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::time::FormatTime;
use tracing_subscriber::fmt::FormatFields;

/// The field formatter (see the module's comment).
#[derive(Debug, Clone, Copy, Default)]
pub struct PlainFields;

impl<'writer> FormatFields<'writer> for PlainFields {
    fn format_fields<R: RecordFields>(
        &self,
        mut writer: Writer<'writer>,
        fields: R,
    ) -> fmt::Result {
        // The fields are gathered in this thread's scratch text and handed
        // to `writer` in one piece: each piece written to a `Writer` is a
        // call through `dyn Write`, and a span's new text would grow one
        // piece at a time.
        let gathered = SCRATCH.try_with(|scratch| {
            // Busy: a value's `Display` logged something itself.
            let mut text = scratch.try_borrow_mut().ok()?;
            text.clear();
            let result = visit(&mut *text, &fields).and_then(|()| writer.write_str(&text));
            if text.capacity() > SCRATCH_KEEP {
                *text = String::new();
            }
            Some(result)
        });
        match gathered {
            Ok(Some(result)) => result,
            _ => visit(&mut writer, &fields),
        }
    }
}

/// The largest scratch text a thread keeps between lines.
const SCRATCH_KEEP: usize = 4 << 10;

thread_local! {
    static SCRATCH: std::cell::RefCell<String> = const { std::cell::RefCell::new(String::new()) };
}

fn visit<W: Write>(writer: W, fields: &impl RecordFields) -> fmt::Result {
    let mut visitor = PlainVisitor {
        writer,
        empty: true,
        result: Ok(()),
    };
    fields.record(&mut visitor);
    visitor.result
}

struct PlainVisitor<W> {
    writer: W,
    /// Nothing written yet: no space before the next field.
    empty: bool,
    result: fmt::Result,
}

impl<W: Write> PlainVisitor<W> {
    /// Writes the separator and `name=` (nothing for the message).
    fn start(&mut self, field: &Field) -> fmt::Result {
        if !self.empty {
            self.writer.write_char(' ')?;
        }
        self.empty = false;
        match field.name() {
            "message" => Ok(()),
            name => {
                self.writer
                    .write_str(name.strip_prefix("r#").unwrap_or(name))?;
                self.writer.write_char('=')
            }
        }
    }

    fn field(&mut self, field: &Field, value: impl FnOnce(&mut W) -> fmt::Result) {
        if self.result.is_ok() {
            self.result = self.start(field).and_then(|()| value(&mut self.writer));
        }
    }
}

impl<W: Write> Visit for PlainVisitor<W> {
    fn record_str(&mut self, field: &Field, value: &str) {
        let message = field.name() == "message";
        self.field(field, |w| match message {
            true => Escaping(w).write_str(value),
            // Quoted and escaped, as the default writes strings.
            false => write_quoted(w, value),
        });
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.field(field, |w| w.write_str(Decimal::new(value).as_str()));
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.field(field, |w| {
            if value < 0 {
                w.write_char('-')?;
            }
            w.write_str(Decimal::new(value.unsigned_abs()).as_str())
        });
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.field(field, |w| w.write_str(if value { "true" } else { "false" }));
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.field(field, |w| {
            write!(Escaping(&mut *w), "{value}")?;
            let mut source = value.source();
            if source.is_some() {
                write!(w, " {}.sources=[", field.name())?;
            }
            let mut first = true;
            while let Some(s) = source {
                if !first {
                    w.write_str(", ")?;
                }
                first = false;
                write!(Escaping(&mut *w), "{s}")?;
                source = s.source();
            }
            if !first {
                w.write_char(']')?;
            }
            Ok(())
        });
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.field(field, |w| write!(Escaping(w), "{value:?}"));
    }
}

/// `value` as `{:?}` writes it, quoted. Printable ASCII other than `"` and
/// `\` is written as it is, without `core::fmt`'s escaping machinery (most
/// values: names, kinds, reasons); anything else goes through `{:?}`.
fn write_quoted(w: &mut impl Write, value: &str) -> fmt::Result {
    if value
        .bytes()
        .all(|b| matches!(b, b' '..=b'~') && b != b'"' && b != b'\\')
    {
        w.write_char('"')?;
        w.write_str(value)?;
        return w.write_char('"');
    }
    write!(w, "{value:?}")
}

/// Writes through to `0`, escaping the characters the module names.
struct Escaping<'a, W: Write>(&'a mut W);

impl<W: Write> Write for Escaping<'_, W> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        // Every character escaped is one of these bytes or starts with
        // 0xC2 (C1 controls): most text has none and goes through whole.
        if !s
            .bytes()
            .any(|b| matches!(b, 0x07 | 0x08 | 0x0a | 0x0c | 0x0d | 0x1b | 0x7f | 0xc2))
        {
            return self.0.write_str(s);
        }
        let mut rest = s;
        while let Some(at) = rest.find(needs_escape) {
            self.0.write_str(&rest[..at])?;
            let c = rest[at..].chars().next().unwrap_or(' ');
            match c {
                '\n' => self.0.write_str("\\n")?,
                '\r' => self.0.write_str("\\r")?,
                c => write!(self.0, "\\u{{{:x}}}", u32::from(c))?,
            }
            rest = &rest[at + c.len_utf8()..];
        }
        self.0.write_str(rest)
    }
}

fn needs_escape(c: char) -> bool {
    matches!(
        c,
        '\x1b' | '\x07' | '\x08' | '\x0c' | '\x7f' | '\n' | '\r' | '\u{80}'..='\u{9f}'
    )
}

/// The default's timestamp (`2026-12-02T01:36:03.147319Z`), with the part
/// before the fraction formatted once a second per thread.
#[derive(Debug, Clone, Copy, Default)]
pub struct PlainTime;

impl FormatTime for PlainTime {
    fn format_time(&self, w: &mut Writer<'_>) -> fmt::Result {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        let secs = now.as_secs();
        SECOND.with(|cached| {
            let mut cached = cached.borrow_mut();
            if cached.0 != secs || cached.1.is_empty() {
                cached.1 = second_text(secs);
                cached.0 = secs;
            }
            w.write_str(&cached.1)
        })?;
        let micros = Decimal::new(u64::from(now.subsec_micros()) + 1_000_000);
        // "1" then six digits: the leading one keeps the zeros.
        w.write_char('.')?;
        w.write_str(&micros.as_str()[1..])?;
        w.write_char('Z')
    }
}

thread_local! {
    static SECOND: std::cell::RefCell<(u64, String)> = const { std::cell::RefCell::new((0, String::new())) };
}

/// `YYYY-MM-DDTHH:MM:SS` (UTC) of `secs` since the Unix epoch.
fn second_text(secs: u64) -> String {
    let days = secs / 86_400;
    let of_day = secs % 86_400;
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}",
        of_day / 3600,
        of_day % 3600 / 60,
        of_day % 60
    )
}

/// The proleptic Gregorian date `days` after 1970-01-01 (the usual
/// era-based conversion: 400-year eras of 146,097 days, years starting in
/// March so that the leap day comes last).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let day_of_era = z % 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let mp = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = year_of_era + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

/// A `u64` in decimal, in a buffer on the stack.
struct Decimal {
    digits: [u8; 20],
    start: usize,
}

impl Decimal {
    fn new(mut value: u64) -> Decimal {
        let mut digits = [b'0'; 20];
        let mut start = digits.len();
        loop {
            start -= 1;
            digits[start] = b'0' + (value % 10) as u8;
            value /= 10;
            if value == 0 {
                break;
            }
        }
        Decimal { digits, start }
    }

    fn as_str(&self) -> &str {
        // Only ASCII digits were written.
        std::str::from_utf8(&self.digits[self.start..]).unwrap_or("?")
    }
}

#[cfg(test)]
mod tests;
