//! The publish engine behind `latamctl publish`: arrival schedules (`schedule`: the seed's
//! load shapes as send times), sending them (`send`: API or SNS, open model) and checking
//! that every acknowledged message was stored (`verify`).

mod schedule;
mod send;
mod verify;

pub use schedule::{Error, Pattern, Percentiles, Shape};
pub use send::{Body, Sender, Sent, load_bodies, send_all};
pub use verify::{Verified, verify};

/// A progress bar on stderr, or a hidden one when `shown` is false (fleet rows, `-o json`).
pub fn progress(len: u64, message: &'static str, shown: bool) -> indicatif::ProgressBar {
    if !shown {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(len);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len} {per_sec} eta {eta}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    bar.set_message(message);
    bar
}
