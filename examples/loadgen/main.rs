//! A small open-loop HTTP/1.1 load generator for `benches/compare.py`
//! (wrk has no fixed-rate mode, wrk2 is not packaged by Debian, and wrk
//! cannot send CONNECT).
//!
//! `--conns` keep-alive connections, one thread each (blocking sockets, no
//! runtime in the measured path). At `--rate R` connection k sends its i-th
//! request at the scheduled time `start + k/R + i*conns/R`; a connection
//! still waiting for an answer sends late, and the latency is measured from
//! the scheduled time, so a stall counts for every request it delays
//! (coordinated omission is not hidden). `--rate 0` is closed loop: each
//! connection sends as soon as the previous answer is in (for req/s).
//!
//! Prints one JSON object: requests, errors, req/s, p50/p99/p99.9/max
//! latency in µs, and how far past their time the sends that waited for it
//! went out (the generator's own error: `std::thread::sleep`, i.e.
//! nanosleep with the kernel's timer slack, and the scheduler). `--timestamps FILE` writes one line per request: scheduled time
//! (µs since `start_unix`) and latency (µs).
//!
//! `cargo build --release --example loadgen`
#![allow(
    clippy::unwrap_used,
    clippy::panic,
    reason = "a benchmark tool: a panic is how a failed setup is reported"
)]

mod conn;

use std::fs::File;
use std::io::{BufWriter, Write as _};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use clap::Parser;

use conn::{Conn, Target};

#[derive(Parser)]
#[command(about = "Open-loop HTTP/1.1 load generator (benches/compare.py)")]
struct Args {
    /// Where to connect: host:port (the proxy's, with --connect).
    #[arg(long)]
    addr: String,
    /// Requests per second over all connections; 0 sends back to back.
    #[arg(long, default_value_t = 2000.0)]
    rate: f64,
    /// Seconds of load.
    #[arg(long, default_value_t = 5.0)]
    duration: f64,
    /// Keep-alive connections (one thread each).
    #[arg(long, default_value_t = 16)]
    conns: u32,
    /// Request path.
    #[arg(long, default_value = "/bench")]
    path: String,
    /// Host header, TLS server name and CONNECT host.
    #[arg(long, default_value = "127.0.0.1")]
    host: String,
    /// POST a body of this many bytes (0: GET).
    #[arg(long, default_value_t = 0)]
    body: usize,
    /// Speak TLS (inside the tunnel with --connect), trusting this PEM CA.
    #[arg(long)]
    tls_ca: Option<PathBuf>,
    /// Send `CONNECT HOST:PORT` first (this target) through the proxy at --addr.
    #[arg(long)]
    connect: Option<String>,
    /// Write "scheduled_us latency_us" per request to this file.
    #[arg(long)]
    timestamps: Option<PathBuf>,
}

#[derive(Clone, Copy)]
struct Sample {
    scheduled_us: u64,
    latency_us: u64,
    /// How far past its time a send went out after sleeping for it (the
    /// generator's own error); `None` when the connection was still busy
    /// with the previous answer (that delay is the target's, and counted
    /// in the latency).
    overshoot_us: Option<u64>,
}

struct Outcome {
    samples: Vec<Sample>,
    errors: u64,
    first_error: Option<String>,
}

fn request_bytes(args: &Args) -> Vec<u8> {
    let mut req = if args.body > 0 {
        format!(
            "POST {} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            args.path, args.host, args.body
        )
        .into_bytes()
    } else {
        format!("GET {} HTTP/1.1\r\nHost: {}\r\n\r\n", args.path, args.host).into_bytes()
    };
    req.resize(req.len() + args.body, b'x');
    req
}

fn worker(k: u32, args: &Args, target: &Target, req: &[u8], start: Instant) -> Outcome {
    let end = start + Duration::from_secs_f64(args.duration);
    let open_loop = args.rate > 0.0;
    let (offset, period) = if open_loop {
        (
            Duration::from_secs_f64(f64::from(k) / args.rate),
            Duration::from_secs_f64(f64::from(args.conns) / args.rate),
        )
    } else {
        (Duration::ZERO, Duration::ZERO)
    };
    let mut out = Outcome {
        samples: Vec::new(),
        errors: 0,
        first_error: None,
    };
    let mut conn: Option<Conn> = None;
    let mut i: u32 = 0;
    loop {
        let scheduled = if open_loop {
            start + offset + period * i
        } else {
            Instant::now()
        };
        if scheduled >= end {
            break;
        }
        i += 1;
        let now = Instant::now();
        let slept = scheduled > now;
        if slept {
            std::thread::sleep(scheduled - now);
        }
        let sent = Instant::now();
        let result = match conn.as_mut() {
            Some(c) => c.exchange(req),
            None => Conn::open(target).and_then(|mut c| {
                let r = c.exchange(req);
                conn = Some(c);
                r
            }),
        };
        match result {
            Ok(()) => out.samples.push(Sample {
                scheduled_us: (scheduled - start).as_micros() as u64,
                latency_us: scheduled.elapsed().as_micros() as u64,
                overshoot_us: slept.then(|| (sent - scheduled).as_micros() as u64),
            }),
            Err(e) => {
                out.errors += 1;
                out.first_error.get_or_insert(e);
                conn = None;
                // A refused connection must not spin: wait a little.
                std::thread::sleep(Duration::from_millis(10));
            }
        }
    }
    out
}

fn pct(sorted: &[u64], q: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

fn main() {
    let args = Args::parse();
    let target = Arc::new(Target::new(
        &args.addr,
        &args.host,
        args.connect.clone(),
        args.tls_ca.as_deref(),
    ));
    let req = Arc::new(request_bytes(&args));
    let args = Arc::new(args);
    let start_unix = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
        + 0.05;
    // Every thread starts from the same instant, a little ahead.
    let start = Instant::now() + Duration::from_millis(50);
    let threads: Vec<_> = (0..args.conns)
        .map(|k| {
            let (args, target, req) = (Arc::clone(&args), Arc::clone(&target), Arc::clone(&req));
            std::thread::spawn(move || worker(k, &args, &target, &req, start))
        })
        .collect();
    let mut samples = Vec::new();
    let (mut errors, mut first_error) = (0, None);
    for t in threads {
        let o = t.join().expect("a load thread panicked");
        samples.extend(o.samples);
        errors += o.errors;
        first_error = first_error.or(o.first_error);
    }
    let elapsed = start.elapsed().as_secs_f64();
    if let Some(path) = &args.timestamps {
        samples.sort_by_key(|s| s.scheduled_us);
        let mut f = BufWriter::new(File::create(path).unwrap());
        for s in &samples {
            writeln!(f, "{} {}", s.scheduled_us, s.latency_us).unwrap();
        }
        f.flush().unwrap();
    }
    let mut lat: Vec<u64> = samples.iter().map(|s| s.latency_us).collect();
    let mut late: Vec<u64> = samples.iter().filter_map(|s| s.overshoot_us).collect();
    lat.sort_unstable();
    late.sort_unstable();
    let report = serde_json::json!({
        "requests": lat.len(),
        "errors": errors,
        "first_error": first_error,
        "rps": lat.len() as f64 / elapsed,
        "p50_us": pct(&lat, 0.50),
        "p99_us": pct(&lat, 0.99),
        "p999_us": pct(&lat, 0.999),
        "max_us": lat.last().copied().unwrap_or(0),
        "overshoot_p50_us": pct(&late, 0.50),
        "overshoot_p99_us": pct(&late, 0.99),
        "start_unix": start_unix,
    });
    println!("{report}");
}
