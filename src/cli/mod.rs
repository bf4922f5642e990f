//! The command line: the clap tree and its dispatch, one file per verb
//! family. Every verb opens what it needs through [`gantry::env::Env`].

pub mod bench;
pub mod dataset;
pub mod draw;
pub mod eval;
pub mod gan_args;
pub mod learn;
pub mod model;
pub mod output;
pub mod plugin;
pub mod probe;
pub mod script;
pub mod train;

use anyhow::Result;
use clap::{Parser, Subcommand};
use gantry::dataset::Dataset;
use gantry::env::{untrained_note, Env};
use gantry::runtime::Runtime;
use gantry::session::Session;
use std::path::PathBuf;

#[derive(Parser)]
#[command(
    name = "gantry",
    version,
    about = "Text-to-image GAN (Reed et al., ICML 2016): type a caption, get images",
    long_about = "Text-to-image GAN (Reed et al., ICML 2016): type a caption, get images.\n\n\
        Run without a command to open a prompt on the default model."
)]
pub struct Cli {
    /// Device: auto (CUDA if present), cpu, cuda, cuda:N [config: device]
    #[arg(long, global = true)]
    device: Option<String>,
    /// Model: a name under weights/ or the data dir's models/, or a folder [config: model]
    #[arg(long, short = 'm', global = true)]
    model: Option<String>,
    /// Sampler plugin that draws z [config: sampler]
    #[arg(long, global = true)]
    sampler: Option<String>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
pub enum Command {
    /// Generate images for a caption and write them as PNGs
    Generate(draw::GenerateArgs),
    /// Run a script (one caption or :command per line; - for stdin); PNGs go to -o
    Run {
        /// The script, or - for standard input
        file: String,
        /// Output folder [config: output_dir]
        #[arg(long, short = 'o')]
        out: Option<PathBuf>,
        /// Print paths even when stdout is a terminal (no inline images)
        #[arg(long)]
        paths: bool,
    },
    /// Sentence interpolation: z fixed, the text moving from one caption to another
    Interp(draw::InterpArgs),
    /// Noise interpolation: the caption fixed, z moving from seed to seed + 1
    InterpZ(draw::InterpZArgs),
    /// Style transfer: the pose and background of a photo, the content of captions
    Style(draw::StyleArgs),
    /// Inspect or create model folders
    Model {
        #[command(subcommand)]
        command: model::ModelCommand,
    },
    /// Inspect datasets: KIND or KIND:PATH (procedural-flowers, reed:PATH, imagefolder:PATH)
    Dataset {
        #[command(subcommand)]
        command: dataset::DatasetCommand,
    },
    /// Train the text encoder, the GAN, or the style encoder
    Train {
        // Boxed: `train gan` has many options, the other commands few.
        #[command(subcommand)]
        command: Box<train::TrainCommand>,
    },
    /// Measure a model: every metric of evaluation.md that applies (written into its card)
    Eval(eval::EvalArgs),
    /// The attribute probe that reads procedural flowers back (evaluation.md)
    Probe {
        #[command(subcommand)]
        command: probe::ProbeCommand,
    },
    /// Print the effective configuration and where each value came from
    Config,
    /// List the plugins found and any that could not be loaded (= plugin list)
    Plugins,
    /// Install, list and remove plugins
    Plugin {
        #[command(subcommand)]
        command: plugin::PluginCommand,
    },
    /// Measure speed, and the learning curve (training from scratch, beside PyTorch)
    Bench {
        #[command(subcommand)]
        command: bench::BenchCommand,
    },
}

pub fn run(cli: Cli) -> Result<()> {
    let mut env = Env::load()?;
    if let Some(device) = cli.device {
        env.set_from_command_line("device", |c| c.device = device);
    }
    if let Some(model) = cli.model {
        env.set_from_command_line("model", |c| c.model = model);
    }
    if let Some(sampler) = cli.sampler {
        env.set_from_command_line("sampler", |c| c.sampler = sampler);
    }
    if env.settings().threads > 0 {
        tch::set_num_threads(env.settings().threads as i32);
    }
    match cli.command {
        None => {
            use std::io::IsTerminal;
            let session = open_session(&env)?;
            if std::io::stdin().is_terminal() && std::io::stdout().is_terminal() {
                crate::tui::run(session)
            } else {
                // Not a terminal: read the same language from stdin, like `gantry run -`.
                script::run(session, "-", false)
            }
        }
        Some(Command::Run { file, out, paths }) => {
            let mut session = open_session(&env)?;
            if let Some(out) = out {
                session.output_dir = out;
            }
            script::run(session, &file, paths)
        }
        Some(Command::Generate(args)) => draw::generate(&mut env, args),
        Some(Command::Model { command }) => model::command(&env, command),
        Some(Command::Dataset { command }) => dataset::command(&env, command),
        Some(Command::Probe { command }) => probe::command(&env, command),
        Some(Command::Train { command }) => train::command(&env, *command),
        Some(Command::Eval(args)) => eval::command(&env, args),
        Some(Command::Interp(args)) => draw::interp(&env, args),
        Some(Command::InterpZ(args)) => draw::interp_z(&env, args),
        Some(Command::Style(args)) => draw::style(&env, args),
        Some(Command::Config) => {
            println!("# user file: {}", env.config.user_file.display());
            println!("# data dir:  {}", env.paths.data_dir.display());
            println!("{}", env.config.describe()?);
            Ok(())
        }
        Some(Command::Plugins) => plugin::command(&env, plugin::PluginCommand::List),
        Some(Command::Plugin { command }) => plugin::command(&env, command),
        Some(Command::Bench { command }) => bench::command(&env, command),
    }
}

/// Prints the environment's warnings (once).
fn warn(env: &Env) {
    for w in env.take_warnings() {
        eprintln!("warning: {w}");
    }
}

fn note_untrained(model: &gantry::weights::Model) {
    if let Some(note) = untrained_note(model) {
        eprintln!("note: {note}");
    }
}

/// The configured model and sampler, saying so when the model is untrained.
pub fn open_runtime(env: &Env) -> Result<Runtime> {
    warn(env);
    let runtime = env.runtime()?;
    note_untrained(runtime.model());
    Ok(runtime)
}

/// A dataset, with the plugins' warnings.
pub fn open_dataset(env: &Env, spec: &str, options: &[String]) -> Result<Dataset> {
    warn(env);
    env.dataset(spec, options)
}

/// A session on the configured model, saying so when it is untrained.
pub fn open_session(env: &Env) -> Result<Session> {
    warn(env);
    let session = env.session()?;
    note_untrained(session.runtime.model());
    Ok(session)
}
