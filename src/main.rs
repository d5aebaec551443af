//! The `hajimi` binary: parse flags, load configuration, start logging, serve until a
//! signal. Everything else lives in the library.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use hajimi::config::{CliOverrides, Config};

/// jemalloc rather than glibc's malloc: glibc keeps what a large request freed in its arenas
/// (~105 MB per worker thread after a 54 MB chat, never returned); jemalloc gives freed pages
/// back to the system (docs/benchmarks.md, "Memory per request"). Tuned in [`tune_allocator`].
/// Other targets (musl static builds, macOS) keep their system allocator.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// An OpenAI/Gemini-compatible gateway to Google Gemini over a pool of API keys
/// (a drop-in replacement for HAJIMI). Configuration comes from environment variables and
/// a `.env` file; see README.md.
#[derive(Parser, Debug)]
#[command(name = "hajimi", version, about)]
struct Cli {
    /// Address to listen on (overrides HOST).
    #[arg(long)]
    host: Option<String>,
    /// Port to listen on (overrides PORT; 0 picks a free port).
    #[arg(long)]
    port: Option<u16>,
    /// Read variables from this file instead of ./.env.
    #[arg(long, value_name = "PATH", global = true)]
    env_file: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Show the effective settings and where each came from (secrets masked).
    Config {
        /// Print README.md's configuration tables (every setting, its default and bounds)
        /// instead.
        #[arg(long)]
        markdown: bool,
    },
    /// Work with the upstream keys.
    Keys {
        #[command(subcommand)]
        action: KeysAction,
    },
}

#[derive(Subcommand, Debug)]
enum KeysAction {
    /// Validate every configured key against Google and print a masked table.
    Check,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Some(Command::Config { markdown: true }) = cli.command {
        return hajimi::cli::print_markdown();
    }
    let overrides = CliOverrides {
        host: cli.host,
        port: cli.port,
        env_file: cli.env_file,
    };
    let config = match Config::load(&overrides) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("hajimi: {e}");
            return ExitCode::from(2);
        }
    };
    // One TLS provider for the process (the server and `keys check` both call Google).
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    match cli.command {
        Some(Command::Config { .. }) => {
            return hajimi::cli::print_config(&hajimi::cli::with_saved(config));
        }
        Some(Command::Keys {
            action: KeysAction::Check,
        }) => {
            let config = hajimi::cli::with_saved(config);
            return match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt.block_on(hajimi::cli::check_keys(config)),
                Err(e) => {
                    eprintln!("hajimi: cannot start the runtime: {e}");
                    ExitCode::FAILURE
                }
            };
        }
        None => {}
    }
    hajimi::telemetry::init(&config.settings);
    for warning in &config.warnings {
        tracing::warn!("{warning}");
    }
    tune_allocator();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("hajimi: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async move {
        let server = hajimi::Server::start(config).await?;
        server.run_until(hajimi::shutdown_signal()).await
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("hajimi: {}", hajimi::mask::scrub_keys(&format!("{e:#}")));
            ExitCode::FAILURE
        }
    }
}

/// Sets jemalloc up before the runtime's threads exist (their arenas take these defaults):
/// - freed pages go back to the system after 1 s instead of 10 s (measured: no CPU cost);
/// - allocations of 8 MiB and more (request bodies, upstream bodies, images) live in a
///   dedicated arena, created here while background threads are off, so that jemalloc
///   gives that memory back the moment it is freed (as glibc does with mmap): the copies a
///   large request goes through never pile up;
/// - a background thread purges on schedule, so memory comes back while the process is idle.
fn tune_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        use tikv_jemalloc_ctl::{Access as _, AsName as _};
        const DECAY_MS: isize = 1000;
        for name in [
            b"arenas.dirty_decay_ms\0".as_slice(),
            b"arena.0.dirty_decay_ms\0".as_slice(),
        ] {
            if let Err(e) = name.name().write(DECAY_MS) {
                tracing::debug!(error = %e, "jemalloc decay not set");
            }
        }
        drop(std::hint::black_box(Vec::<u8>::with_capacity(8 << 20)));
        if let Err(e) = tikv_jemalloc_ctl::background_thread::write(true) {
            tracing::debug!(error = %e, "jemalloc background thread not started");
        }
    }
}
