//! `folotoy-ha-bridge`: run the bridge, a FoloToy simulator, or the demo.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use folotoy_ha_bridge::config::{Config, Sources};
#[cfg(feature = "demo")]
use folotoy_ha_bridge::sim::{AckMode, SimConfig, Simulator};
#[cfg(feature = "demo")]
use folotoy_ha_bridge::{demo, folotoy::Sn};
use folotoy_ha_bridge::{runtime, supervisor};
use tracing_subscriber::EnvFilter;

#[derive(Parser)]
#[command(version, about = "Puts FoloToy AI talking toys into Home Assistant over MQTT")]
struct Cli {
    /// YAML configuration file (environment variables FOLOTOY_HA_* override it).
    #[arg(long, short, global = true)]
    config: Option<PathBuf>,
    /// The add-on's data folder: its options.json configures the bridge, the
    /// state file is kept there, and a missing broker is asked of the Supervisor.
    #[arg(long, global = true, value_name = "DIR")]
    data: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Cmd>,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run the bridge (the default).
    Run,
    /// Before a backup: a consistent copy of the conversation history beside it
    /// (the add-on's backup_pre); with --done, after it: the copy goes (backup_post).
    BackupHistory {
        #[arg(long)]
        done: bool,
    },
    /// Show the bridge at work with no setup: embedded broker, simulated toys, bridge.
    #[cfg(feature = "demo")]
    Demo(demo::DemoArgs),
    /// Stand in for a FoloToy server with toys, on the configured FoloToy broker.
    #[cfg(feature = "demo")]
    Simulate {
        /// Serial numbers of the simulated toys.
        #[arg(long = "toy", default_values = ["fcb467dad0c0"])]
        toys: Vec<String>,
        /// How toys answer: ok, refuse, silent or delay:<ms>.
        #[arg(long, default_value = "ok")]
        ack: AckMode,
        /// Publish a heard/said conversation every this many seconds (0: never).
        #[arg(long, default_value_t = 0)]
        events_every: u64,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let sources = Sources { file: cli.config.clone(), data_dir: cli.data.clone() };
    let result = match cli.command.unwrap_or(Cmd::Run) {
        Cmd::Run => load(&sources).and_then(|config| {
            init_logs(&config.log_level);
            let addon = sources.data_dir.is_some();
            block_on(async move {
                let config = if addon { with_supervisor_broker(config).await? } else { config };
                runtime::run(config, shutdown_signal()).await.map_err(|e| e.to_string())
            })
        }),
        Cmd::BackupHistory { done } => load(&sources).and_then(|config| {
            let root = config.history_dir();
            let made = if done {
                folotoy_ha_bridge::history::drop_snapshot(&root).map(|()| None)
            } else {
                folotoy_ha_bridge::history::snapshot(&root).map(Some)
            };
            match made.map_err(|e| e.to_string())? {
                Some(copy) => println!("conversation history copied to {} for the backup", copy.display()),
                None => println!("the backup's copy of the conversation history is removed"),
            }
            Ok(())
        }),
        #[cfg(feature = "demo")]
        Cmd::Demo(args) => {
            init_logs("warn");
            block_on(async move { demo::run(args).await.map_err(|e| e.to_string()) })
        }
        #[cfg(feature = "demo")]
        Cmd::Simulate { toys, ack, events_every } => load(&sources).and_then(|config| {
            init_logs(&config.log_level);
            let toys = toys
                .iter()
                .map(|s| Sn::parse(s).map_err(|e| format!("--toy {s}: {e}")))
                .collect::<Result<Vec<_>, _>>()?;
            block_on(simulate(config, toys, ack, events_every))
        }),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("folotoy-ha-bridge: {e}");
            ExitCode::FAILURE
        }
    }
}

/// In the add-on, a broker nobody configured comes from the Supervisor.
async fn with_supervisor_broker(mut config: Config) -> Result<Config, String> {
    if config.mqtt_given {
        return Ok(config);
    }
    let token = std::env::var("SUPERVISOR_TOKEN").ok();
    config.mqtt = supervisor::mqtt_service(&config.supervisor_url, token.as_deref(), SUPERVISOR_TIMEOUT, &config.mqtt)
        .await
        .map_err(|e| e.to_string())?;
    tracing::info!("MQTT broker from the Supervisor: {}:{}", config.mqtt.host, config.mqtt.port);
    Ok(config)
}

const SUPERVISOR_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

fn load(sources: &Sources) -> Result<Config, String> {
    Config::load(sources).map_err(|e| e.to_string())
}

/// One thread: the bridge waits on the network, and handing every message
/// from the connection's task to the bridge's across threads cost more CPU
/// (context switches) than all the bridge's own work, measured by the
/// benchmark. Disk writes still go to tokio's blocking threads.
fn block_on<F: std::future::Future<Output = Result<(), String>>>(f: F) -> Result<(), String> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the async runtime: {e}"))?
        .block_on(f)
}

/// One line per event, no colours unless a person watches a terminal (the
/// add-on's log tab shows escape codes as garbage).
fn init_logs(level: &str) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(level));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        .with_target(false)
        .init();
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

#[cfg(feature = "demo")]
async fn simulate(config: Config, toys: Vec<Sn>, ack: AckMode, every: u64) -> Result<(), String> {
    let sim = Simulator::start(config.folotoy_mqtt(), SimConfig { toys: toys.clone(), ack })
        .await
        .map_err(|e| format!("simulator: {e}"))?;
    eprintln!("simulating {} toy(s), answering {ack:?}; Ctrl-C to stop", toys.len());
    let mut recording = 0;
    loop {
        let wait = if every == 0 { u64::MAX / 4 } else { every };
        tokio::select! {
            cmd = sim.next_command(std::time::Duration::from_secs(wait)) => {
                if let Some(cmd) = cmd {
                    println!("{} {}", cmd.topic, cmd.payload);
                } else if every > 0 {
                    recording += 1;
                    for sn in &toys {
                        let _ = sim.heard(sn, recording, "Can you tell me a story about a dragon?").await;
                        let _ = sim.said(sn, recording, 1, "Once upon a time, a small dragon").await;
                        let _ = sim.said(sn, recording, 2, " learned to fly.").await;
                    }
                }
            }
            _ = shutdown_signal() => return Ok(()),
        }
    }
}
