//! Saved sessions are untrusted input: a session folder unpacked from
//! someone else may hold symlinks, special files, oversized files, npz
//! entries whose headers claim shapes their bytes do not back, NaN states or
//! states that do not match the session's own tokens. Each is refused with a
//! 400 naming the session, the file and the problem; nothing aborts the
//! process, follows a link or reads without bound. Also: `.tmp-*` folders
//! left by a crash mid-save are removed when the server starts.

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use axum::http::StatusCode;
use common::server::{server_with, TestServer};
use common::*;
use logitlens_server::{AppState, ServerConfig};
use ndarray::{ArrayD, Axis, IxDyn, Slice};
use ndarray_npy::WriteNpyExt;
use serde_json::{json, Value};

const TEXT: &str = "The capital of France is";

type Server = TestServer;

async fn loaded(family: &str) -> Server {
    let s = server_with(|_| {});
    s.load(tiny(family)).await;
    s
}

impl TestServer {
    fn root(&self) -> PathBuf {
        self.dir.path().join("saved_states")
    }

    /// Run the prompt and save it; returns the session id.
    async fn saved(&self, name: &str) -> String {
        let (st, v) = self
            .post("/inference", json!({"text": TEXT, "lens_type": "combined"}))
            .await;
        assert_eq!(st, StatusCode::OK, "{v}");
        let (st, v) = self.post("/save_state", json!({"name": name})).await;
        assert_eq!(st, StatusCode::OK, "{v}");
        v["session_id"].as_str().unwrap().to_string()
    }

    /// A copy of session `from` as `20990101_000000_<name>`, its arrays
    /// and config changed by `edit`.
    fn copy(
        &self,
        from: &str,
        name: &str,
        edit: impl FnOnce(&mut Vec<(String, Vec<u8>)>, &mut Value),
    ) -> String {
        let id = format!("20990101_000000_{name}");
        let (src, dst) = (self.root().join(from), self.root().join(&id));
        std::fs::create_dir_all(&dst).unwrap();
        let mut cfg: Value =
            serde_json::from_slice(&std::fs::read(src.join("config.json")).unwrap()).unwrap();
        let mut arrays = npz_entries(&src.join("tensors.npz"));
        edit(&mut arrays, &mut cfg);
        std::fs::write(dst.join("config.json"), cfg.to_string()).unwrap();
        write_npz(&dst.join("tensors.npz"), &arrays);
        id
    }

    /// A session folder with a minimal config.json and no tensors.
    fn bare(&self, name: &str) -> PathBuf {
        let dir = self.root().join(format!("20990101_000000_{name}"));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("config.json"), BARE_CONFIG).unwrap();
        dir
    }

    /// Every file under the data folder that contains `needle`.
    fn files_containing(&self, needle: &[u8]) -> Vec<PathBuf> {
        fn walk(p: &Path, needle: &[u8], out: &mut Vec<PathBuf>) {
            for e in std::fs::read_dir(p).unwrap().flatten() {
                let t = e.file_type().unwrap();
                if t.is_dir() {
                    walk(&e.path(), needle, out);
                } else if t.is_file() {
                    let b = std::fs::read(e.path()).unwrap();
                    if b.windows(needle.len()).any(|w| w == needle) {
                        out.push(e.path());
                    }
                }
            }
        }
        let mut out = Vec::new();
        walk(self.dir.path(), needle, &mut out);
        out
    }
}

const BARE_CONFIG: &str = r#"{"text":"x","interventions":{},"lens_type":"block_output","model_name":"m","results":{"text":"x","logit_lens":[]}}"#;

fn detail(v: &Value) -> &str {
    v["detail"]
        .as_str()
        .unwrap_or_else(|| panic!("no detail in {v}"))
}

/// A 400 whose detail names the session, the file and each of `words`.
fn assert_refused(st: StatusCode, v: &Value, id: &str, file: &str, words: &[&str]) {
    assert_eq!(st, StatusCode::BAD_REQUEST, "{v}");
    let d = detail(v);
    assert!(d.contains(id), "names the session {id}: {d}");
    assert!(d.contains(file), "names the file {file}: {d}");
    for w in words {
        assert!(d.contains(w), "says {w:?}: {d}");
    }
}

fn npz_entries(path: &Path) -> Vec<(String, Vec<u8>)> {
    let mut z = zip::ZipArchive::new(std::fs::File::open(path).unwrap()).unwrap();
    (0..z.len())
        .map(|i| {
            let mut f = z.by_index(i).unwrap();
            let mut b = Vec::new();
            std::io::Read::read_to_end(&mut f, &mut b).unwrap();
            (f.name().to_string(), b)
        })
        .collect()
}

fn write_npz(path: &Path, entries: &[(String, Vec<u8>)]) {
    let mut z = zip::ZipWriter::new(std::fs::File::create(path).unwrap());
    let opts = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Stored)
        .large_file(true);
    for (name, bytes) in entries {
        z.start_file(name.as_str(), opts).unwrap();
        std::io::Write::write_all(&mut z, bytes).unwrap();
    }
    z.finish().unwrap();
}

/// A .npy with this header and these data bytes (not necessarily matching).
fn npy(descr: &str, shape: &str, data: &[u8]) -> Vec<u8> {
    let header = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}");
    let unpadded = 10 + header.len() + 1;
    let pad = (64 - unpadded % 64) % 64;
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend_from_slice(&((header.len() + pad + 1) as u16).to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    out.extend(std::iter::repeat_n(b' ', pad));
    out.push(b'\n');
    out.extend_from_slice(data);
    out
}

fn f32_npy(a: &ArrayD<f32>) -> Vec<u8> {
    let mut b = Vec::new();
    a.as_standard_layout().write_npy(&mut b).unwrap();
    b
}

fn hidden_of(entries: &[(String, Vec<u8>)]) -> ArrayD<f32> {
    let b = &entries
        .iter()
        .find(|(n, _)| n == "hidden_states.npy")
        .unwrap()
        .1;
    ndarray_npy::ReadNpyExt::read_npy(std::io::Cursor::new(b)).unwrap()
}

fn set_entry(entries: &mut [(String, Vec<u8>)], name: &str, bytes: Vec<u8>) {
    let e = entries.iter_mut().find(|(n, _)| n == name).unwrap();
    e.1 = bytes;
}

/// Every array cut to its first `n` tokens (as if saved from a shorter
/// prompt), the config left as it is.
fn first_tokens(entries: &mut [(String, Vec<u8>)], n: usize) {
    for (name, token_axes) in [
        ("hidden_states.npy", &[2][..]),
        ("logits.npy", &[1]),
        ("post_attention_states.npy", &[2]),
        ("attentions.npy", &[3, 4]),
    ] {
        let Some(e) = entries.iter_mut().find(|(e, _)| e == name) else {
            continue;
        };
        let mut a: ArrayD<f32> =
            ndarray_npy::ReadNpyExt::read_npy(std::io::Cursor::new(&e.1)).unwrap();
        for &axis in token_axes {
            a = a.slice_axis(Axis(axis), Slice::from(0..n)).to_owned();
        }
        e.1 = f32_npy(&a);
    }
}

#[cfg(unix)]
fn symlink(target: &Path, link: &Path) {
    std::os::unix::fs::symlink(target, link).unwrap();
}

async fn assert_still_serving(s: &Server) {
    let (st, _) = s.get("/model_status").await;
    assert_eq!(st, StatusCode::OK);
}

/// An npy header claiming 10^12 x 1 x 13 x 64 floats, in a file of a few
/// hundred bytes: refused from the header and the entry's size, before any
/// allocation (it used to abort the process: "memory allocation of
/// 3328000000000000 bytes failed").
#[tokio::test]
async fn a_huge_claimed_shape_is_refused_without_allocating() {
    let s = loaded("llama").await;
    let good = s.saved("good").await;
    let huge = s.copy(&good, "huge", |e, _| {
        let bytes = npy("<f4", "(1000000000000, 1, 13, 64)", &[0u8; 64]);
        set_entry(e, "hidden_states.npy", bytes);
    });
    for body in [json!({"a": good, "b": huge}), json!({"a": huge, "b": good})] {
        let (st, v) = s.post("/diff_sessions", body).await;
        assert_refused(
            st,
            &v,
            &huge,
            "tensors.npz",
            &["hidden_states", "3328000000000000 bytes"],
        );
    }
    // The same claim for an array the diff does not read is refused too.
    let logits = s.copy(&good, "huge_logits", |e, _| {
        set_entry(e, "logits.npy", npy("<f4", "(1, 13, 99999999999999)", &[]));
    });
    let (st, v) = s
        .post("/diff_sessions", json!({"a": good, "b": logits}))
        .await;
    assert_refused(st, &v, &logits, "tensors.npz", &["logits"]);
    assert_still_serving(&s).await;
}

/// config.json linked to a file outside the session: not followed.
#[cfg(unix)]
#[tokio::test]
async fn a_symlinked_config_json_is_refused() {
    let s = server_with(|_| {});
    let outside = tempfile::tempdir().unwrap();
    let secret = outside.path().join("secret.json");
    std::fs::write(&secret, r#"{"text": "SECRET-OUTSIDE"}"#).unwrap();
    let dir = s.root().join("20990101_000000_link");
    std::fs::create_dir_all(&dir).unwrap();
    symlink(&secret, &dir.join("config.json"));
    let id = "20990101_000000_link";
    let (st, v) = s.post("/load_session", json!({"session_id": id})).await;
    assert_refused(st, &v, id, "config.json", &["symbolic link"]);
    assert!(!v.to_string().contains("SECRET"), "{v}");
    let (st, v) = s.post("/diff_sessions", json!({"a": id, "b": id})).await;
    assert_refused(st, &v, id, "config.json", &["symbolic link"]);
    // Nothing was loaded, so there is nothing to re-save.
    let (st, _) = s.post("/save_state", json!({})).await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
}

/// tensors.npz linked to a file outside: /load_session refuses it, so
/// /save_state never copies the outside file into a new session.
#[cfg(unix)]
#[tokio::test]
async fn a_symlinked_tensors_npz_is_refused_and_never_resaved() {
    let s = server_with(|_| {});
    let outside = tempfile::tempdir().unwrap();
    let secret = outside.path().join("private.bin");
    std::fs::write(&secret, b"SECRET-OUTSIDE-BYTES").unwrap();
    let dir = s.bare("npzlink");
    symlink(&secret, &dir.join("tensors.npz"));
    let id = "20990101_000000_npzlink";
    let (st, v) = s.post("/load_session", json!({"session_id": id})).await;
    assert_refused(st, &v, id, "tensors.npz", &["symbolic link"]);
    let (st, v) = s.post("/save_state", json!({"name": "copy"})).await;
    assert_eq!(
        (st, detail(&v)),
        (StatusCode::BAD_REQUEST, "No state to save")
    );
    assert_eq!(
        s.files_containing(b"SECRET-OUTSIDE"),
        Vec::<PathBuf>::new(),
        "the outside file was copied"
    );
    let (st, v) = s.post("/diff_sessions", json!({"a": id, "b": id})).await;
    assert_refused(st, &v, id, "tensors.npz", &["symbolic link"]);

    // A session loaded while its file was regular is re-saved from what was
    // read then, not from whatever the name points to later.
    let ok = s.bare("later");
    std::fs::write(ok.join("tensors.npz"), b"ORIGINAL-BYTES").unwrap();
    let (st, v) = s
        .post(
            "/load_session",
            json!({"session_id": "20990101_000000_later"}),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    std::fs::remove_file(ok.join("tensors.npz")).unwrap();
    symlink(&secret, &ok.join("tensors.npz"));
    let (st, v) = s.post("/save_state", json!({"name": "resaved"})).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    let resaved = s
        .root()
        .join(v["session_id"].as_str().unwrap())
        .join("tensors.npz");
    assert_eq!(std::fs::read(resaved).unwrap(), b"ORIGINAL-BYTES");
}

/// tensors.npz linked to /dev/zero used to be read until memory ran out.
#[cfg(unix)]
#[tokio::test]
async fn a_tensors_npz_linked_to_dev_zero_is_refused() {
    let s = server_with(|_| {});
    let dir = s.bare("zero");
    symlink(Path::new("/dev/zero"), &dir.join("tensors.npz"));
    let id = "20990101_000000_zero";
    let (st, v) = s.post("/load_session", json!({"session_id": id})).await;
    assert_refused(st, &v, id, "tensors.npz", &["symbolic link"]);
    let (st, v) = s.post("/diff_sessions", json!({"a": id, "b": id})).await;
    assert_refused(st, &v, id, "tensors.npz", &["symbolic link"]);
}

/// Session files that are not regular files (a folder, a named pipe) are
/// refused without being opened: a pipe used to block the request until a
/// writer came, a folder was a 500.
#[cfg(unix)]
#[tokio::test]
async fn session_files_must_be_regular_files() {
    let s = server_with(|_| {});
    let dir = s.bare("folder");
    std::fs::create_dir(dir.join("tensors.npz")).unwrap();
    let id = "20990101_000000_folder";
    let (st, v) = s.post("/load_session", json!({"session_id": id})).await;
    assert_refused(st, &v, id, "tensors.npz", &["not a regular file"]);

    let cfg_dir = s.root().join("20990101_000000_cfgdir");
    std::fs::create_dir_all(cfg_dir.join("config.json")).unwrap();
    let (st, v) = s
        .post(
            "/load_session",
            json!({"session_id": "20990101_000000_cfgdir"}),
        )
        .await;
    assert_refused(
        st,
        &v,
        "20990101_000000_cfgdir",
        "config.json",
        &["not a regular file"],
    );

    let dir = s.bare("fifo");
    let fifo = dir.join("tensors.npz");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .is_ok_and(|st| st.success());
    if made {
        // Should the pipe be opened after all, a writer that closes at once
        // lets the read end (with an empty file) instead of hanging the test.
        let f = fifo.clone();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_secs(3));
            let _ = std::fs::OpenOptions::new().write(true).open(f);
        });
        let id = "20990101_000000_fifo";
        let (st, v) = s.post("/load_session", json!({"session_id": id})).await;
        assert_refused(st, &v, id, "tensors.npz", &["not a regular file"]);
    }
}

/// Files over the limits are refused from their size, without being read
/// (both are sparse here: nothing is written to disk).
#[tokio::test]
async fn oversized_session_files_are_refused_unread() {
    let s = server_with(|_| {});
    let dir = s.root().join("20990101_000000_bigcfg");
    std::fs::create_dir_all(&dir).unwrap();
    let f = std::fs::File::create(dir.join("config.json")).unwrap();
    f.set_len(logitlens_server::sessions::MAX_CONFIG_BYTES + 1)
        .unwrap();
    let id = "20990101_000000_bigcfg";
    let (st, v) = s.post("/load_session", json!({"session_id": id})).await;
    assert_refused(st, &v, id, "config.json", &["limit"]);

    let dir = s.bare("bignpz");
    let f = std::fs::File::create(dir.join("tensors.npz")).unwrap();
    f.set_len(logitlens_server::sessions::MAX_TENSORS_BYTES + 1)
        .unwrap();
    let id = "20990101_000000_bignpz";
    let (st, v) = s.post("/load_session", json!({"session_id": id})).await;
    assert_refused(st, &v, id, "tensors.npz", &["limit"]);
    let (st, v) = s.post("/diff_sessions", json!({"a": id, "b": id})).await;
    assert_refused(st, &v, id, "tensors.npz", &["limit"]);
}

/// States of fewer tokens than the session's input_ids: a 400, where both
/// sessions cut alike used to give a 200 with the positions dropped.
#[tokio::test]
async fn states_must_have_as_many_tokens_as_input_ids() {
    let s = loaded("llama").await;
    let good = s.saved("good").await;
    let a = s.copy(&good, "cut_a", |e, _| first_tokens(e, 12));
    let b = s.copy(&good, "cut_b", |e, _| first_tokens(e, 12));
    let (st, v) = s.post("/diff_sessions", json!({"a": a, "b": b})).await;
    assert_refused(
        st,
        &v,
        &a,
        "tensors.npz",
        &["hidden_states", "12 tokens", "input_ids", "13"],
    );
    // One session cut, the other whole: the cut one is named.
    for body in [json!({"a": good, "b": b}), json!({"a": b, "b": good})] {
        let (st, v) = s.post("/diff_sessions", body).await;
        assert_refused(st, &v, &b, "tensors.npz", &["12 tokens", "input_ids"]);
    }
}

/// Two sessions each consistent with its own input_ids, of different
/// lengths: the 400 names both sessions and their token counts.
#[tokio::test]
async fn states_must_have_as_many_tokens_as_the_other_session() {
    let s = loaded("llama").await;
    let good = s.saved("good").await;
    let short = s.copy(&good, "short", |e, cfg| {
        first_tokens(e, 12);
        let ids = cfg["input_ids"].as_array().unwrap()[..12].to_vec();
        cfg["input_ids"] = Value::Array(ids);
    });
    for body in [
        json!({"a": good, "b": short}),
        json!({"a": short, "b": good}),
    ] {
        let (st, v) = s.post("/diff_sessions", body.clone()).await;
        assert_eq!(st, StatusCode::BAD_REQUEST, "{v}");
        let d = detail(&v);
        for w in [good.as_str(), short.as_str(), "13", "12", "input_ids"] {
            assert!(d.contains(w), "{body}: says {w:?}: {d}");
        }
    }
}

/// A session longer than any prompt this server runs is refused before its
/// states are read (the lens would project [tokens, vocabulary] per row).
#[tokio::test]
async fn sessions_longer_than_the_token_limit_are_refused() {
    let s = loaded("llama").await;
    let good = s.saved("good").await;
    let strict = Server {
        state: AppState::new(ServerConfig {
            data_dir: s.dir.path().to_path_buf(),
            max_prompt_tokens: 12,
            ..Default::default()
        })
        .unwrap(),
        dir: tempfile::tempdir().unwrap(),
    };
    let (st, v) = strict
        .post("/diff_sessions", json!({"a": good, "b": good}))
        .await;
    assert_refused(
        st,
        &v,
        &good,
        "config.json",
        &["input_ids", "13 tokens", "limit is 12 tokens"],
    );
}

/// NaN or infinite states are a 400 naming the session and the row.
#[tokio::test]
async fn non_finite_states_are_refused_naming_the_row() {
    let s = loaded("llama").await;
    let good = s.saved("good").await;
    for (name, value, row, word) in [
        ("nan", f32::NAN, 3, "NaN"),
        ("inf", f32::INFINITY, 5, "inf"),
        ("neg_inf", f32::NEG_INFINITY, 0, "inf"),
    ] {
        let bad = s.copy(&good, name, |e, _| {
            let mut h = hidden_of(e);
            h[[row, 0, 7, 11]] = value;
            set_entry(e, "hidden_states.npy", f32_npy(&h));
        });
        for body in [json!({"a": good, "b": bad}), json!({"a": bad, "b": good})] {
            let (st, v) = s.post("/diff_sessions", body).await;
            assert_refused(
                st,
                &v,
                &bad,
                "tensors.npz",
                &["hidden_states", &format!("row {row}"), word, "token 7"],
            );
        }
    }
}

/// 0-d and empty arrays stay refused, now for every array of the file, not
/// only hidden_states (a 0-d layer_names or logits used to pass unseen).
#[tokio::test]
async fn zero_d_and_empty_arrays_are_refused() {
    let s = loaded("llama").await;
    let good = s.saved("good").await;
    let zero_d = npy("<f4", "()", &1f32.to_le_bytes());
    let cases: Vec<(String, &str)> = vec![
        (
            s.copy(&good, "hidden_0d", |e, _| {
                set_entry(e, "hidden_states.npy", zero_d.clone())
            }),
            "not [rows, 1, tokens, hidden size]",
        ),
        (
            s.copy(&good, "hidden_empty", |e, _| {
                let empty = ArrayD::<f32>::zeros(IxDyn(&[0, 1, 0, 64]));
                set_entry(e, "hidden_states.npy", f32_npy(&empty))
            }),
            "is empty",
        ),
        (
            s.copy(&good, "zero_tokens", |e, cfg| {
                first_tokens(e, 0);
                cfg["input_ids"] = json!([]);
            }),
            "is empty",
        ),
        (
            s.copy(&good, "names_0d", |e, _| {
                set_entry(e, "layer_names.npy", npy("<U4", "()", &[0u8; 16]))
            }),
            "layer_names",
        ),
        (
            s.copy(&good, "logits_0d", |e, _| {
                set_entry(e, "logits.npy", zero_d.clone())
            }),
            "logits",
        ),
    ];
    for (id, want) in &cases {
        for body in [json!({"a": good, "b": id}), json!({"a": id, "b": good})] {
            let (st, v) = s.post("/diff_sessions", body.clone()).await;
            assert_refused(st, &v, id, "tensors.npz", &[want]);
        }
    }
    assert_still_serving(&s).await;
}

fn set_mtime(path: &Path, t: SystemTime) {
    std::fs::File::open(path).unwrap().set_modified(t).unwrap();
}

/// A crash mid-save leaves `saved_states/.tmp-<pid>-<n>/`. At start the
/// server removes those of that layout (only config.json and tensors.npz
/// inside, as Sessions::save writes them) untouched for an hour; a recent one
/// may be another server's save in progress on the same folder and stays,
/// as does anything that is not of that layout.
#[tokio::test]
async fn stale_tmp_folders_are_removed_at_start() {
    let data = tempfile::tempdir().unwrap();
    let root = data.path().join("saved_states");
    std::fs::create_dir_all(&root).unwrap();
    let old = SystemTime::now() - Duration::from_secs(3 * 3600);
    let make = |name: &str, files: &[&str], aged: bool| -> PathBuf {
        let d = root.join(name);
        std::fs::create_dir_all(&d).unwrap();
        for f in files {
            std::fs::write(d.join(f), b"{}").unwrap();
            if aged {
                set_mtime(&d.join(f), old);
            }
        }
        if aged {
            set_mtime(&d, old);
        }
        d
    };
    let stale = make(".tmp-4242-0", &["config.json", "tensors.npz"], true);
    let stale_empty = make(".tmp-4242-1", &[], true);
    let recent = make(".tmp-4242-2", &["config.json"], false);
    let foreign_file = make(".tmp-4242-3", &["config.json", "notes.txt"], true);
    let other_name = make(".tmp-backup", &["config.json"], true);
    let session = make("20200101_000000_old", &["config.json"], true);
    #[cfg(unix)]
    let outside = {
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("config.json"), b"{}").unwrap();
        symlink(outside.path(), &root.join(".tmp-4242-4"));
        outside
    };

    let _state = AppState::new(ServerConfig {
        data_dir: data.path().to_path_buf(),
        ..Default::default()
    })
    .unwrap();
    assert!(!stale.exists(), "a stale save was left");
    assert!(!stale_empty.exists(), "a stale empty save was left");
    for kept in [&recent, &foreign_file, &other_name, &session] {
        assert!(kept.join("config.json").is_file(), "{kept:?} was removed");
    }
    assert!(foreign_file.join("notes.txt").is_file());
    #[cfg(unix)]
    {
        assert!(root.join(".tmp-4242-4").symlink_metadata().is_ok());
        assert!(outside.path().join("config.json").is_file());
    }
}
