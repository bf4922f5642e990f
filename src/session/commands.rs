//! Every `:command` is one row of [`COMMANDS`]: its name, aliases, usage,
//! one-line help, what its arguments complete to, and its handler. Help,
//! Tab completion, the REPL and the script runner all read this table, so a
//! new command is one row and nothing else.

use super::words::{nearest, quote, split_marked};
use super::{Body, Reply, SeedMode, Session};
use crate::imageio::{read_png_metadata, read_png_pixels, Image};
use crate::provenance::{Batch, Provenance, Style};
use anyhow::{anyhow, bail, Context, Result};
use std::path::{Path, PathBuf};

/// What an argument completes to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Complete {
    Nothing,
    Commands,
    Models,
    Samplers,
    Encoders,
    /// `#ids` of pictures, then file paths.
    Pictures,
    Paths,
    OnOff,
    SeedValues,
    PluginActions,
}

pub struct Command {
    pub name: &'static str,
    pub aliases: &'static [&'static str],
    pub usage: &'static str,
    pub help: &'static str,
    /// What each argument position completes to (the last repeats).
    pub complete: &'static [Complete],
    /// Arguments from this position on are captions, one each: several
    /// unquoted words there are one caption typed without its quotes.
    pub captions_from: Option<usize>,
    pub run: fn(&mut Session, &[String]) -> Result<Reply>,
}

pub static COMMANDS: &[Command] = &[
    Command {
        name: "help",
        aliases: &["h", "?"],
        usage: ":help [command]",
        help: "list the commands, or explain one",
        complete: &[Complete::Commands],
        captions_from: None,
        run: help,
    },
    Command {
        name: "interp",
        aliases: &["i"],
        usage: ":interp \"caption a\" \"caption b\" [steps]",
        help: "sentence interpolation: z fixed, the text moving from a to b (8 steps)",
        complete: &[Complete::Nothing],
        captions_from: None,
        run: interp,
    },
    Command {
        name: "interp-z",
        aliases: &["iz"],
        usage: ":interp-z \"caption\" [steps]",
        help: "noise interpolation: the caption fixed, z moving from seed to seed + 1",
        complete: &[Complete::Nothing],
        captions_from: None,
        run: interp_z,
    },
    Command {
        name: "style",
        aliases: &["st"],
        usage: ":style <file.png|#id> \"caption\" [\"caption\" ...]",
        help: "style transfer: the pose and background of an image, the content of the captions",
        complete: &[Complete::Pictures, Complete::Nothing],
        captions_from: Some(1),
        run: style,
    },
    Command {
        name: "seed",
        aliases: &[],
        usage: ":seed N|random",
        help: "the seed of the next captions' first image (image i uses seed + i), or fresh seeds each time",
        complete: &[Complete::SeedValues],
        captions_from: None,
        run: seed,
    },
    Command {
        name: "n",
        aliases: &[],
        usage: ":n N",
        help: "images per caption (1 to 64)",
        complete: &[Complete::Nothing],
        captions_from: None,
        run: set_n,
    },
    Command {
        name: "model",
        aliases: &["m"],
        usage: ":model NAME|FOLDER",
        help: "load another model",
        complete: &[Complete::Models],
        captions_from: None,
        run: model,
    },
    Command {
        name: "sampler",
        aliases: &[],
        usage: ":sampler NAME [key=value ...]",
        help: "where z comes from: a sampler plugin (gaussian, truncated psi=0.7, slerp)",
        complete: &[Complete::Samplers],
        captions_from: None,
        run: sampler,
    },
    Command {
        name: "encoder",
        aliases: &[],
        usage: ":encoder NAME [key=value ...]",
        help: "how :style turns an image into z: learned (the model's S), or optimize (inverts G; steps=60)",
        complete: &[Complete::Encoders],
        captions_from: None,
        run: encoder,
    },
    Command {
        name: "save",
        aliases: &["w"],
        usage: ":save [#id|#entry|all] [dir] [--gif]",
        help: "write pictures as PNGs with their provenance (default: the last row); --gif: a row as an animated GIF",
        complete: &[Complete::Pictures, Complete::Paths],
        captions_from: None,
        run: save,
    },
    Command {
        name: "source",
        aliases: &["run"],
        usage: ":source FILE",
        help: "run a script: one caption or :command per line",
        complete: &[Complete::Paths],
        captions_from: None,
        run: source,
    },
    Command {
        name: "replay",
        aliases: &[],
        usage: ":replay FILE.png",
        help: "remake a picture from the command and seed stored in its PNG (\"replayed\" when every pixel matches the file)",
        complete: &[Complete::Paths],
        captions_from: None,
        run: replay,
    },
    Command {
        name: "classify",
        aliases: &[],
        usage: ":classify FILE|#id",
        help: "rank the model's classes by joint-embedding compatibility (the paper's zero-shot classifier)",
        complete: &[Complete::Pictures],
        captions_from: None,
        run: classify,
    },
    Command {
        name: "score",
        aliases: &[],
        usage: ":score FILE|#id \"caption\" [\"caption\" ...]",
        help: "rank captions by how well they match an image",
        complete: &[Complete::Pictures, Complete::Nothing],
        captions_from: Some(1),
        run: score,
    },
    Command {
        name: "live",
        aliases: &[],
        usage: ":live on|off",
        help: "redraw a preview of the caption as you type (after a short pause)",
        complete: &[Complete::OnOff],
        captions_from: None,
        run: live,
    },
    Command {
        name: "zoom",
        aliases: &["z"],
        usage: ":zoom 1|2|3|4",
        help: "how large pictures are drawn: 1 is 16x8 cells, 2 is 32x16, ... (config key zoom)",
        complete: &[Complete::Nothing],
        captions_from: None,
        run: zoom,
    },
    Command {
        name: "plugins",
        aliases: &[],
        usage: ":plugins",
        help: "list the plugins found, and any that were refused",
        complete: &[],
        captions_from: None,
        run: plugins,
    },
    Command {
        name: "plugin",
        aliases: &[],
        usage: ":plugin install PATH | remove NAME | new NAME [DIR] | list",
        help: "install a plugin (crate folder or library; probed in a child process), remove one, or list them",
        complete: &[Complete::PluginActions, Complete::Paths],
        captions_from: None,
        run: plugin,
    },
    Command {
        name: "history",
        aliases: &[],
        usage: ":history [N]",
        help: "the last N lines typed (20)",
        complete: &[],
        captions_from: None,
        run: history,
    },
    Command {
        name: "clear",
        aliases: &[],
        usage: ":clear",
        help: "clear the transcript (pictures are forgotten)",
        complete: &[],
        captions_from: None,
        run: |_, args| {
            no_args(args, ":clear")?;
            Ok(Reply::Cleared)
        },
    },
    Command {
        name: "quit",
        aliases: &["q", "exit"],
        usage: ":quit",
        help: "leave gantry",
        complete: &[],
        captions_from: None,
        run: |_, args| {
            no_args(args, ":quit")?;
            Ok(Reply::Quit)
        },
    },
];

/// Looks a command up by name or alias.
pub fn find(name: &str) -> Option<&'static Command> {
    COMMANDS
        .iter()
        .find(|c| c.name == name || c.aliases.contains(&name))
}

/// All names and aliases.
pub fn names() -> impl Iterator<Item = &'static str> {
    COMMANDS
        .iter()
        .flat_map(|c| std::iter::once(c.name).chain(c.aliases.iter().copied()))
}

/// Runs `rest` (a line after its ':').
pub fn run(session: &mut Session, rest: &str) -> Result<Reply> {
    let words = match split_marked(rest) {
        Ok(words) => words,
        // Bad quoting: say what is wrong and how the command is used.
        Err(e) => {
            let name = rest.split_whitespace().next().unwrap_or("");
            return Err(match find(name) {
                Some(c) => anyhow!("{e}; usage: {}", c.usage),
                None => anyhow!("{e}"),
            });
        }
    };
    let quoted: Vec<bool> = words.iter().map(|(_, q)| *q).collect();
    let words: Vec<String> = words.into_iter().map(|(w, _)| w).collect();
    let Some(name) = words.first() else {
        bail!("a ':' alone is not a command; :help lists them");
    };
    let Some(command) = find(name) else {
        return Err(match nearest(name, names()) {
            Some(n) => {
                anyhow!("unknown command :{name}; did you mean :{n}? (:help lists them all)")
            }
            None => anyhow!("unknown command :{name} (:help lists them all)"),
        });
    };
    if let Some(from) = command.captions_from {
        let captions = words.get(1 + from..).unwrap_or_default();
        if captions.len() >= 2 && !quoted[1 + from..].iter().any(|q| *q) {
            let before: Vec<String> = words[1..1 + from].iter().map(|w| quote(w)).collect();
            bail!(
                "{} words after {}: a caption of several words needs quotes, e.g. :{} {} \"{}\" (or quote each one-word caption)",
                captions.len(),
                before.join(" "),
                command.name,
                before.join(" "),
                captions.join(" ")
            );
        }
    }
    (command.run)(session, &words[1..])
}

fn usage(usage: &str) -> anyhow::Error {
    anyhow!("usage: {usage}")
}

fn no_args(args: &[String], u: &str) -> Result<()> {
    if args.is_empty() {
        Ok(())
    } else {
        Err(usage(u))
    }
}

fn steps_arg(args: &[String], at: usize, u: &str) -> Result<usize> {
    match args.get(at) {
        None => Ok(8),
        Some(s) => s.parse().map_err(|_| usage(u)),
    }
}

fn help(_: &mut Session, args: &[String]) -> Result<Reply> {
    if let Some(name) = args.first() {
        let name = name.trim_start_matches(':');
        let c = find(name).ok_or_else(|| match nearest(name, names()) {
            Some(n) => anyhow!("no command :{name}; did you mean :{n}?"),
            None => anyhow!("no command :{name}"),
        })?;
        let aliases = if c.aliases.is_empty() {
            String::new()
        } else {
            format!(" (also :{})", c.aliases.join(", :"))
        };
        return Ok(Reply::Text(format!("{}{aliases}\n  {}", c.usage, c.help)));
    }
    let mut text = String::from("Type a caption to draw it. Commands:\n");
    for c in COMMANDS {
        text.push_str(&format!("  {:<44} {}\n", c.usage, c.help));
    }
    text.push_str("Keys: Up/Down history, Ctrl-R search, Tab completes, Ctrl-C cancels the running job, PgUp/PgDn scroll.");
    Ok(Reply::Text(text))
}

/// Metadata for a picture of a command row: the command that remakes the
/// row, the seed, and which picture of the row it is.
fn row_metadata(
    session: &Session,
    caption: &str,
    command: &str,
    seed: u64,
    k: usize,
) -> Vec<(String, String)> {
    Provenance {
        seed: Some(seed),
        batch: Some(Batch {
            index: k as u64,
            ..Default::default()
        }),
        ..session.base_metadata(caption, command)
    }
    .to_pairs()
}

fn current_seed(session: &mut Session) -> u64 {
    session.next_seed()
}

fn interp(session: &mut Session, args: &[String]) -> Result<Reply> {
    const U: &str = ":interp \"caption a\" \"caption b\" [steps]";
    if !(2..=3).contains(&args.len()) {
        return Err(usage(U));
    }
    let steps = steps_arg(args, 2, U)?;
    let seed = current_seed(session);
    let row = session
        .runtime
        .interpolate_text(&args[0], &args[1], steps, seed)?;
    let command = format!(":interp {} {} {steps}", quote(&args[0]), quote(&args[1]));
    let labels = (0..steps)
        .map(|k| match k {
            0 => "a".to_string(),
            k if k + 1 == steps => "b".to_string(),
            k => format!("{:.0}%", 100.0 * k as f64 / (steps - 1) as f64),
        })
        .collect();
    let caption = format!("{} -> {}", args[0], args[1]);
    let pictures = session.pictures(row.images, labels, |k| {
        row_metadata(session, &caption, &command, seed, k)
    });
    Ok(Reply::Pictures((pictures, row.warnings)))
}

fn interp_z(session: &mut Session, args: &[String]) -> Result<Reply> {
    const U: &str = ":interp-z \"caption\" [steps]";
    if !(1..=2).contains(&args.len()) {
        return Err(usage(U));
    }
    let steps = steps_arg(args, 1, U)?;
    let seed = current_seed(session);
    let row = session.runtime.interpolate_noise(&args[0], steps, seed)?;
    let command = format!(":interp-z {} {steps}", quote(&args[0]));
    let labels = (0..steps)
        .map(|k| match k {
            0 => format!("seed {seed}"),
            k if k + 1 == steps => format!("seed {}", seed.wrapping_add(1)),
            _ => String::new(),
        })
        .collect();
    let pictures = session.pictures(row.images, labels, |k| {
        row_metadata(session, &args[0], &command, seed, k)
    });
    Ok(Reply::Pictures((pictures, row.warnings)))
}

fn style(session: &mut Session, args: &[String]) -> Result<Reply> {
    const U: &str = ":style <file.png|#id> \"caption\" [\"caption\" ...]";
    if args.len() < 2 {
        return Err(usage(U));
    }
    let (source, source_name) = session.image_argument(&args[0])?;
    // The style code once for all captions; the PNGs record it exactly (and
    // the source's hash), so `:replay` remakes them in any session.
    let z = session
        .runtime
        .style_code(&source, &session.style_encoder)
        .context("encoding the style image")?;
    let code = crate::runtime::style_code_text(&z)?;
    let source_hash = {
        use sha2::{Digest, Sha256};
        format!("{:x}", Sha256::digest(&source.rgb))
    };
    let mut images = Vec::new();
    let mut warnings = Vec::new();
    for caption in &args[1..] {
        session.check_cancel()?;
        let g = session.runtime.draw_style(&z, caption)?;
        images.extend(g.images);
        warnings.extend(g.warnings);
    }
    let command = format!(
        ":style {} {}",
        quote(&source_name),
        args[1..]
            .iter()
            .map(|c| quote(c))
            .collect::<Vec<_>>()
            .join(" ")
    );
    let labels = args[1..].to_vec();
    let pictures = session.pictures(images, labels, |k| {
        Provenance {
            batch: Some(Batch {
                index: k as u64,
                ..Default::default()
            }),
            style: Some(Style {
                source: source_name.clone(),
                source_sha256: Some(source_hash.clone()),
                code: Some(code.clone()),
            }),
            ..session.base_metadata(&args[1 + k], &command)
        }
        .to_pairs()
    });
    Ok(Reply::Pictures((pictures, warnings)))
}

fn seed(session: &mut Session, args: &[String]) -> Result<Reply> {
    const U: &str = ":seed N|random";
    match args {
        [s] if s == "random" => session.seed = SeedMode::Random,
        [s] => session.seed = SeedMode::Fixed(s.parse().map_err(|_| usage(U))?),
        _ => return Err(usage(U)),
    }
    Ok(Reply::Text(format!("seed {}", session.status().seed)))
}

fn set_n(session: &mut Session, args: &[String]) -> Result<Reply> {
    const U: &str = ":n N (1 to 64)";
    let [n] = args else { return Err(usage(U)) };
    let n: usize = n.parse().map_err(|_| usage(U))?;
    if !(1..=64).contains(&n) {
        return Err(usage(U));
    }
    session.n = n;
    Ok(Reply::Text(format!("{n} image(s) per caption")))
}

fn model(session: &mut Session, args: &[String]) -> Result<Reply> {
    let [name] = args else {
        return Err(usage(":model NAME|FOLDER"));
    };
    Ok(Reply::Text(session.set_model(name)?))
}

fn sampler(session: &mut Session, args: &[String]) -> Result<Reply> {
    let Some((name, options)) = args.split_first() else {
        return Err(usage(":sampler NAME [key=value ...]"));
    };
    Ok(Reply::Text(session.set_sampler(name, options)?))
}

fn encoder(session: &mut Session, args: &[String]) -> Result<Reply> {
    let Some((name, options)) = args.split_first() else {
        return Err(usage(":encoder NAME [key=value ...]"));
    };
    Ok(Reply::Text(session.set_encoder(name, options)?))
}

fn save(session: &mut Session, args: &[String]) -> Result<Reply> {
    const U: &str = ":save [#id|#entry|all] [dir] [--gif]";
    let gif = args.iter().any(|a| a == "--gif");
    let rest: Vec<&String> = args.iter().filter(|a| *a != "--gif").collect();
    if rest.len() > 2 {
        return Err(usage(U));
    }
    let (what, dir) = match rest.as_slice() {
        [] => (None, session.output_dir.clone()),
        [w] if w.starts_with('#') || *w == "all" => (Some(w.as_str()), session.output_dir.clone()),
        [d] => (None, PathBuf::from(d.as_str())),
        [w, d] => (Some(w.as_str()), PathBuf::from(d.as_str())),
        _ => return Err(usage(U)),
    };
    if dir.exists() && !dir.is_dir() {
        bail!(
            "{}: not a directory (give a folder to save into)",
            dir.display()
        );
    }
    // The pictures to save: one picture, one entry's row, all, or the last row.
    let rows: Vec<&super::Entry> = session
        .entries
        .iter()
        .filter(|e| matches!(e.body, Body::Pictures(_)))
        .collect();
    let pictures: Vec<super::Picture> = match what {
        Some("all") => rows.iter().flat_map(|e| pictures_of(e)).collect(),
        Some(id) if id.contains('.') => vec![session
            .picture(id)
            .cloned()
            .ok_or_else(|| anyhow!("no picture {id}"))?],
        Some(id) => {
            let number: u32 = id.trim_start_matches('#').parse().map_err(|_| usage(U))?;
            let entry = rows
                .iter()
                .find(|e| e.number == number)
                .ok_or_else(|| anyhow!("no row {id}"))?;
            pictures_of(entry)
        }
        None => rows
            .last()
            .map(|e| pictures_of(e))
            .ok_or_else(|| anyhow!("nothing to save yet"))?,
    };
    if gif {
        if pictures.len() < 2 {
            bail!(
                "--gif needs a row of at least two pictures (e.g. :save #3 --gif after an :interp)"
            );
        }
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let first = pictures[0]
            .id
            .trim_start_matches('#')
            .split('.')
            .next()
            .unwrap_or("row")
            .to_string();
        let path = dir.join(format!("gantry-{first}.gif"));
        write_gif(session, &path, &pictures)?;
        return Ok(Reply::Text(format!("wrote {}", path.display())));
    }
    let mut written = Vec::new();
    for p in &pictures {
        written.push(session.save_picture(p, &dir)?.display().to_string());
    }
    Ok(Reply::Text(format!(
        "wrote {} file(s): {}",
        written.len(),
        written.join(", ")
    )))
}

fn pictures_of(entry: &super::Entry) -> Vec<super::Picture> {
    match &entry.body {
        Body::Pictures(p) => p.clone(),
        _ => Vec::new(),
    }
}

/// An animated GIF of a row, going there and back, upscaled 2x.
fn write_gif(session: &Session, path: &Path, pictures: &[super::Picture]) -> Result<()> {
    use image::codecs::gif::{GifEncoder, Repeat};
    let file =
        std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?;
    let mut encoder = GifEncoder::new_with_speed(file, 10);
    encoder.set_repeat(Repeat::Infinite)?;
    let order: Vec<usize> = (0..pictures.len())
        .chain((1..pictures.len() - 1).rev())
        .collect();
    for i in order {
        let p = session.image(&pictures[i])?;
        let rgb = image::RgbImage::from_raw(p.width, p.height, p.rgb)
            .ok_or_else(|| anyhow!("bad picture buffer"))?;
        let big = image::imageops::resize(
            &rgb,
            p.width * 2,
            p.height * 2,
            image::imageops::FilterType::Nearest,
        );
        let rgba = image::DynamicImage::ImageRgb8(big).to_rgba8();
        let frame = image::Frame::from_parts(rgba, 0, 0, image::Delay::from_numer_denom_ms(150, 1));
        encoder.encode_frame(frame)?;
    }
    Ok(())
}

fn source(session: &mut Session, args: &[String]) -> Result<Reply> {
    let [file] = args else {
        return Err(usage(":source FILE"));
    };
    let ran = session.source(Path::new(file))?;
    Ok(Reply::Text(format!("ran {ran} line(s) of {file}")))
}

fn replay(session: &mut Session, args: &[String]) -> Result<Reply> {
    let [file] = args else {
        return Err(usage(":replay FILE.png"));
    };
    let meta = read_png_metadata(Path::new(file))?;
    let made = Provenance::from_pairs(&meta).with_context(|| format!("{file}: its provenance"))?;
    if made.command.is_empty() {
        bail!("{file}: no gantry command stored in this PNG");
    }
    if !made.model.is_empty() && made.model != session.runtime.model().card.name {
        bail!(
            "{file} was made with model '{}'; load it with :model {} first",
            made.model,
            made.model
        );
    }
    // Remade with the sampler and sampler options it was made with.
    let sampler = if made.sampler.is_empty() {
        session.runtime.sampler.name().to_string()
    } else {
        made.sampler.clone()
    };
    let options = crate::runtime::parse_options_text(&made.sampler_options)
        .with_context(|| format!("{file}: its sampler options"))?;
    session
        .with_sampler_of(&sampler, &options, |session| remake(session, file, &made))
        .with_context(|| format!("{file} cannot be remade as it was"))
}

/// The largest batch `:replay` remakes: the most a row holds (`:n` 64, an
/// `:interp` of 64 steps).
const MAX_REPLAY_BATCH: usize = 64;

/// What a remade picture is called, and why when it is not "replayed": it
/// is the same picture only if its pixels are the file's, every one. When
/// they are not, the warning says what changed: the weights (a model of the
/// same name trained further or replaced since), or, with the same weights,
/// the arithmetic (another build or device rounds differently) or the file
/// (edited since). PNGs of gantry before session 23 do not record the weights.
fn remade_label(
    session: &Session,
    file: &str,
    made: &Provenance,
    remade: &Image,
) -> (String, Option<String>) {
    let on_file = read_png_pixels(Path::new(file));
    if on_file.as_ref().is_ok_and(|pixels| pixels == remade) {
        return ("replayed".into(), None);
    }
    let now = session.runtime.model().card.weights_fingerprint();
    let name = &session.runtime.model().card.name;
    if made.weights.is_empty() {
        return (
            "remade".into(),
            Some(format!(
                "{file} does not record which weights of '{name}' drew it (an older gantry) and its pixels are not these: this is its command drawn by the model as it is now, not the same picture"
            )),
        );
    }
    if made.weights != now {
        return (
            "remade: the model changed".into(),
            Some(format!(
                "{file} was drawn by other weights of '{name}' (fingerprint {}, loaded now {now}): this is its command drawn by the model as it is now, not the same picture",
                made.weights
            )),
        );
    }
    let why = match on_file {
        Ok(pixels) if pixels.width == remade.width && pixels.height == remade.height => {
            let (most, values) = pixels
                .rgb
                .iter()
                .zip(&remade.rgb)
                .filter(|(a, b)| a != b)
                .fold((0, 0), |(most, n), (a, b)| {
                    (most.max(a.abs_diff(*b)), n + 1)
                });
            format!(
                "{values} of its {} colour values differ by up to {most} levels from the picture drawn now by the same weights: another build or device rounds differently (it was drawn by {} on {}), or the file was edited",
                pixels.rgb.len(),
                if made.software.is_empty() { "an unrecorded gantry" } else { &made.software },
                if made.device.is_empty() { "an unrecorded device" } else { &made.device },
            )
        }
        Ok(pixels) => format!(
            "it is {}x{}, the picture drawn now {}x{}: the file was edited",
            pixels.width, pixels.height, remade.width, remade.height
        ),
        Err(e) => format!("its pixels cannot be read ({e:#})"),
    };
    (
        "remade: the pixels differ".into(),
        Some(format!("{file}: {why}")),
    )
}

/// Remakes the picture a PNG's provenance describes, with the sampler in force.
fn remake(session: &mut Session, file: &str, made: &Provenance) -> Result<Reply> {
    let command = made.command.clone();
    let batch = made.batch.unwrap_or_default();
    let index = batch.index as usize;
    if let Some(n) = made.sheet {
        bail!("{file} is a contact sheet of {n} pictures, not one picture: replay the PNG of each picture (written beside it)");
    }
    if let Some(code) = made.style.as_ref().and_then(|s| s.code.as_ref()) {
        // Style transfer: G(z, φ(caption)) from the z it recorded, whatever
        // the session (the source picture need not exist any more).
        if made.caption.is_empty() {
            bail!("{file}: no caption stored");
        }
        let z = crate::runtime::parse_style_code(code, session.runtime.nz())
            .with_context(|| format!("{file}: its style code"))?
            .to_device(session.runtime.device);
        let g = session.runtime.draw_style(&z, &made.caption)?;
        let Some(drawn) = g.images.first() else {
            bail!("{file}: nothing was drawn");
        };
        let (label, changed) = remade_label(session, file, made, drawn);
        let drawn_by = Provenance {
            weights: session.runtime.model().card.weights_fingerprint(),
            ..made.clone()
        };
        let pictures = session.pictures(g.images, vec![label], |_| drawn_by.to_pairs());
        let mut warnings = g.warnings;
        warnings.extend(changed);
        return Ok(Reply::Pictures((pictures, warnings)));
    }
    // A batch is remade whole (its size can change the arithmetic), but never
    // larger than gantry makes one: a PNG is outside input.
    let n = batch.n.unwrap_or(index as u64 + 1);
    if n == 0 || n > MAX_REPLAY_BATCH as u64 || index as u64 >= n {
        bail!("{file}: picture {index} of a batch of {n}: not a batch gantry makes (1 to {MAX_REPLAY_BATCH})");
    }
    let (mut pictures, mut warnings) = if let Some(stored) = command.strip_prefix(':') {
        let seed = made.seed.unwrap_or(0);
        let saved = session.seed;
        session.seed = SeedMode::Fixed(seed);
        let reply = run(session, stored);
        session.seed = saved;
        match reply? {
            Reply::Pictures(p) => p,
            _ => bail!("{file}: its command ({command}) does not draw pictures"),
        }
    } else {
        let n = n as usize;
        let first = batch.first_seed.or(made.seed).unwrap_or(0);
        let (images, warnings) = session.generate_batch(&command, n, first)?;
        let pictures = session.pictures(
            images,
            (0..n)
                .map(|k| format!("seed {}", first.wrapping_add(k as u64)))
                .collect(),
            |k| session.batch_metadata(&command, n, first, k),
        );
        (pictures, warnings)
    };
    if index >= pictures.len() {
        bail!("{file}: picture {index} of a row of {}", pictures.len());
    }
    let mut picture = pictures.swap_remove(index);
    let (label, changed) = remade_label(session, file, made, &session.image(&picture)?);
    picture.id = format!("#{}.1", session.next_number());
    picture.label = label;
    warnings.extend(changed);
    Ok(Reply::Pictures((vec![picture], warnings)))
}

fn classify(session: &mut Session, args: &[String]) -> Result<Reply> {
    let [what] = args else {
        return Err(usage(":classify FILE|#id"));
    };
    let (image, name) = session.image_argument(what)?;
    let v = session.image_embedding(&image)?;
    let (names, vectors) = session.class_vectors()?;
    let scores = Vec::<f32>::try_from(vectors.matmul(&v).to_device(tch::Device::Cpu))?;
    let mut ranked: Vec<(usize, f32)> = scores.into_iter().enumerate().collect();
    ranked.sort_by(|a, b| b.1.total_cmp(&a.1));
    let lines: Vec<String> = ranked
        .iter()
        .take(5)
        .enumerate()
        .map(|(r, (c, s))| format!("  {}. {:<28} {s:8.2}", r + 1, names[*c]))
        .collect();
    Ok(Reply::Text(format!(
        "{name}: most compatible classes\n{}",
        lines.join("\n")
    )))
}

fn score(session: &mut Session, args: &[String]) -> Result<Reply> {
    if args.len() < 2 {
        return Err(usage(":score FILE|#id \"caption\" [\"caption\" ...]"));
    }
    let (image, name) = session.image_argument(&args[0])?;
    let v = session.image_embedding(&image)?;
    let captions: Vec<String> = args[1..].to_vec();
    let t = crate::eval::embed(session.runtime.model(), &captions)?;
    let scores = Vec::<f32>::try_from(t.matmul(&v).to_device(tch::Device::Cpu))?;
    let mut ranked: Vec<(&String, f32)> = captions.iter().zip(scores).collect();
    ranked.sort_by(|a, b| b.1.total_cmp(&a.1));
    let lines: Vec<String> = ranked
        .iter()
        .enumerate()
        .map(|(r, (c, s))| format!("  {}. {s:8.2}  {c}", r + 1))
        .collect();
    Ok(Reply::Text(format!(
        "{name}: captions by compatibility\n{}",
        lines.join("\n")
    )))
}

fn live(session: &mut Session, args: &[String]) -> Result<Reply> {
    match args {
        [v] if v == "on" => session.live = true,
        [v] if v == "off" => session.live = false,
        _ => return Err(usage(":live on|off")),
    }
    Ok(Reply::Text(format!(
        "live preview {}",
        if session.live { "on" } else { "off" }
    )))
}

fn zoom(session: &mut Session, args: &[String]) -> Result<Reply> {
    const U: &str = ":zoom 1|2|3|4";
    let [z] = args else { return Err(usage(U)) };
    let z: u16 = z.parse().map_err(|_| usage(U))?;
    if !(1..=super::MAX_ZOOM).contains(&z) {
        return Err(usage(U));
    }
    session.zoom = z;
    Ok(Reply::Text(format!(
        "pictures drawn at {}x{} cells",
        16 * z,
        8 * z
    )))
}

fn plugins(session: &mut Session, args: &[String]) -> Result<Reply> {
    no_args(args, ":plugins")?;
    let r = &session.registry;
    if r.disabled {
        return Ok(Reply::Text(format!(
            "plugins are turned off ({} is set)",
            crate::host::DISABLE_ENV
        )));
    }
    let mut lines: Vec<String> = r
        .plugins
        .iter()
        .map(|p| {
            format!(
                "  {:<20} {:<15} {:<8} {}",
                p.name,
                p.kind.as_str(),
                p.version,
                p.description
            )
        })
        .collect();
    lines.extend(r.broken.iter().map(|b| format!("  refused: {}", b.error)));
    Ok(Reply::Text(format!(
        "{} plugin(s)\n{}",
        r.plugins.len(),
        lines.join("\n")
    )))
}

fn plugin(session: &mut Session, args: &[String]) -> Result<Reply> {
    use crate::plugin_manager;
    const U: &str = ":plugin install PATH | remove NAME | new NAME [DIR] | list";
    let dir = session.paths.plugin_dir();
    let text = match args {
        [action, path] if action == "install" => {
            let exe = session.probe_exe.clone().ok_or_else(|| {
                anyhow!("this front end cannot probe plugins; use `gantry plugin install`")
            })?;
            let m = plugin_manager::install(&dir, Path::new(path), &exe)?;
            session.rediscover_plugins();
            let replaced = plugin_manager::replaces(&dir, &m.name).map_or(String::new(), |p| {
                format!(
                    "; it replaces the {} built with gantry ({})",
                    m.name,
                    p.display()
                )
            });
            format!(
                "installed {} {} ({}){replaced}; :plugins lists it",
                m.name, m.version, m.kind
            )
        }
        [action, name] if action == "remove" => {
            let m = plugin_manager::remove(&dir, name)?;
            session.rediscover_plugins();
            format!(
                "removed {} {} (a library already loaded stays loaded until gantry restarts)",
                m.name, m.version
            )
        }
        [action, name, rest @ ..] if action == "new" && rest.len() <= 1 => {
            let into = rest
                .first()
                .map_or(Path::new("."), |d| Path::new(d.as_str()));
            let root = plugin_manager::new_plugin(into, name)?;
            format!(
                "wrote {} (a sampler: edit src/lib.rs), then :plugin install {}",
                root.display(),
                root.display()
            )
        }
        [action] if action == "list" => {
            let rows = plugin_manager::list(&dir);
            rows.iter()
                .map(|r| {
                    format!(
                        "  {:<20} {:<15} {:<8} {:<10} {}",
                        r.name, r.kind, r.version, r.status, r.source
                    )
                })
                .collect::<Vec<_>>()
                .join("\n")
        }
        _ => return Err(usage(U)),
    };
    Ok(Reply::Text(text))
}

fn history(session: &mut Session, args: &[String]) -> Result<Reply> {
    let n: usize = match args {
        [] => 20,
        [n] => n.parse().map_err(|_| usage(":history [N]"))?,
        _ => return Err(usage(":history [N]")),
    };
    let start = session.history.len().saturating_sub(n + 1);
    let lines: Vec<String> = session.history[start..session.history.len().saturating_sub(1)]
        .iter()
        .enumerate()
        .map(|(i, l)| format!("  {:>4}  {l}", start + i + 1))
        .collect();
    Ok(Reply::Text(if lines.is_empty() {
        "no history yet".to_string()
    } else {
        lines.join("\n")
    }))
}

/// Completions for the word under the cursor at the end of `line`.
pub fn complete(session: &Session, line: &str) -> Vec<String> {
    let Some(rest) = line.strip_prefix(':') else {
        return Vec::new();
    };
    // The partial word: after the last space (quotes are not completed).
    let words: Vec<&str> = rest.split(' ').collect();
    let current = words.last().copied().unwrap_or("");
    if words.len() == 1 {
        let mut names: Vec<String> = COMMANDS
            .iter()
            .map(|c| c.name)
            .filter(|n| n.starts_with(current))
            .map(|n| format!(":{n}"))
            .collect();
        names.sort();
        return names;
    }
    let Some(command) = find(words[0]) else {
        return Vec::new();
    };
    let position = words.len() - 2;
    let kind = command
        .complete
        .get(position)
        .or(command.complete.last())
        .copied()
        .unwrap_or(Complete::Nothing);
    let candidates: Vec<String> = match kind {
        Complete::Nothing => Vec::new(),
        Complete::Commands => COMMANDS.iter().map(|c| c.name.to_string()).collect(),
        Complete::Models => session.model_names(),
        Complete::Samplers => {
            let mut s: Vec<String> = session
                .registry
                .names(gantry_plugin_api::PluginKind::Sampler)
                .iter()
                .map(|s| s.to_string())
                .collect();
            if !s.iter().any(|n| n == "gaussian") {
                s.push("gaussian".into());
            }
            s
        }
        Complete::Encoders => {
            let mut e = vec!["learned".to_string()];
            e.extend(
                session
                    .registry
                    .names(gantry_plugin_api::PluginKind::StyleEncoder)
                    .iter()
                    .map(|s| s.to_string()),
            );
            e
        }
        Complete::OnOff => vec!["on".into(), "off".into()],
        Complete::SeedValues => vec!["random".into()],
        Complete::PluginActions => vec![
            "install".into(),
            "remove".into(),
            "new".into(),
            "list".into(),
        ],
        Complete::Pictures if current.starts_with('#') => session.picture_ids(),
        Complete::Pictures | Complete::Paths => complete_path(current),
    };
    let prefix = format!(":{}", words[..words.len() - 1].join(" "));
    candidates
        .into_iter()
        .filter(|c| c.starts_with(current))
        .map(|c| format!("{prefix} {c}"))
        .collect()
}

fn complete_path(partial: &str) -> Vec<String> {
    let (dir, stem) = match partial.rfind('/') {
        Some(i) => (&partial[..=i], &partial[i + 1..]),
        None => ("", partial),
    };
    let read = if dir.is_empty() { "." } else { dir };
    let Ok(entries) = std::fs::read_dir(read) else {
        return Vec::new();
    };
    let mut out: Vec<String> = entries
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            if !name.starts_with(stem) || (name.starts_with('.') && !stem.starts_with('.')) {
                return None;
            }
            let slash = if e.path().is_dir() { "/" } else { "" };
            Some(format!("{dir}{name}{slash}"))
        })
        .collect();
    out.sort();
    out
}
