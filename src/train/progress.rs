//! How a run shows its progress: a bar on a terminal, a line per epoch, or nothing.

use std::io::IsTerminal;

/// How progress is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    /// A progress bar (epoch, step, loss, images/s, ETA) on stderr; one line per epoch
    /// when built without the `cli` feature, which brings the bar.
    Bar,
    /// One line per epoch on stderr.
    Lines,
    /// Nothing.
    Quiet,
}

impl Progress {
    /// A bar when stderr is a terminal, else lines.
    pub fn auto() -> Self {
        if std::io::stderr().is_terminal() {
            Progress::Bar
        } else {
            Progress::Lines
        }
    }

    /// Prints `msg` on stderr unless quiet.
    pub fn say(self, msg: &str) {
        if self != Progress::Quiet {
            eprintln!("{msg}");
        }
    }

    /// The bar of one epoch of `steps` steps, when this shows a bar.
    pub fn epoch_bar(self, steps: usize, epoch: usize, epochs: usize) -> EpochBar {
        EpochBar::new(self == Progress::Bar, steps, epoch, epochs)
    }
}

/// One epoch's progress bar (absent unless asked for and built with `cli`).
pub struct EpochBar {
    #[cfg(feature = "cli")]
    bar: Option<indicatif::ProgressBar>,
}

impl EpochBar {
    #[cfg(feature = "cli")]
    fn new(show: bool, steps: usize, epoch: usize, epochs: usize) -> Self {
        let bar = show.then(|| {
            let b = indicatif::ProgressBar::new(steps as u64);
            let style = indicatif::ProgressStyle::with_template(&format!(
                "epoch {}/{epochs} [{{bar:30}}] {{pos}}/{{len}} {{msg}} ETA {{eta}}",
                epoch + 1
            ))
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar());
            b.set_style(style);
            b
        });
        Self { bar }
    }

    #[cfg(not(feature = "cli"))]
    fn new(_show: bool, _steps: usize, _epoch: usize, _epochs: usize) -> Self {
        Self {}
    }

    /// Steps done so far, with a message (loss, rate).
    pub fn set(&self, done: usize, msg: impl FnOnce() -> String) {
        #[cfg(feature = "cli")]
        if let Some(b) = &self.bar {
            b.set_position(done as u64);
            b.set_message(msg());
        }
        #[cfg(not(feature = "cli"))]
        let _ = (done, msg);
    }

    /// Removes the bar from the terminal.
    pub fn clear(&self) {
        #[cfg(feature = "cli")]
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
    }
}
