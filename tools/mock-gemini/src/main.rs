//! The `mock-gemini` binary: parses flags, starts the server on its own runtime, prints
//! `listening on http://HOST:PORT` once bound and serves until SIGTERM/SIGINT.

use clap::Parser;
use mock_gemini::{MockGemini, Options};
use std::io::Write;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

/// A mock of Google's Gemini API (AI Studio) for tests and benchmarks.
#[derive(Parser, Debug)]
#[command(name = "mock-gemini", version)]
struct Args {
    #[arg(long, default_value_t = IpAddr::V4(Ipv4Addr::LOCALHOST))]
    host: IpAddr,
    #[arg(long, default_value_t = 0)]
    port: u16,
    /// Delay before response headers, in milliseconds.
    #[arg(long, default_value_t = 0)]
    latency_ms: u64,
    /// Events per streamed answer.
    #[arg(long, default_value_t = 3)]
    stream_chunks: usize,
    /// Delay between streamed events, in milliseconds.
    #[arg(long, default_value_t = 0)]
    chunk_delay_ms: u64,
    /// Answer a fixed text instead of echoing the last user text.
    #[arg(long)]
    no_echo: bool,
    /// Do not record requests (GET /__mock/requests stays empty).
    #[arg(long)]
    no_record: bool,
    /// Tokio worker threads.
    #[arg(long, default_value_t = 1)]
    threads: usize,
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.threads.max(1))
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let opts = Options {
            addr: SocketAddr::new(args.host, args.port),
            latency_ms: args.latency_ms,
            stream_chunks: args.stream_chunks,
            chunk_delay_ms: args.chunk_delay_ms,
            echo: !args.no_echo,
            record: !args.no_record,
        };
        let mock = MockGemini::start_with(opts).await?;
        let mut out = std::io::stdout().lock();
        writeln!(out, "listening on {}", mock.url())?;
        out.flush()?;
        drop(out);
        shutdown_signal().await?;
        drop(mock);
        Ok(())
    })
}

async fn shutdown_signal() -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate())?;
        tokio::select! {
            r = tokio::signal::ctrl_c() => r,
            _ = term.recv() => Ok(()),
        }
    }
    #[cfg(not(unix))]
    {
        tokio::signal::ctrl_c().await
    }
}
