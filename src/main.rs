//! The `gantry` command line: a thin front end over the library.

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};
use gantry::config::{Paths, Resolved};
use gantry::dataset::{Dataset, DatasetSpec};
use gantry::imageio::{write_png, Image};
use gantry::model::{ModelConfig, PRESETS};
use gantry::plugins::{self, Registry, Sampler};
use gantry::runtime::{describe_device, parse_device, Generated, Runtime};
use gantry::weights::{find_model, read_card, Model};

use std::path::{Path, PathBuf};

mod cli;
mod tui;

#[derive(Parser)]
#[command(
    name = "gantry",
    version,
    about = "Text-to-image GAN (Reed et al., ICML 2016): type a caption, get images",
    long_about = "Text-to-image GAN (Reed et al., ICML 2016): type a caption, get images.\n\n\
        Run without a command to open a prompt on the default model."
)]
struct Cli {
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
enum Command {
    /// Generate images for a caption and write them as PNGs
    Generate {
        /// What the image should show
        caption: String,
        /// Number of images [config: n]
        #[arg(long, short = 'n')]
        n: Option<u32>,
        /// Seed of the first image; image i uses seed + i [config: seed]
        #[arg(long, short = 's')]
        seed: Option<u64>,
        /// Output folder [config: output_dir]
        #[arg(long, short = 'o')]
        out: Option<PathBuf>,
        /// Also write the images as one contact sheet PNG
        #[arg(long)]
        sheet: Option<PathBuf>,
    },
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
    Interp(cli::draw::InterpArgs),
    /// Noise interpolation: the caption fixed, z moving from seed to seed + 1
    InterpZ(cli::draw::InterpZArgs),
    /// Style transfer: the pose and background of a photo, the content of captions
    Style(cli::draw::StyleArgs),
    /// Inspect or create model folders
    Model {
        #[command(subcommand)]
        command: ModelCommand,
    },
    /// Inspect datasets: KIND or KIND:PATH (procedural-flowers, reed:PATH, imagefolder:PATH)
    Dataset {
        #[command(subcommand)]
        command: DatasetCommand,
    },
    /// Train the text encoder, the GAN, or the style encoder
    Train {
        #[command(subcommand)]
        command: cli::train::TrainCommand,
    },
    /// Measure a model: every metric of evaluation.md that applies (written into its card)
    Eval(cli::eval::EvalArgs),
    /// The attribute probe that reads procedural flowers back (evaluation.md)
    Probe {
        #[command(subcommand)]
        command: ProbeCommand,
    },
    /// Print the effective configuration and where each value came from
    Config,
    /// List the plugins found and any that could not be loaded (= plugin list)
    Plugins,
    /// Install, list and remove plugins
    Plugin {
        #[command(subcommand)]
        command: PluginCommand,
    },
    /// Measure speed
    Bench {
        #[command(subcommand)]
        command: BenchCommand,
    },
}

#[derive(Subcommand)]
enum PluginCommand {
    /// Every plugin found: kind, version, where it came from, status
    List,
    /// Build (a crate folder) or take (a library), probe it in a child process, install it
    Install {
        /// A plugin crate folder or a built .so/.dylib
        path: PathBuf,
    },
    /// Remove an installed plugin
    Remove { name: String },
    /// Write a new sampler plugin crate, ready for `plugin install` (it builds
    /// wherever it is written: the plugin API comes with it)
    New {
        /// The plugin's name (lowercase letters, digits, '-')
        name: String,
        /// The folder to write it in
        #[arg(default_value = ".")]
        dir: PathBuf,
    },
    /// Load a library and describe it as JSON (what install runs in a child process)
    #[command(hide = true)]
    Probe { path: PathBuf },
}

#[derive(Subcommand)]
enum ModelCommand {
    /// Print each network's parameter count and a summary of the model card
    Info {
        /// Model name or folder (default: the configured model)
        name: Option<String>,
        /// Print the whole card as JSON instead of the summary
        #[arg(long)]
        json: bool,
    },
    /// Write a randomly initialised model folder (runs everything before training)
    Init {
        /// Name of the new model
        name: String,
        /// Architecture preset: reed (paper.md), small (CPU), tiny (tests)
        #[arg(long, default_value = "small")]
        preset: String,
        /// Folder to write (default: <data dir>/models/NAME)
        #[arg(long, short = 'o')]
        out: Option<PathBuf>,
        /// Seed of the initialisation
        #[arg(long, default_value_t = 0)]
        seed: i64,
        /// Store weights as f16
        #[arg(long)]
        half: bool,
        /// Replace an existing folder
        #[arg(long)]
        force: bool,
    },
    /// List the presets
    Presets,
    /// Record the words of a dataset's captions in a model's card (the words
    /// its text encoder was trained on), so that unknown words are named when typed
    Vocabulary {
        /// Model name or folder
        name: String,
        /// KIND or KIND:PATH of the captions the text encoder learned
        #[arg(long)]
        dataset: String,
        #[arg(long = "opt", value_name = "KEY=VALUE")]
        options: Vec<String>,
        /// Words seen fewer times are left out (deliberate typos); default: one
        /// in 10,000 captions, at least 2
        #[arg(long)]
        min_count: Option<usize>,
    },
    /// Copy a model folder, optionally as f16 (for shipping)
    Export {
        /// Model name or folder
        name: String,
        /// Destination folder
        out: PathBuf,
        /// Store weights as f16
        #[arg(long)]
        half: bool,
    },
}

#[derive(Subcommand)]
enum DatasetCommand {
    /// Count images, captions and classes, and list problems in the data
    Info {
        /// KIND or KIND:PATH
        spec: String,
        /// Loader option KEY=VALUE (repeatable), e.g. size=144, on_error=stop, count=5000
        #[arg(long = "opt", value_name = "KEY=VALUE")]
        options: Vec<String>,
        /// Print every problem, not just the first ten
        #[arg(long)]
        all_problems: bool,
    },
    /// Write samples as PNG files (with their captions in the PNG's text chunks)
    Export {
        /// KIND or KIND:PATH
        spec: String,
        #[arg(long = "opt", value_name = "KEY=VALUE")]
        options: Vec<String>,
        /// Output folder
        #[arg(long, short = 'o')]
        out: PathBuf,
        /// Samples to write
        #[arg(long, default_value_t = 8)]
        count: usize,
        /// Index of the first sample
        #[arg(long, default_value_t = 0)]
        start: usize,
    },
    /// Write a grid of images with their captions as a PNG
    Preview {
        /// KIND or KIND:PATH
        spec: String,
        #[arg(long = "opt", value_name = "KEY=VALUE")]
        options: Vec<String>,
        /// Output PNG
        #[arg(long, short = 'o', default_value = "preview.png")]
        out: PathBuf,
        /// Samples to show
        #[arg(long, default_value_t = 16)]
        count: usize,
        /// Columns of the grid
        #[arg(long, default_value_t = 4)]
        columns: usize,
        /// Pick samples at random with this seed (default: the first ones)
        #[arg(long)]
        seed: Option<u64>,
    },
}

#[derive(Subcommand)]
enum ProbeCommand {
    /// Train the probe on procedural renders, evaluate it on others, save it
    Train {
        /// Renders to train on
        #[arg(long, default_value_t = 30_000)]
        count: usize,
        /// Held-out renders to evaluate on
        #[arg(long, default_value_t = 5_000)]
        eval_count: usize,
        #[arg(long, default_value_t = 2_000)]
        steps: usize,
        #[arg(long, default_value_t = 64)]
        batch: usize,
        /// Base width of the CNN
        #[arg(long, default_value_t = 32)]
        width: i64,
        #[arg(long, default_value_t = 2e-3)]
        lr: f64,
        /// Where to write the probe
        #[arg(long, short = 'o', default_value = "weights/probe")]
        out: PathBuf,
    },
    /// Measure the probe's accuracy per attribute on held-out renders
    Eval {
        #[arg(long, default_value = "weights/probe")]
        dir: PathBuf,
        #[arg(long, default_value_t = 5_000)]
        count: usize,
        /// Write the accuracy into the probe's card
        #[arg(long)]
        update_card: bool,
    },
}

#[derive(Subcommand)]
enum BenchCommand {
    /// Time generating one batch from caption text (text encoding included)
    Generate {
        /// Images per batch
        #[arg(long, default_value_t = 1)]
        batch: usize,
        /// Time a randomly initialised preset instead of a model folder
        #[arg(long)]
        preset: Option<String>,
        /// Timed runs (the median is printed)
        #[arg(long, default_value_t = 20)]
        repeats: usize,
        /// Untimed runs first
        #[arg(long, default_value_t = 3)]
        warmup: usize,
    },
    /// Time full GAN-INT-CLS training steps (D and G) on synthetic inputs
    Train {
        /// Architecture preset
        #[arg(long, default_value = "reed")]
        preset: String,
        #[arg(long, default_value_t = 64)]
        batch: usize,
        /// Timed steps
        #[arg(long, default_value_t = 10)]
        steps: usize,
        /// Untimed steps first
        #[arg(long, default_value_t = 2)]
        warmup: usize,
    },
    /// The learning curve: GAN-INT-CLS from scratch on procedural flowers,
    /// a line of probe-read content accuracy, D's scores and the
    /// checkerboard measure at fixed steps
    Learn(Box<cli::learn::LearnArgs>),
    /// The learning-curve lines for pictures bench/pytorch_learn.py drew
    LearnScore(cli::learn::ScoreArgs),
    /// Time reading samples (decoding or rendering images included)
    Dataset {
        /// KIND or KIND:PATH
        spec: String,
        #[arg(long = "opt", value_name = "KEY=VALUE")]
        options: Vec<String>,
        /// Samples to read
        #[arg(long, default_value_t = 10_000)]
        count: usize,
    },
}

fn main() {
    // Die quietly on a closed pipe (`gantry model info | head`) like other
    // command-line tools, instead of panicking in println!.
    // SAFETY: setting a signal disposition before any threads exist.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    let cli = Cli::parse();
    // libtorch failures that tch reports by panicking (memory running out on
    // a large -n, a device error) end as one error line, with what to do;
    // their panic message is not printed on top of it.
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let text = gantry::session::panic_text(info.payload());
        if !gantry::session::out_of_memory(&text) {
            default_hook(info);
        }
    }));
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run(cli))).unwrap_or_else(|payload| {
        let text = gantry::session::panic_text(payload.as_ref());
        if gantry::session::out_of_memory(&text) {
            Err(anyhow::anyhow!(
                "out of memory ({}): draw fewer pictures at once (a smaller -n), or use the CPU (--device cpu)",
                text.lines().next().unwrap_or("")
            ))
        } else {
            Err(anyhow::anyhow!("internal error: {}", text.lines().next().unwrap_or("")))
        }
    });
    if let Err(e) = result {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}

/// Everything a command needs from the environment.
pub struct Context_ {
    pub paths: Paths,
    pub config: Resolved,
}

fn run(cli: Cli) -> Result<()> {
    let paths = Paths::from_env();
    let mut config = Resolved::load(&paths)?;
    if let Some(device) = &cli.device {
        config.config.device = device.clone();
        config.set_from_command_line("device");
    }
    if let Some(model) = &cli.model {
        config.config.model = model.clone();
        config.set_from_command_line("model");
    }
    if let Some(sampler) = &cli.sampler {
        config.config.sampler = sampler.clone();
        config.set_from_command_line("sampler");
    }
    if config.config.threads > 0 {
        tch::set_num_threads(config.config.threads as i32);
    }
    let mut ctx = Context_ { paths, config };

    match cli.command {
        None => {
            use std::io::IsTerminal;
            let session = open_session(&ctx)?;
            if std::io::stdin().is_terminal() && std::io::stdout().is_terminal() {
                tui::run(session)
            } else {
                // Not a terminal: read the same language from stdin, like `gantry run -`.
                run_script(session, "-", false)
            }
        }
        Some(Command::Run { file, out, paths }) => {
            let mut session = open_session(&ctx)?;
            if let Some(out) = out {
                session.output_dir = out;
            }
            run_script(session, &file, paths)
        }
        Some(Command::Generate {
            caption,
            n,
            seed,
            out,
            sheet,
        }) => {
            if let Some(n) = n {
                ctx.config.config.n = n;
                ctx.config.set_from_command_line("n");
            }
            if let Some(seed) = seed {
                ctx.config.config.seed = seed;
                ctx.config.set_from_command_line("seed");
            }
            let out = out.unwrap_or_else(|| ctx.config.config.output_dir.clone());
            let runtime = open_runtime(&ctx)?;
            let c = &ctx.config.config;
            let generated = runtime.generate(&caption, c.n as usize, c.seed)?;
            for path in save_generated(&runtime, &generated, &caption, &out)? {
                println!("{}", path.display());
            }
            if let Some(sheet) = sheet {
                let cells: Vec<_> = generated
                    .images
                    .iter()
                    .zip(&generated.seeds)
                    .map(|(i, s)| (i.clone(), format!("seed {s}")))
                    .collect();
                let grid = gantry::grid::contact_sheet(&cells, cells.len(), 2, 1);
                write_png(&sheet, &grid, &metadata(&runtime, &caption, c.seed))?;
                println!("{}", sheet.display());
            }
            Ok(())
        }
        Some(Command::Model { command }) => model_command(&ctx, command),
        Some(Command::Dataset { command }) => dataset_command(&ctx, command),
        Some(Command::Probe { command }) => probe_command(&ctx, command),
        Some(Command::Train { command }) => cli::train::command(&ctx, command),
        Some(Command::Eval(args)) => cli::eval::command(&ctx, args),
        Some(Command::Interp(args)) => cli::draw::interp(&ctx, args),
        Some(Command::InterpZ(args)) => cli::draw::interp_z(&ctx, args),
        Some(Command::Style(args)) => cli::draw::style(&ctx, args),
        Some(Command::Config) => {
            println!("# user file: {}", ctx.config.user_file.display());
            println!("# data dir:  {}", ctx.paths.data_dir.display());
            println!("{}", ctx.config.describe()?);
            Ok(())
        }
        Some(Command::Plugins) => plugin_command(&ctx, PluginCommand::List),
        Some(Command::Plugin { command }) => plugin_command(&ctx, command),
        Some(Command::Bench { command }) => match command {
            BenchCommand::Generate {
                batch,
                preset,
                repeats,
                warmup,
            } => {
                if batch == 0 {
                    bail!("--batch must be at least 1");
                }
                let runtime = match preset {
                    Some(preset) => {
                        let device = parse_device(&ctx.config.config.device)?;
                        let model = Model::new(&preset, &ModelConfig::preset(&preset)?, device, 0)?;
                        Runtime::new(model, open_sampler(&ctx)?)
                    }
                    None => open_runtime(&ctx)?,
                };
                let ms = gantry::bench::generate(&runtime, batch, warmup, repeats)?;
                eprintln!(
                    "# model {} ({}), device {}, batch {batch}, {} runs: min {:.3} ms, max {:.3} ms",
                    runtime.model.card.name,
                    runtime.model.card.architecture.preset,
                    describe_device(runtime.device),
                    ms.len(),
                    ms[0],
                    ms[ms.len() - 1]
                );
                println!("ms_per_batch={:.3}", gantry::bench::median(&ms));
                Ok(())
            }
            BenchCommand::Train {
                preset,
                batch,
                steps,
                warmup,
            } => {
                if batch < 2 || batch % 2 != 0 {
                    bail!("--batch must be even and at least 2");
                }
                let device = parse_device(&ctx.config.config.device)?;
                let config = ModelConfig::preset(&preset)?;
                let rate = gantry::bench::train_gan(&config, device, batch, steps, warmup)?;
                eprintln!(
                    "# gan-int-cls step, preset {preset}, batch {batch} (+{} interpolated), {steps} steps on {}, {} threads",
                    batch / 2,
                    describe_device(device),
                    tch::get_num_threads()
                );
                println!("images_per_s={rate:.2}");
                Ok(())
            }
            BenchCommand::Learn(args) => cli::learn::learn(&ctx, *args),
            BenchCommand::LearnScore(args) => cli::learn::score(&ctx, args),
            BenchCommand::Dataset {
                spec,
                options,
                count,
            } => {
                let mut dataset = open_dataset(&ctx, &spec, &options)?;
                let n = count.min(dataset.len);
                let start = std::time::Instant::now();
                for i in 0..n {
                    dataset.get(i)?;
                }
                let seconds = start.elapsed().as_secs_f64();
                eprintln!("# {} samples of {} in {seconds:.2} s", n, dataset.spec);
                println!("samples_per_s={:.1}", n as f64 / seconds);
                Ok(())
            }
        },
    }
}

fn open_sampler(ctx: &Context_) -> Result<Sampler> {
    let registry = Registry::discover(&plugins::search_dirs(&ctx.paths.plugin_dir()));
    for broken in &registry.broken {
        eprintln!("warning: plugin skipped: {}", broken.error);
    }
    Sampler::select(&registry, &ctx.config.config.sampler)
}

pub fn open_runtime(ctx: &Context_) -> Result<Runtime> {
    let device = parse_device(&ctx.config.config.device)?;
    let dir = find_model(
        &ctx.config.config.model,
        &gantry::model_search_dirs(&ctx.paths),
    )?;
    let model = Model::load(&dir, device)?;
    if !model.card.trained {
        eprintln!(
            "note: model '{}' is untrained (random weights): images will be noise until it is trained",
            model.card.name
        );
    }
    Ok(Runtime::new(model, open_sampler(ctx)?))
}

/// A file-name-safe short form of a caption.
pub fn slug(caption: &str) -> String {
    let mut s = String::new();
    for c in caption.to_lowercase().chars() {
        if c.is_ascii_alphanumeric() {
            s.push(c);
        } else if !s.ends_with('-') && !s.is_empty() {
            s.push('-');
        }
        if s.len() >= 40 {
            break;
        }
    }
    let s = s.trim_end_matches('-').to_string();
    if s.is_empty() {
        "image".to_string()
    } else {
        s
    }
}

/// The provenance written into every PNG, with the picture's seed.
fn metadata(runtime: &Runtime, caption: &str, seed: u64) -> Vec<(String, String)> {
    gantry::provenance::Provenance {
        seed: Some(seed),
        ..runtime.provenance(caption, caption, "learned")
    }
    .to_pairs()
}

fn save_generated(
    runtime: &Runtime,
    generated: &Generated,
    caption: &str,
    out: &Path,
) -> Result<Vec<PathBuf>> {
    for w in &generated.warnings {
        eprintln!("warning: {w}");
    }
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let stem = slug(caption);
    let mut paths = Vec::new();
    for (image, seed) in generated.images.iter().zip(&generated.seeds) {
        let path = out.join(format!("{stem}-s{seed}.png"));
        write_image(&path, image, &metadata(runtime, caption, *seed))?;
        paths.push(path);
    }
    Ok(paths)
}

pub fn write_image(path: &Path, image: &Image, meta: &[(String, String)]) -> Result<()> {
    write_png(path, image, meta)
}

fn model_command(ctx: &Context_, command: ModelCommand) -> Result<()> {
    match command {
        ModelCommand::Export { name, out, half } => {
            let dir = find_model(&name, &gantry::model_search_dirs(&ctx.paths))?;
            let mut model = Model::load(&dir, tch::Device::Cpu)?;
            model.save(&out, half)?;
            println!(
                "wrote {} ({})",
                out.display(),
                if half { "f16" } else { "f32" }
            );
            Ok(())
        }
        ModelCommand::Vocabulary {
            name,
            dataset,
            options,
            min_count,
        } => {
            let dir = find_model(&name, &gantry::model_search_dirs(&ctx.paths))?;
            let mut card = read_card(&dir)?;
            let mut data = open_dataset(ctx, &dataset, &options)?;
            let mut captions = Vec::new();
            for i in 0..data.len {
                captions.extend(data.get(i)?.captions);
            }
            let min_count =
                min_count.unwrap_or_else(|| gantry::text::vocabulary_min_count(captions.len()));
            card.vocabulary =
                gantry::text::vocabulary(captions.iter().map(String::as_str), min_count);
            gantry::weights::write_card(&dir, &card)?;
            println!(
                "{}: {} words from {} captions of {}",
                dir.display(),
                card.vocabulary.len(),
                captions.len(),
                data.spec
            );
            Ok(())
        }
        ModelCommand::Presets => {
            for (name, about) in PRESETS {
                println!("{name:<6} {about}");
            }
            Ok(())
        }
        ModelCommand::Init {
            name,
            preset,
            out,
            seed,
            half,
            force,
        } => {
            let config = ModelConfig::preset(&preset)?;
            let dir = out.unwrap_or_else(|| ctx.paths.models_dir().join(&name));
            if dir.exists() && !force {
                bail!(
                    "{} already exists (use --force to replace it)",
                    dir.display()
                );
            }
            let mut model = Model::new(&name, &config, tch::Device::Cpu, seed)?;
            model.save(&dir, half)?;
            println!(
                "wrote untrained model '{name}' (preset {preset}) to {}",
                dir.display()
            );
            Ok(())
        }
        ModelCommand::Info { name, json } => {
            let name = name.unwrap_or_else(|| ctx.config.config.model.clone());
            let dir = find_model(&name, &gantry::model_search_dirs(&ctx.paths))?;
            let card = read_card(&dir)?;
            // A folder between trainings may hold the text side only.
            let text_side_only = !card.files.contains_key("generator");
            let model = if text_side_only {
                Model::load_text_side(&dir, tch::Device::Cpu)?
            } else {
                Model::load(&dir, tch::Device::Cpu)?
            };
            if json {
                println!("{}", serde_json::to_string_pretty(&card)?);
                return Ok(());
            }
            println!("model {} ({})", card.name, dir.display());
            println!(
                "preset {}, trained: {}, dataset {}",
                card.architecture.preset,
                card.trained,
                card.dataset.as_deref().unwrap_or("none")
            );
            if text_side_only {
                println!("the text side only (text and image encoders): `train gan --text-encoder` reads it");
            }
            let mut total = 0;
            for (network, count) in model.parameter_counts() {
                if !card.files.contains_key(network) {
                    continue;
                }
                println!(
                    "  {network:<14} {count:>12} parameters ({:.2} M)",
                    count as f64 / 1e6
                );
                total += count;
            }
            println!(
                "  {:<14} {total:>12} parameters ({:.2} M)",
                "total",
                total as f64 / 1e6
            );
            println!(
                "text conditioning: {}",
                card.architecture.conditioning.name()
            );
            if let Some(s) = &card.schedule {
                println!(
                    "schedule: step {} (epoch {:.1} of {}), lr {} halved every {} epochs",
                    s.step,
                    s.epoch(),
                    s.epochs,
                    s.lr,
                    s.lr_halve_every_epochs
                );
            }
            if !card.vocabulary.is_empty() {
                println!("vocabulary: {} words", card.vocabulary.len());
            }
            if !card.metrics.is_empty() {
                println!("metrics (gantry eval):");
                fn show(indent: usize, key: &str, value: &serde_json::Value) {
                    let pad = " ".repeat(indent);
                    match value {
                        serde_json::Value::Object(inner) => {
                            println!("{pad}{key}:");
                            for (k, v) in inner {
                                show(indent + 2, k, v);
                            }
                        }
                        v => match v.as_f64() {
                            Some(x) => println!("{pad}{key:<36} {x:.4}"),
                            None => println!("{pad}{key:<36} {v}"),
                        },
                    }
                }
                for (k, v) in &card.metrics {
                    show(2, k, v);
                }
            }
            for note in &card.notes {
                println!("note: {note}");
            }
            println!("(the whole card: gantry model info {name} --json)");
            Ok(())
        }
    }
}

fn plugin_command(ctx: &Context_, command: PluginCommand) -> Result<()> {
    use gantry::plugin_manager;
    let dir = ctx.paths.plugin_dir();
    match command {
        PluginCommand::List => {
            if plugins::plugins_disabled() {
                println!("plugins are turned off ({} is set)", plugins::DISABLE_ENV);
                return Ok(());
            }
            println!(
                "{:<20} {:<15} {:<8} {:<10} source",
                "name", "kind", "version", "status"
            );
            for row in plugin_manager::list(&dir) {
                println!(
                    "{:<20} {:<15} {:<8} {:<10} {}",
                    row.name, row.kind, row.version, row.status, row.source
                );
            }
            println!(
                "(searched {})",
                plugins::describe_dirs(&plugins::search_dirs(&dir))
            );
            Ok(())
        }
        PluginCommand::Install { path } => {
            let exe =
                std::env::current_exe().context("finding the gantry executable to probe with")?;
            if path.is_dir() {
                eprintln!(
                    "building the plugin crate in {} with cargo (release)...",
                    path.display()
                );
            }
            let m = plugin_manager::install(&dir, &path, &exe)?;
            println!(
                "installed {} {} ({}, ABI {}) into {}",
                m.name,
                m.version,
                m.kind,
                m.abi,
                dir.display()
            );
            if let Some(shipped) = plugin_manager::replaces(&dir, &m.name) {
                println!(
                    "note: it replaces the {} built with gantry ({}); `gantry plugin remove {}` brings that one back",
                    m.name,
                    shipped.display(),
                    m.name
                );
            }
            Ok(())
        }
        PluginCommand::Remove { name } => {
            let m = plugin_manager::remove(&dir, &name)?;
            println!("removed {} {}", m.name, m.version);
            Ok(())
        }
        PluginCommand::New { name, dir: into } => {
            let root = plugin_manager::new_plugin(&into, &name)?;
            println!(
                "wrote {} (a sampler: edit src/lib.rs); install it with\n  gantry plugin install {}",
                root.display(),
                root.display()
            );
            Ok(())
        }
        PluginCommand::Probe { path } => {
            let probed = plugin_manager::probe_here(&path)?;
            println!("{}", serde_json::to_string(&probed)?);
            Ok(())
        }
    }
}

/// Opens a session on the configured model, saying so when it is untrained.
fn open_session(ctx: &Context_) -> Result<gantry::session::Session> {
    for broken in &Registry::discover(&plugins::search_dirs(&ctx.paths.plugin_dir())).broken {
        eprintln!("warning: plugin skipped: {}", broken.error);
    }
    let session = gantry::session::Session::open(ctx.paths.clone(), ctx.config.config.clone())?;
    if !session.runtime.model.card.trained {
        eprintln!(
            "note: model '{}' is untrained (random weights): images will be noise until it is trained",
            session.runtime.model.card.name
        );
    }
    Ok(session)
}

/// Script mode: the REPL's language without the screen. Every picture is
/// written as a PNG into the output folder and shown inline (viuer) when
/// stdout is a terminal, else its path is printed. The first error stops the
/// script with `FILE:LINE: message` and exit status 1.
fn run_script(mut session: gantry::session::Session, file: &str, paths_only: bool) -> Result<()> {
    use gantry::session::{Body, Outcome};
    use std::io::IsTerminal;
    let text = if file == "-" {
        let mut t = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut t)
            .context("reading the script from stdin")?;
        t
    } else {
        std::fs::read_to_string(file).with_context(|| format!("{file}: cannot read"))?
    };
    let name = if file == "-" { "<stdin>" } else { file };
    let inline = !paths_only && std::io::stdout().is_terminal();
    // Ctrl-C, SIGTERM or SIGHUP: the line in progress stops between chunks
    // and the script ends; every picture already written is whole.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    {
        let (stop, cancel) = (stop.clone(), session.cancel.clone());
        let _ = ctrlc::set_handler(move || {
            stop.store(true, std::sync::atomic::Ordering::SeqCst);
            cancel.store(true, std::sync::atomic::Ordering::SeqCst);
        });
    }
    let interrupted = |number: usize| -> ! {
        eprintln!(
            "{name}:{number}: interrupted; the pictures written before this line are complete"
        );
        std::process::exit(130);
    };
    for (number, line) in text.lines().enumerate() {
        if stop.load(std::sync::atomic::Ordering::SeqCst) {
            interrupted(number + 1);
        }
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        match session.execute(line) {
            Ok(Outcome::Quit) => break,
            Ok(Outcome::Cleared) => {}
            Ok(Outcome::Entry(index)) => {
                let entry = session.entries[index].clone();
                for w in &entry.warnings {
                    eprintln!("{name}:{}: warning: {w}", number + 1);
                }
                match &entry.body {
                    Body::Pictures(pictures) => {
                        for p in pictures {
                            let path = session.save_picture(p, &session.output_dir.clone())?;
                            if inline {
                                let rgb = image::RgbImage::from_raw(
                                    p.image.width,
                                    p.image.height,
                                    p.image.rgb.clone(),
                                )
                                .ok_or_else(|| anyhow::anyhow!("bad picture"))?;
                                let config = viuer::Config {
                                    width: Some(16),
                                    absolute_offset: false,
                                    ..Default::default()
                                };
                                let _ = viuer::print(&image::DynamicImage::ImageRgb8(rgb), &config);
                                println!("{} {}", p.id, path.display());
                            } else {
                                println!("{}", path.display());
                            }
                        }
                    }
                    Body::Text(t) => println!("{t}"),
                    Body::Error(e) => bail!("{name}:{}: {e}", number + 1),
                }
            }
            Err(_) if stop.load(std::sync::atomic::Ordering::SeqCst) => interrupted(number + 1),
            Err(e) => bail!("{name}:{}: {e:#}", number + 1),
        }
    }
    Ok(())
}

fn parse_options(options: &[String]) -> Result<Vec<(String, String)>> {
    options
        .iter()
        .map(|o| match o.split_once('=') {
            Some((k, v)) if !k.trim().is_empty() => {
                Ok((k.trim().to_string(), v.trim().to_string()))
            }
            _ => bail!("--opt {o}: expected KEY=VALUE"),
        })
        .collect()
}

pub fn open_dataset(ctx: &Context_, spec: &str, options: &[String]) -> Result<Dataset> {
    let spec: DatasetSpec = spec.parse()?;
    let registry = Registry::discover(&plugins::search_dirs(&ctx.paths.plugin_dir()));
    for broken in &registry.broken {
        eprintln!("warning: plugin skipped: {}", broken.error);
    }
    Dataset::open(&registry, &spec, &parse_options(options)?)
}

fn dataset_command(ctx: &Context_, command: DatasetCommand) -> Result<()> {
    match command {
        DatasetCommand::Info {
            spec,
            options,
            all_problems,
        } => {
            let dataset = open_dataset(ctx, &spec, &options)?;
            let held_classes = dataset.classes.iter().filter(|c| c.held_out).count();
            println!("dataset   {} ({})", dataset.spec, dataset.origin);
            println!(
                "images    {}{}",
                dataset.len,
                if dataset.has_images {
                    ""
                } else {
                    " caption files (no images: captions only)"
                }
            );
            println!("captions  {}", dataset.captions);
            println!(
                "classes   {} ({} train / {} test)",
                dataset.classes.len(),
                dataset.classes.len() - held_classes,
                held_classes
            );
            println!(
                "split     {} train images / {} test images",
                dataset.len - dataset.held_out_samples,
                dataset.held_out_samples
            );
            println!("problems  {}", dataset.problems.len());
            let shown = if all_problems {
                dataset.problems.len()
            } else {
                10
            };
            for p in dataset.problems.iter().take(shown) {
                println!("  {p}");
            }
            if dataset.problems.len() > shown {
                println!(
                    "  ... {} more (--all-problems lists them)",
                    dataset.problems.len() - shown
                );
            }
            Ok(())
        }
        DatasetCommand::Export {
            spec,
            options,
            out,
            count,
            start,
        } => {
            let mut dataset = open_dataset(ctx, &spec, &options)?;
            if start >= dataset.len {
                bail!(
                    "--start {start} is past the end: {} has {} samples (0 to {})",
                    dataset.spec,
                    dataset.len,
                    dataset.len.saturating_sub(1)
                );
            }
            std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
            for i in start..start.saturating_add(count).min(dataset.len) {
                let sample = dataset.get(i)?;
                let Some(image) = sample.image else {
                    bail!("{}: captions only, no images to export", dataset.spec);
                };
                let path = out.join(format!("{}.png", sample.name));
                let mut meta = vec![("captions".to_string(), sample.captions.join("\n"))];
                meta.extend(
                    sample
                        .attributes
                        .iter()
                        .map(|(k, v)| (k.clone(), v.clone())),
                );
                write_png(&path, &image, &meta)?;
                println!("{}", path.display());
            }
            Ok(())
        }
        DatasetCommand::Preview {
            spec,
            options,
            out,
            count,
            columns,
            seed,
        } => {
            let mut dataset = open_dataset(ctx, &spec, &options)?;
            if !dataset.has_images {
                bail!("{}: captions only, nothing to preview", dataset.spec);
            }
            let mut indices: Vec<usize> = (0..dataset.len).collect();
            if let Some(seed) = seed {
                gantry::data::Rng(seed).shuffle(&mut indices);
            }
            let mut cells = Vec::new();
            for &i in indices.iter().take(count.max(1)) {
                let sample = dataset.get(i)?;
                if let Some(image) = sample.image {
                    let caption = sample.captions.first().cloned().unwrap_or_default();
                    let image = gantry::data::square(&image, 64)?;
                    cells.push((image, caption));
                }
            }
            let sheet = gantry::grid::contact_sheet(&cells, columns, 3, 3);
            write_png(
                &out,
                &sheet,
                &[(
                    "Software".into(),
                    format!("gantry {}", env!("CARGO_PKG_VERSION")),
                )],
            )?;
            println!("{}", out.display());
            Ok(())
        }
    }
}

/// Seeds of the procedural renders the probe trains and is evaluated on;
/// both differ from the GAN's training set (seed 0).
const PROBE_TRAIN_SEED: u64 = 1001;
const PROBE_EVAL_SEED: u64 = 2002;

pub fn progress_bar(total: u64, what: &str) -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::new(total);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{prefix:>10} [{bar:30}] {pos}/{len} {per_sec} eta {eta} {msg}",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    bar.set_prefix(what.to_string());
    bar
}

fn print_accuracy(accuracy: &std::collections::BTreeMap<String, f64>) {
    println!("{:<16} {:>9}", "attribute", "accuracy");
    for (attribute, a) in accuracy {
        let flag = if *a >= 0.98 {
            ""
        } else {
            "  (below the 98% evaluation.md asks)"
        };
        println!("{attribute:<16} {:>8.2}%{flag}", a * 100.0);
    }
}

fn probe_command(ctx: &Context_, command: ProbeCommand) -> Result<()> {
    let device = parse_device(&ctx.config.config.device)?;
    match command {
        ProbeCommand::Train {
            count,
            eval_count,
            steps,
            batch,
            width,
            lr,
            out,
        } => {
            if batch == 0 || steps == 0 {
                bail!("--batch and --steps must be at least 1");
            }
            let train_set = cli::learn::renders(ctx, PROBE_TRAIN_SEED, count)?;
            let bar = progress_bar(steps as u64, "training");
            let options = gantry::probe::TrainOptions {
                steps,
                batch,
                width,
                learning_rate: lr,
                device,
                seed: 0,
            };
            let started = std::time::Instant::now();
            let mut probe = gantry::probe::train(&train_set, &options, &mut |step, loss| {
                bar.set_position(step as u64);
                if step % 10 == 0 {
                    bar.set_message(format!("loss {loss:.4}"));
                }
            })?;
            bar.finish_and_clear();
            eprintln!(
                "trained in {:.0} s on {}",
                started.elapsed().as_secs_f64(),
                describe_device(device)
            );
            let eval_set = cli::learn::renders(ctx, PROBE_EVAL_SEED, eval_count)?;
            probe.card.accuracy = probe.evaluate(&eval_set, 256)?;
            probe.card.trained_on =
                format!("procedural-flowers seed={PROBE_TRAIN_SEED} count={count}");
            probe.card.evaluated_on =
                format!("procedural-flowers seed={PROBE_EVAL_SEED} count={eval_count}");
            print_accuracy(&probe.card.accuracy);
            probe.save(&out)?;
            println!("wrote {}", out.display());
            Ok(())
        }
        ProbeCommand::Eval {
            dir,
            count,
            update_card,
        } => {
            let mut probe = gantry::probe::LoadedProbe::load(&dir, device)?;
            let eval_set = cli::learn::renders(ctx, PROBE_EVAL_SEED, count)?;
            let accuracy = probe.evaluate(&eval_set, 256)?;
            print_accuracy(&accuracy);
            if update_card {
                probe.card.accuracy = accuracy;
                probe.card.evaluated_on =
                    format!("procedural-flowers seed={PROBE_EVAL_SEED} count={count}");
                probe.save(&dir)?;
            }
            Ok(())
        }
    }
}
