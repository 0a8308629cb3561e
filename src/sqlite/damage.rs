//! Damaged files: SQLite's own verdict that a file is not a sound database
//! (`SQLITE_CORRUPT`, `SQLITE_NOTADB`), and what the operator can do about it.
//!
//! A damaged file is never repaired or replaced here: the choice between a backup and an
//! empty file loses different data, so the message names both and what each loses.

use std::path::Path;

/// SQLite's primary result codes for a damaged file (the extended codes keep them in the
/// low byte): `SQLITE_CORRUPT` and `SQLITE_NOTADB`.
const CORRUPT: i32 = 11;
const NOT_A_DATABASE: i32 = 26;

fn is_damage_code(code: i32) -> bool {
    matches!(code & 0xff, CORRUPT | NOT_A_DATABASE)
}

/// Whether rusqlite's error says the file is damaged.
pub fn is_damaged(e: &rusqlite::Error) -> bool {
    matches!(e, rusqlite::Error::SqliteFailure(f, _) if is_damage_code(f.extended_code))
}

/// Whether sqlx's error says the file is damaged.
pub fn sqlx_is_damaged(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Database(db) => db
            .code()
            .and_then(|c| c.parse::<i32>().ok())
            .is_some_and(is_damage_code),
        _ => false,
    }
}

/// Whether a migration failed because the file is damaged.
pub fn migrate_is_damaged(e: &sqlx::migrate::MigrateError) -> bool {
    use sqlx::migrate::MigrateError;
    match e {
        MigrateError::Execute(e) | MigrateError::ExecuteMigration(e, _) => sqlx_is_damaged(e),
        _ => false,
    }
}

/// When opening `path` failed because the file is damaged: the whole message, SQLite's words
/// and `what_to_do`. `None` for any other failure.
pub fn open_damaged(
    path: &Path,
    e: &rusqlite::Error,
    what_to_do: impl FnOnce(&Path) -> String,
) -> Option<String> {
    is_damaged(e).then(|| {
        format!(
            "cannot open {}: the file is damaged ({e})\n{}",
            path.display(),
            what_to_do(path)
        )
    })
}

/// What the operator can do about the damaged `path`, and what each way loses. `lost`
/// says what moving the file aside loses, e.g. "every record stored so far".
pub fn what_to_do(path: &Path, lost: &str) -> String {
    let file = path.display();
    let dir = path
        .parent()
        .map(|d| d.display().to_string())
        .unwrap_or_else(|| ".".into());
    format!(
        "Stop every latamctl process that uses {dir}, then either:\n  \
         - restore {file} from your latest backup (a copy taken while latamctl was stopped, \
         or a volume snapshot); what was written after the backup is lost; or\n  \
         - move it aside with its -wal and -shm files: \
         for f in {file} {file}-wal {file}-shm; do [ -e \"$f\" ] && mv \"$f\" \"$f.damaged\"; done\n    \
         `latamctl serve` then creates an empty file. Lost if you do: {lost}. \
         SQLite may salvage rows from the moved file: sqlite3 {file}.damaged .recover > recovered.sql"
    )
}

/// The one-line hint for `status`: the first line of `error` (the path and SQLite's words)
/// and the two ways out; `serve` prints the steps and what each loses.
pub fn status_hint(error: &str) -> String {
    let first = error.lines().next().unwrap_or_default();
    format!(
        "{first}: restore it from a backup, or move it aside with its -wal and -shm files \
         (`latamctl serve` on this data directory prints the steps and what each loses)"
    )
}
