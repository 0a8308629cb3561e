//! `latamctl completions SHELL` and `latamctl completions --man DIR`: completion scripts and
//! man pages from the same clap definitions, so neither can drift from the flags.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use clap::{Args, CommandFactory};
use clap_complete::Shell;

use super::{Cli, Exit};

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// Shell to generate completions for.
    #[arg(value_enum, required_unless_present = "man")]
    pub shell: Option<Shell>,
    /// Write man pages instead: `latamctl.1` and one `latamctl-COMMAND.1` per subcommand
    /// (nested ones too, e.g. `latamctl-render-helm.1`) into DIR (created if missing).
    #[arg(long, value_name = "DIR", conflicts_with = "shell")]
    pub man: Option<PathBuf>,
}

pub fn run(args: CompletionsArgs) -> anyhow::Result<Exit> {
    let mut cmd = Cli::command();
    if let Some(dir) = args.man {
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create the man page directory {}", dir.display()))?;
        cmd.build();
        let mut written = Vec::new();
        write_pages(&cmd, "latamctl", &dir, &mut written)?;
        for path in &written {
            println!("{}", path.display());
        }
        return Ok(Exit::Success);
    }
    let shell = args.shell.expect("clap requires SHELL without --man");
    clap_complete::generate(shell, &mut cmd, "latamctl", &mut std::io::stdout());
    Ok(Exit::Success)
}

/// `cmd`'s page as `NAME.1`, then its subcommands' pages as `NAME-SUB.1`.
fn write_pages(
    cmd: &clap::Command,
    name: &str,
    dir: &Path,
    written: &mut Vec<PathBuf>,
) -> anyhow::Result<()> {
    let page = cmd.clone().name(name.to_owned());
    let mut out = Vec::new();
    clap_mangen::Man::new(page).render(&mut out)?;
    let path = dir.join(format!("{name}.1"));
    std::fs::write(&path, out).with_context(|| format!("cannot write {}", path.display()))?;
    written.push(path);
    for sub in cmd.get_subcommands().filter(|s| s.get_name() != "help") {
        write_pages(sub, &format!("{name}-{}", sub.get_name()), dir, written)?;
    }
    Ok(())
}
