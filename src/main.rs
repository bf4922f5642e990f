//! The `gantry` executable: the entry point. The command line is `cli/`,
//! the REPL's screen `tui/`; both are thin front ends over the library.

use clap::Parser;

mod cli;
mod tui;

fn main() {
    // Die quietly on a closed pipe (`gantry model info | head`) like other
    // command-line tools, instead of panicking in println!.
    // SAFETY: setting a signal disposition before any threads exist.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    let cli = cli::Cli::parse();
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
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| cli::run(cli))).unwrap_or_else(|payload| {
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
