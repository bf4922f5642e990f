//! Script mode: `gantry run FILE` and a prompt whose stdin is not a terminal.

use anyhow::{bail, Context, Result};

/// Script mode: the REPL's language without the screen. Every picture is
/// written as a PNG into the output folder and shown inline (viuer) when
/// stdout is a terminal, else its path is printed. The first error stops the
/// script with `FILE:LINE: message` and exit status 1.
pub fn run(mut session: gantry::session::Session, file: &str, paths_only: bool) -> Result<()> {
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
