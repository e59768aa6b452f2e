//! One attachment classified by name and content; archives listed and checked (reg. 3.5).
//!
//! [`inspect`] looks at one file — its decoded name and bytes — and says what kind of file it is
//! and what is wrong with it. It never decides the mail's fate: the engine counts images, adds up
//! sizes and picks the decision group from the findings.
//!
//! # What is decided here
//! - The extension (the part after the last dot, lower-cased) says what the file claims to be;
//!   the bytes must agree. The `Content-Type` is a hint from the sender's mailer and is ignored.
//! - Executable content (PE/MZ, ELF, Mach-O, Java class, Android DEX) is dangerous whatever the
//!   name, and so is a name with a dangerous extension or with Unicode direction overrides
//!   (`отчёт\u{202E}fdp.exe` shows as `отчётexe.pdf`).
//! - A file claiming an accepted type whose bytes are something else entirely is dangerous
//!   (`photo.jpg` that is an EXE or random bytes; `a.zip` that is not an archive).
//! - Images are recognised by content. A PNG named `.jpg` is an image with an `extension_mismatch`
//!   warning. A real image of a kind the desk does not take (BMP, TIFF, WebP, HEIC) named `.png`
//!   is `attachment_type`, not dangerous: it is a wrong format, not an attack — the sender only
//!   has to convert it.
//! - Office documents (docx, xlsx, odt, …) are zip containers but are never opened as archives.
//! - ZIP, 7z and RAR archives are listed and every entry is stream-decompressed into a small
//!   buffer and discarded, within a budget of `archive_max_unpacked + 1` bytes for the whole
//!   archive: that is how archives that lie about sizes, CRC errors and truncation are found.
//!   Nothing is ever extracted to disk. RAR is the one exception to "no I/O": the `unrar` library
//!   reads from a path, so the bytes go to an anonymous in-memory file (memfd, read as
//!   `/proc/self/fd/N`) or, where there is none, to a file in a private temporary directory;
//!   either is gone when the inspection ends (on every path, errors and panics included).
//!
//! # Never panics
//! Every input is handled without panicking: slicing is checked, and each third-party archive
//! reader runs under `catch_unwind` as the last line of defence; a panic there is reported as
//! `archive_unreadable`.

use std::collections::HashMap;
use std::io::{self, Cursor, Read};
use std::panic::{catch_unwind, AssertUnwindSafe};

use serde::Deserialize;

use crate::verdict::{ArchiveEntry, AttachmentKind, Code, Reason};

/// The rules for attachments (`rules/attachments.toml`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AttachmentRules {
    /// Screenshots (reg. 3.5): JPG, GIF, PNG — recognised by content.
    pub image_ext: Vec<String>,
    /// Archives (reg. 3.5): listed and checked entry by entry.
    pub archive_ext: Vec<String>,
    /// Additions to a request, never a request on their own (reg. 3.1): doc/docx and video.
    pub supplement_ext: Vec<String>,
    /// Other documents the desk accepts.
    pub document_ext: Vec<String>,
    /// Executables and scripts: the mail is rejected.
    pub dangerous_ext: Vec<String>,
    /// Total size of a mail's attachments (the engine's limit).
    pub max_total_bytes: u64,
    /// Screenshots outside archives (the engine's limit).
    pub max_images: usize,
    /// Declared or actually decompressed total of an archive over this is a bomb.
    pub archive_max_unpacked: u64,
    /// Unpacked/packed ratio over this is a bomb …
    pub archive_max_ratio: u64,
    /// … once the unpacked total is past this many bytes.
    pub archive_ratio_floor: u64,
    /// More entries than this in one archive is a bomb; listing stops there.
    pub archive_max_entries: usize,
}

/// What an extension claims a file to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Category {
    Image,
    Archive,
    Supplement,
    Document,
    Dangerous,
}

impl AttachmentRules {
    /// The shipped defaults, `rules/attachments.toml` as compiled into the binary.
    ///
    /// # Panics
    /// Only if the shipped file itself is broken, which the unit tests rule out.
    pub fn shipped() -> AttachmentRules {
        let rules: AttachmentRules =
            toml::from_str(SHIPPED_TOML).expect("rules/attachments.toml deserializes");
        rules.validate().expect("rules/attachments.toml is valid");
        rules
    }

    /// Non-empty lists of lower-case extensions without dots, no extension in two lists, and
    /// every limit above zero.
    pub fn validate(&self) -> Result<(), String> {
        let mut owner: HashMap<&str, &str> = HashMap::new();
        for (key, list) in self.lists() {
            if list.is_empty() {
                return Err(format!("attachments: {key} must not be empty"));
            }
            for ext in list {
                let ok = !ext.is_empty()
                    && !ext.starts_with('.')
                    && *ext == ext.to_lowercase()
                    && !ext
                        .chars()
                        .any(|c| c.is_whitespace() || c.is_control() || c == '/' || c == '\\');
                if !ok {
                    return Err(format!(
                        "attachments: {key}: {ext:?} must be a lower-case extension without a dot"
                    ));
                }
                if let Some(first) = owner.insert(ext.as_str(), key) {
                    return Err(if first == key {
                        format!("attachments: {key}: {ext:?} is listed twice")
                    } else {
                        format!("attachments: {ext:?} is in both {first} and {key}")
                    });
                }
            }
        }
        let limits: [(&str, u64); 6] = [
            ("max_total_bytes", self.max_total_bytes),
            ("max_images", self.max_images as u64),
            ("archive_max_unpacked", self.archive_max_unpacked),
            ("archive_max_ratio", self.archive_max_ratio),
            ("archive_ratio_floor", self.archive_ratio_floor),
            ("archive_max_entries", self.archive_max_entries as u64),
        ];
        for (key, value) in limits {
            if value == 0 {
                return Err(format!("attachments: {key} must be greater than 0"));
            }
        }
        Ok(())
    }

    fn lists(&self) -> [(&'static str, &Vec<String>); 5] {
        [
            ("image_ext", &self.image_ext),
            ("archive_ext", &self.archive_ext),
            ("supplement_ext", &self.supplement_ext),
            ("document_ext", &self.document_ext),
            ("dangerous_ext", &self.dangerous_ext),
        ]
    }

    fn category(&self, ext: Option<&str>) -> Option<Category> {
        let ext = ext?;
        let has = |list: &[String]| list.iter().any(|e| e == ext);
        // Dangerous first: should an admin list an extension twice anyway, safety wins.
        if has(&self.dangerous_ext) {
            Some(Category::Dangerous)
        } else if has(&self.image_ext) {
            Some(Category::Image)
        } else if has(&self.archive_ext) {
            Some(Category::Archive)
        } else if has(&self.supplement_ext) {
            Some(Category::Supplement)
        } else if has(&self.document_ext) {
            Some(Category::Document)
        } else {
            None
        }
    }
}

const SHIPPED_TOML: &str = include_str!("../../rules/attachments.toml");

/// What [`inspect`] found out about one attachment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inspection {
    /// `Image`, `Supplement`, `Document` when the bytes fit; `Archive` for a ZIP/7z/RAR (even
    /// one with findings: its listing still matters); `Other` for anything refused on its own.
    pub kind: AttachmentKind,
    /// Archive listing: name, declared uncompressed size, kind by the entry's extension.
    /// Directories and system clutter (`__MACOSX/`, `.DS_Store`, `Thumbs.db`) are left out.
    pub entries: Vec<ArchiveEntry>,
    /// Images inside an archive (counted, not limited); 0 for anything else.
    pub image_count: usize,
    /// `attachment_dangerous`, `attachment_type`, `archive_unreadable`, and the warning
    /// `extension_mismatch`. Each detail is a Russian sentence naming the file. For an archive,
    /// one finding per kind of problem, naming up to three entries («a», «b», «c» и ещё 4).
    pub findings: Vec<Reason>,
}

impl Inspection {
    fn new(kind: AttachmentKind) -> Self {
        Inspection {
            kind,
            entries: Vec::new(),
            image_count: 0,
            findings: Vec::new(),
        }
    }

    fn with(kind: AttachmentKind, code: Code, detail: String) -> Self {
        let mut ins = Inspection::new(kind);
        ins.findings.push(Reason::new(code, detail));
        ins
    }
}

/// The extension of a file name: the part after the last dot of the last path component,
/// lower-cased. Trailing dots and spaces are dropped first, as Windows does when it opens the
/// file (`отчёт.exe.` runs as `отчёт.exe`). `None` when there is no dot.
pub fn extension(name: &str) -> Option<String> {
    let base = name.rsplit(['/', '\\']).next().unwrap_or(name);
    let base = base.trim_end_matches(|c: char| c == '.' || c.is_whitespace());
    let (_, ext) = base.rsplit_once('.')?;
    let ext = ext.trim();
    if ext.is_empty() {
        None
    } else {
        Some(ext.to_lowercase())
    }
}

/// Classify one attachment by its decoded name and bytes.
///
/// `content_type` is accepted for the record but not trusted: the name and the bytes decide.
/// Pure apart from RAR (see the module docs); never panics.
pub fn inspect(name: &str, content_type: &str, data: &[u8], rules: &AttachmentRules) -> Inspection {
    let _ = content_type;
    let shown = display_name(name);
    let ext = extension(name);
    let ext = ext.as_deref();

    if name.chars().any(is_direction_override) {
        return Inspection::with(
            AttachmentKind::Other,
            Code::AttachmentDangerous,
            format!(
                "Имя файла «{shown}» содержит скрытые символы, меняющие порядок букв, — \
                 такие вложения не принимаются."
            ),
        );
    }
    let category = rules.category(ext);
    if category == Some(Category::Dangerous) {
        return Inspection::with(
            AttachmentKind::Other,
            Code::AttachmentDangerous,
            format!(
                "Файл «{shown}» — исполняемый файл или другой опасный тип (.{}); \
                 такие вложения не принимаются.",
                ext.unwrap_or("")
            ),
        );
    }
    if let Some(what) = executable_magic(data) {
        return Inspection::with(
            AttachmentKind::Other,
            Code::AttachmentDangerous,
            format!("Файл «{shown}» — {what}; такие вложения не принимаются."),
        );
    }
    if data.starts_with(b"#!") && !matches!(ext, Some("txt" | "csv")) {
        return Inspection::with(
            AttachmentKind::Other,
            Code::AttachmentDangerous,
            format!("Файл «{shown}» — скрипт; такие вложения не принимаются."),
        );
    }
    if data.is_empty() {
        return Inspection::with(
            AttachmentKind::Other,
            Code::AttachmentType,
            format!("Файл «{shown}» пустой (0 байт) — пришлите его ещё раз."),
        );
    }
    let mismatch = || {
        Inspection::with(
            AttachmentKind::Other,
            Code::AttachmentDangerous,
            format!(
                "Содержимое файла «{shown}» не соответствует расширению .{} — \
                 файл не принят из соображений безопасности.",
                ext.unwrap_or("")
            ),
        )
    };
    match category {
        Some(Category::Image) => {
            inspect_image(&shown, ext.unwrap_or(""), data, rules).unwrap_or_else(mismatch)
        }
        Some(Category::Archive) => {
            inspect_archive(&shown, ext.unwrap_or(""), data, rules).unwrap_or_else(mismatch)
        }
        Some(c @ (Category::Supplement | Category::Document)) => {
            if content_fits(ext.unwrap_or(""), data) {
                Inspection::new(if c == Category::Supplement {
                    AttachmentKind::Supplement
                } else {
                    AttachmentKind::Document
                })
            } else {
                mismatch()
            }
        }
        Some(Category::Dangerous) | None => Inspection::with(
            AttachmentKind::Other,
            Code::AttachmentType,
            format!(
                "Формат файла «{shown}» не принимается: скриншоты — JPG, GIF или PNG, \
                 архивы — ZIP, 7Z или RAR (п. 3.5 Регламента)."
            ),
        ),
    }
}

// ---------------------------------------------------------------------------------------------
// Names

/// Unicode embeddings, overrides and isolates: they reorder what a person reads.
fn is_direction_override(c: char) -> bool {
    matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// A file name fit for a sentence: control and direction characters shown as `?`, long names cut.
fn display_name(name: &str) -> String {
    const MAX: usize = 80;
    let mut out = String::new();
    for (i, c) in name.chars().enumerate() {
        if i == MAX {
            out.push('…');
            break;
        }
        let hidden = c.is_control()
            || is_direction_override(c)
            || matches!(c, '\u{200B}'..='\u{200F}' | '\u{FEFF}' | '\u{061C}');
        out.push(if hidden { '?' } else { c });
    }
    if out.is_empty() {
        out.push_str("без имени");
    }
    out
}

/// «a», «b», «c» и ещё 4
fn name_list(names: &[String]) -> String {
    const SHOWN: usize = 3;
    let mut out = names
        .iter()
        .take(SHOWN)
        .map(|n| format!("«{}»", display_name(n)))
        .collect::<Vec<_>>()
        .join(", ");
    if names.len() > SHOWN {
        out.push_str(&format!(" и ещё {}", names.len() - SHOWN));
    }
    out
}

fn megabytes(bytes: u64) -> String {
    const MB: u64 = 1024 * 1024;
    if bytes.is_multiple_of(MB) {
        format!("{} МБ", bytes / MB)
    } else {
        format!("{:.1} МБ", bytes as f64 / MB as f64)
    }
}

// ---------------------------------------------------------------------------------------------
// Magic bytes

/// Executable content, whatever the name: what it is, in words.
fn executable_magic(d: &[u8]) -> Option<&'static str> {
    if d.starts_with(b"MZ") {
        Some("программа Windows (EXE/DLL)")
    } else if d.starts_with(b"\x7fELF") {
        Some("программа Linux (ELF)")
    } else if d.starts_with(&[0xFE, 0xED, 0xFA, 0xCE])
        || d.starts_with(&[0xFE, 0xED, 0xFA, 0xCF])
        || d.starts_with(&[0xCE, 0xFA, 0xED, 0xFE])
        || d.starts_with(&[0xCF, 0xFA, 0xED, 0xFE])
    {
        Some("программа macOS (Mach-O)")
    } else if d.starts_with(&[0xCA, 0xFE, 0xBA, 0xBE]) {
        // A universal Mach-O binary and a Java class share this magic; both run.
        Some("программа macOS или Java")
    } else if d.starts_with(b"dex\n") {
        Some("программа Android (DEX)")
    } else {
        None
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ImageFormat {
    Png,
    Jpeg,
    Gif,
    Bmp,
    Tiff,
    Webp,
    Heif,
}

impl ImageFormat {
    /// Extensions under which this format is at home.
    fn exts(self) -> &'static [&'static str] {
        match self {
            ImageFormat::Png => &["png"],
            ImageFormat::Jpeg => &["jpg", "jpeg", "jpe", "jfif"],
            ImageFormat::Gif => &["gif"],
            ImageFormat::Bmp => &["bmp", "dib"],
            ImageFormat::Tiff => &["tif", "tiff"],
            ImageFormat::Webp => &["webp"],
            ImageFormat::Heif => &["heic", "heif", "avif"],
        }
    }

    fn label(self) -> &'static str {
        match self {
            ImageFormat::Png => "PNG",
            ImageFormat::Jpeg => "JPG",
            ImageFormat::Gif => "GIF",
            ImageFormat::Bmp => "BMP",
            ImageFormat::Tiff => "TIFF",
            ImageFormat::Webp => "WebP",
            ImageFormat::Heif => "HEIC/AVIF",
        }
    }
}

fn sniff_image(d: &[u8]) -> Option<ImageFormat> {
    if d.starts_with(b"\x89PNG\r\n\x1a\n") {
        Some(ImageFormat::Png)
    } else if d.starts_with(&[0xFF, 0xD8, 0xFF]) {
        Some(ImageFormat::Jpeg)
    } else if d.starts_with(b"GIF87a") || d.starts_with(b"GIF89a") {
        Some(ImageFormat::Gif)
    } else if d.starts_with(b"BM") && d.len() >= 26 {
        Some(ImageFormat::Bmp)
    } else if d.starts_with(b"II*\0") || d.starts_with(b"MM\0*") {
        Some(ImageFormat::Tiff)
    } else if d.starts_with(b"RIFF") && d.get(8..12) == Some(b"WEBP") {
        Some(ImageFormat::Webp)
    } else if d.get(4..8) == Some(b"ftyp")
        && matches!(
            d.get(8..12),
            Some(
                b"heic"
                    | b"heix"
                    | b"hevc"
                    | b"hevx"
                    | b"heim"
                    | b"heis"
                    | b"mif1"
                    | b"msf1"
                    | b"avif"
                    | b"avis"
            )
        )
    {
        Some(ImageFormat::Heif)
    } else {
        None
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ArchiveFormat {
    Zip,
    SevenZ,
    Rar,
}

impl ArchiveFormat {
    fn ext(self) -> &'static str {
        match self {
            ArchiveFormat::Zip => "zip",
            ArchiveFormat::SevenZ => "7z",
            ArchiveFormat::Rar => "rar",
        }
    }

    fn label(self) -> &'static str {
        match self {
            ArchiveFormat::Zip => "ZIP",
            ArchiveFormat::SevenZ => "7Z",
            ArchiveFormat::Rar => "RAR",
        }
    }
}

fn sniff_archive(d: &[u8]) -> Option<ArchiveFormat> {
    if d.starts_with(b"PK\x03\x04") || d.starts_with(b"PK\x05\x06") {
        Some(ArchiveFormat::Zip)
    } else if d.starts_with(&[b'7', b'z', 0xBC, 0xAF, 0x27, 0x1C]) {
        Some(ArchiveFormat::SevenZ)
    } else if d.starts_with(b"Rar!\x1a\x07\x00") || d.starts_with(b"Rar!\x1a\x07\x01\x00") {
        Some(ArchiveFormat::Rar)
    } else {
        None
    }
}

fn is_ole2(d: &[u8]) -> bool {
    d.starts_with(&[0xD0, 0xCF, 0x11, 0xE0, 0xA1, 0xB1, 0x1A, 0xE1])
}

fn is_zip_container(d: &[u8]) -> bool {
    d.starts_with(b"PK\x03\x04")
}

fn is_rtf(d: &[u8]) -> bool {
    let d = d.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(d);
    d.starts_with(b"{\\rtf")
}

/// Text in some encoding (UTF-8, Windows-1251, KOI8-R, UTF-16 with a BOM): no control bytes
/// other than whitespace, form feed, ESC and the DOS end-of-file mark in the first 8 KiB.
fn is_textual(d: &[u8]) -> bool {
    if d.starts_with(b"\xFF\xFE") || d.starts_with(b"\xFE\xFF") {
        return true;
    }
    d.iter()
        .take(8192)
        .all(|&b| !matches!(b, 0x00..=0x08 | 0x0E..=0x19 | 0x1C..=0x1F))
}

/// Loose video signatures: any container for any video extension (a phone's `.mp4` is often
/// 3GP and `.mpg` is often a transport stream), so real recordings are not turned away.
fn is_video(d: &[u8]) -> bool {
    let iso_box = matches!(
        d.get(4..8),
        Some(b"ftyp" | b"moov" | b"mdat" | b"free" | b"skip" | b"wide" | b"pnot" | b"uuid")
    );
    iso_box
        || d.starts_with(b"RIFF")
        || d.starts_with(&[0x1A, 0x45, 0xDF, 0xA3])
        || d.starts_with(b"FLV")
        || d.starts_with(&[0x00, 0x00, 0x01, 0xBA])
        || d.starts_with(&[0x00, 0x00, 0x01, 0xB3])
        || (d.first() == Some(&0x47) && d.get(188) == Some(&0x47))
        || d.starts_with(&[0x30, 0x26, 0xB2, 0x75, 0x8E, 0x66, 0xCF, 0x11])
}

/// Do the bytes of a supplement or document fit its extension? Lenient where real files vary:
/// a `.doc` may be RTF, HTML or a renamed docx; an `.xls` is often an HTML or XML export from a
/// medical information system; an Office file with a password is an OLE2 container. An extension
/// this table does not know (an admin added it to a list) is taken on trust.
fn content_fits(ext: &str, d: &[u8]) -> bool {
    match ext {
        "pdf" => d.windows(4).take(1024).any(|w| w == b"%PDF"),
        "doc" | "rtf" => is_ole2(d) || is_zip_container(d) || is_rtf(d) || is_textual(d),
        "xls" => is_ole2(d) || is_zip_container(d) || is_textual(d),
        "docx" | "xlsx" | "pptx" | "docm" | "xlsm" => is_zip_container(d) || is_ole2(d),
        "odt" | "ods" | "odp" | "odg" => is_zip_container(d),
        "txt" | "csv" => true,
        "mp4" | "m4v" | "mov" | "3gp" | "3g2" | "avi" | "mkv" | "webm" | "wmv" | "asf" | "flv"
        | "mpeg" | "mpg" | "ts" => is_video(d),
        _ => true,
    }
}

/// Office formats that are zip containers: inside an archive they are documents, not archives.
fn is_office_zip_ext(ext: Option<&str>) -> bool {
    matches!(
        ext,
        Some("docx" | "xlsx" | "pptx" | "odt" | "ods" | "odp" | "odg" | "doc" | "xls")
    )
}

// ---------------------------------------------------------------------------------------------
// Images

fn inspect_image(
    shown: &str,
    ext: &str,
    data: &[u8],
    rules: &AttachmentRules,
) -> Option<Inspection> {
    let format = sniff_image(data)?;
    let accepted = format
        .exts()
        .iter()
        .any(|e| rules.image_ext.iter().any(|r| r == e));
    if !accepted {
        return Some(Inspection::with(
            AttachmentKind::Other,
            Code::AttachmentType,
            format!(
                "Файл «{shown}» — изображение {}, а принимаются скриншоты JPG, GIF или PNG \
                 (п. 3.5 Регламента).",
                format.label()
            ),
        ));
    }
    let mut ins = Inspection::new(AttachmentKind::Image);
    if !format.exts().contains(&ext) {
        ins.findings.push(Reason::new(
            Code::ExtensionMismatch,
            format!(
                "Файл «{shown}» на самом деле — изображение {}, а не {}; принят как изображение.",
                format.label(),
                ext.to_uppercase()
            ),
        ));
    }
    Some(ins)
}

// ---------------------------------------------------------------------------------------------
// Archives

/// Bytes read from a decompressor at a time; the only buffer entries pass through.
const CHUNK: usize = 64 * 1024;
/// Leading bytes of each entry kept for magic checks.
const HEAD: usize = 16;
/// Memory a 7z decoder may take for its dictionary (7-Zip's "ultra" needs 64 MiB).
const SEVENZ_MEMORY_LIMIT_KB: usize = 256 * 1024;

fn inspect_archive(
    shown: &str,
    ext: &str,
    data: &[u8],
    rules: &AttachmentRules,
) -> Option<Inspection> {
    let format = sniff_archive(data)?;
    if !rules.archive_ext.iter().any(|e| e == format.ext()) {
        return Some(Inspection::with(
            AttachmentKind::Other,
            Code::AttachmentType,
            format!(
                "Файл «{shown}» — архив {}, а принимаются архивы ZIP, 7Z или RAR \
                 (п. 3.5 Регламента).",
                format.label()
            ),
        ));
    }
    let mut scan = Scan::new(rules, data.len() as u64);
    let outcome = catch_unwind(AssertUnwindSafe(|| match format {
        ArchiveFormat::Zip => scan_zip(data, &mut scan),
        ArchiveFormat::SevenZ => scan_7z(data, &mut scan),
        ArchiveFormat::Rar => scan_rar(data, &mut scan),
    }));
    if outcome.is_err() {
        scan.corrupt = true;
    }
    let mut ins = scan.finish(shown);
    if format.ext() != ext {
        ins.findings.push(Reason::new(
            Code::ExtensionMismatch,
            format!(
                "Файл «{shown}» на самом деле — архив {}, а не {}; проверен как {}.",
                format.label(),
                ext.to_uppercase(),
                format.label()
            ),
        ));
    }
    Some(ins)
}

/// Should the caller go on reading entries?
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flow {
    Go,
    Stop,
}

/// What is learnt while listing and reading one archive.
struct Scan<'r> {
    rules: &'r AttachmentRules,
    archive_len: u64,
    entries: Vec<ArchiveEntry>,
    image_count: usize,
    /// Records seen (files, directories, links): the entry limit counts them all.
    records: usize,
    declared: u64,
    /// Bytes actually decompressed so far, across entries.
    unpacked: u64,
    too_many: bool,
    over_size: bool,
    over_ratio: bool,
    bad_paths: Vec<String>,
    links: Vec<String>,
    executables: Vec<String>,
    size_lies: Vec<String>,
    nested: Vec<String>,
    wrong_type: Vec<String>,
    encrypted: bool,
    multi_volume: bool,
    corrupt: bool,
    buf: Vec<u8>,
}

impl<'r> Scan<'r> {
    fn new(rules: &'r AttachmentRules, archive_len: u64) -> Self {
        Scan {
            rules,
            archive_len: archive_len.max(1),
            entries: Vec::new(),
            image_count: 0,
            records: 0,
            declared: 0,
            unpacked: 0,
            too_many: false,
            over_size: false,
            over_ratio: false,
            bad_paths: Vec::new(),
            links: Vec::new(),
            executables: Vec::new(),
            size_lies: Vec::new(),
            nested: Vec::new(),
            wrong_type: Vec::new(),
            encrypted: false,
            multi_volume: false,
            corrupt: false,
            buf: Vec::new(),
        }
    }

    /// One record from the archive's headers. `Stop` once the entry limit is passed.
    fn record(&mut self, name: &str, size: u64, is_dir: bool, is_link: bool) -> Flow {
        self.records += 1;
        if self.records > self.rules.archive_max_entries {
            self.too_many = true;
            return Flow::Stop;
        }
        if path_escapes(name) {
            push_once(&mut self.bad_paths, name);
        }
        if is_link {
            push_once(&mut self.links, name);
            return Flow::Go;
        }
        if is_dir {
            return Flow::Go;
        }
        self.declared = self.declared.saturating_add(size);
        let ext = extension(name);
        let category = self.rules.category(ext.as_deref());
        if category == Some(Category::Dangerous) {
            push_once(&mut self.executables, name);
        }
        if is_clutter(name) {
            return Flow::Go;
        }
        let kind = match category {
            Some(Category::Image) => {
                self.image_count += 1;
                AttachmentKind::Image
            }
            Some(Category::Archive) => {
                push_once(&mut self.nested, name);
                AttachmentKind::Archive
            }
            Some(Category::Supplement) => AttachmentKind::Supplement,
            Some(Category::Document) => AttachmentKind::Document,
            Some(Category::Dangerous) => AttachmentKind::Other,
            None => {
                push_once(&mut self.wrong_type, name);
                AttachmentKind::Other
            }
        };
        self.entries.push(ArchiveEntry {
            name: name.to_string(),
            bytes: size,
            kind,
        });
        Flow::Go
    }

    /// After the listing: judge the declared sizes. `Go` when the contents may be read.
    fn judge_declared(&mut self) -> Flow {
        if self.declared > self.rules.archive_max_unpacked {
            self.over_size = true;
        }
        if self.ratio_exceeded(self.declared) {
            self.over_ratio = true;
        }
        if self.too_many || self.over_size || self.over_ratio {
            Flow::Stop
        } else {
            Flow::Go
        }
    }

    fn ratio_exceeded(&self, unpacked: u64) -> bool {
        unpacked > self.rules.archive_ratio_floor
            && u128::from(unpacked)
                > u128::from(self.rules.archive_max_ratio) * u128::from(self.archive_len)
    }

    /// Stream one entry through the buffer within the archive's budget: never more than
    /// `archive_max_unpacked + 1` bytes for the whole archive. Checks its first bytes.
    fn pump(&mut self, name: &str, r: &mut dyn Read) -> io::Result<Flow> {
        if self.buf.len() != CHUNK {
            self.buf = vec![0; CHUNK];
        }
        let limit = self.rules.archive_max_unpacked;
        let mut head = [0u8; HEAD];
        let mut head_len = 0;
        loop {
            let budget = limit.saturating_add(1).saturating_sub(self.unpacked);
            if budget == 0 {
                self.over_size = true;
                return Ok(Flow::Stop);
            }
            let want = usize::try_from(budget).unwrap_or(CHUNK).min(CHUNK);
            let n = match r.read(&mut self.buf[..want]) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            if n == 0 {
                break;
            }
            if head_len < HEAD {
                let take = (HEAD - head_len).min(n);
                head[head_len..head_len + take].copy_from_slice(&self.buf[..take]);
                head_len += take;
            }
            self.unpacked = self.unpacked.saturating_add(n as u64);
            if self.unpacked > limit {
                self.over_size = true;
                return Ok(Flow::Stop);
            }
            if self.ratio_exceeded(self.unpacked) {
                self.over_ratio = true;
                return Ok(Flow::Stop);
            }
        }
        self.check_head(name, &head[..head_len]);
        Ok(Flow::Go)
    }

    /// The first bytes of an entry: executables and archives hidden under another name.
    fn check_head(&mut self, name: &str, head: &[u8]) {
        let ext = extension(name);
        let ext = ext.as_deref();
        if executable_magic(head).is_some()
            || (head.starts_with(b"#!") && !matches!(ext, Some("txt" | "csv")))
        {
            push_once(&mut self.executables, name);
        } else if sniff_archive(head).is_some()
            && !is_office_zip_ext(ext)
            && !is_clutter(name)
            && self.rules.category(ext) != Some(Category::Archive)
        {
            push_once(&mut self.nested, name);
        }
    }

    fn finish(self, shown: &str) -> Inspection {
        let mut ins = Inspection::new(AttachmentKind::Archive);
        let mut add = |code: Code, text: String| ins.findings.push(Reason::new(code, text));
        let r = self.rules;
        if self.too_many {
            add(
                Code::AttachmentDangerous,
                format!(
                    "В архиве «{shown}» больше {} файлов — такие архивы не принимаются.",
                    r.archive_max_entries
                ),
            );
        }
        if self.over_size {
            add(
                Code::AttachmentDangerous,
                format!(
                    "Архив «{shown}» распаковывается в слишком большой объём (больше {}) — \
                     такие архивы не принимаются.",
                    megabytes(r.archive_max_unpacked)
                ),
            );
        }
        if self.over_ratio {
            add(
                Code::AttachmentDangerous,
                format!(
                    "Архив «{shown}» сжат подозрительно сильно (больше чем в {} раз) — \
                     такие архивы не принимаются.",
                    r.archive_max_ratio
                ),
            );
        }
        if !self.size_lies.is_empty() {
            add(
                Code::AttachmentDangerous,
                format!(
                    "В архиве «{shown}» размер файлов не совпадает с заявленным ({}) — \
                     такие архивы не принимаются.",
                    name_list(&self.size_lies)
                ),
            );
        }
        if !self.executables.is_empty() {
            add(
                Code::AttachmentDangerous,
                format!(
                    "В архиве «{shown}» есть исполняемые файлы или скрипты: {} — \
                     такие вложения не принимаются.",
                    name_list(&self.executables)
                ),
            );
        }
        if !self.bad_paths.is_empty() {
            add(
                Code::AttachmentDangerous,
                format!(
                    "В архиве «{shown}» есть файлы с путём за пределы архива: {} — \
                     такие архивы не принимаются.",
                    name_list(&self.bad_paths)
                ),
            );
        }
        if !self.links.is_empty() {
            add(
                Code::AttachmentDangerous,
                format!(
                    "В архиве «{shown}» есть символические ссылки: {} — \
                     такие архивы не принимаются.",
                    name_list(&self.links)
                ),
            );
        }
        if !self.nested.is_empty() {
            add(
                Code::AttachmentType,
                format!(
                    "В архиве «{shown}» есть вложенные архивы: {} — положите файлы \
                     в один архив без архивов внутри.",
                    name_list(&self.nested)
                ),
            );
        }
        if !self.wrong_type.is_empty() {
            add(
                Code::AttachmentType,
                format!(
                    "В архиве «{shown}» есть файлы непринимаемого формата: {}; \
                     скриншоты — JPG, GIF или PNG (п. 3.5 Регламента).",
                    name_list(&self.wrong_type)
                ),
            );
        }
        if self.encrypted {
            add(
                Code::ArchiveUnreadable,
                format!("Архив «{shown}» защищён паролем — пришлите его без пароля."),
            );
        }
        if self.multi_volume {
            add(
                Code::ArchiveUnreadable,
                format!(
                    "Архив «{shown}» — часть многотомного архива; пришлите архив одним файлом."
                ),
            );
        }
        if self.corrupt {
            add(
                Code::ArchiveUnreadable,
                format!(
                    "Архив «{shown}» повреждён или не читается — создайте архив заново \
                     (ZIP, 7Z или RAR) и пришлите ещё раз."
                ),
            );
        }
        ins.entries = self.entries;
        ins.image_count = self.image_count;
        ins
    }
}

fn push_once(list: &mut Vec<String>, name: &str) {
    if !list.iter().any(|n| n == name) {
        list.push(name.to_string());
    }
}

/// An entry path that would land outside the extraction directory: absolute (`/x`, `\x`),
/// with a drive letter (`C:`), with a `..` component (or a Windows spelling of one such as
/// `.. ` or `...`), or with a NUL byte that cuts the name short.
fn path_escapes(name: &str) -> bool {
    let b = name.as_bytes();
    if name.starts_with(['/', '\\']) || name.contains('\0') {
        return true;
    }
    if b.len() >= 2 && b[0].is_ascii_alphabetic() && b[1] == b':' {
        return true;
    }
    name.split(['/', '\\'])
        .any(|part| part.contains("..") && part.chars().all(|c| c == '.' || c == ' '))
}

/// Files operating systems leave in archives: macOS resource forks and folder settings,
/// Windows thumbnails. Not listed, not judged by type; still checked for danger.
fn is_clutter(name: &str) -> bool {
    if name.split(['/', '\\']).any(|p| p == "__MACOSX") {
        return true;
    }
    let base = name.rsplit(['/', '\\']).next().unwrap_or(name);
    base.starts_with("._")
        || base.eq_ignore_ascii_case(".DS_Store")
        || base.eq_ignore_ascii_case("Thumbs.db")
        || base.eq_ignore_ascii_case("desktop.ini")
}

/// A zip entry name: UTF-8 when it is valid UTF-8 (the flag or an Info-ZIP extra field says so,
/// or it is plain ASCII), else CP866 — what Windows with a Russian locale writes.
fn zip_name(raw: &[u8]) -> String {
    match std::str::from_utf8(raw) {
        Ok(s) => s.to_string(),
        Err(_) => encoding_rs::IBM866
            .decode_without_bom_handling(raw)
            .0
            .into_owned(),
    }
}

fn scan_zip(data: &[u8], scan: &mut Scan<'_>) {
    let mut zip = match zip::ZipArchive::new(Cursor::new(data)) {
        Ok(z) => z,
        Err(_) => {
            scan.corrupt = true;
            return;
        }
    };
    // Listing, from the central directory.
    let mut files: Vec<(usize, String)> = Vec::new();
    for i in 0..zip.len() {
        let (name, size, is_dir, is_link, encrypted) = match zip.by_index_data(i) {
            Ok(e) => (
                zip_name(e.name_raw()),
                e.size(),
                e.is_dir(),
                e.unix_mode().is_some_and(|m| m & 0o170000 == 0o120000),
                e.encrypted(),
            ),
            Err(_) => {
                scan.corrupt = true;
                continue;
            }
        };
        if scan.record(&name, size, is_dir, is_link) == Flow::Stop {
            break;
        }
        if encrypted {
            scan.encrypted = true;
        } else if !is_dir && !is_link {
            files.push((i, name));
        }
    }
    if scan.judge_declared() == Flow::Stop {
        return;
    }
    // Contents, streamed within the budget.
    for (i, name) in files {
        let flow = match zip.by_index(i) {
            Ok(mut file) => match scan.pump(&name, &mut file) {
                Ok(flow) => flow,
                Err(e) => {
                    if e.to_string().contains("declared uncompressed size") {
                        push_once(&mut scan.size_lies, &name);
                    } else {
                        scan.corrupt = true;
                    }
                    Flow::Go
                }
            },
            Err(_) => {
                scan.corrupt = true;
                Flow::Go
            }
        };
        if flow == Flow::Stop {
            break;
        }
    }
}

fn sevenz_locked(e: &sevenz_rust2::Error) -> bool {
    matches!(
        e,
        sevenz_rust2::Error::PasswordRequired | sevenz_rust2::Error::MaybeBadPassword(_)
    )
}

fn scan_7z(data: &[u8], scan: &mut Scan<'_>) {
    use sevenz_rust2::{ArchiveReader, EntryDecision, Password};

    let mut reader = match ArchiveReader::new_with_memory_limit(
        Cursor::new(data),
        Password::empty(),
        SEVENZ_MEMORY_LIMIT_KB,
    ) {
        Ok(r) => r,
        Err(e) => {
            if sevenz_locked(&e) {
                scan.encrypted = true;
            } else {
                scan.corrupt = true;
            }
            return;
        }
    };
    reader.set_thread_count(1);
    for (i, entry) in reader.archive().files.iter().enumerate() {
        if entry.is_anti_item {
            continue;
        }
        let attrs = entry.windows_attributes;
        // 7-Zip keeps a Unix mode in the high half when bit 0x8000 is set; 0x400 is a Windows
        // reparse point (a symlink or junction).
        let is_link = entry.has_windows_attributes
            && ((attrs & 0x8000 != 0 && (attrs >> 16) & 0o170000 == 0o120000)
                || attrs & 0x400 != 0);
        if scan.record(&entry.name, entry.size, entry.is_directory, is_link) == Flow::Stop {
            break;
        }
        if reader.archive().is_file_encrypted(i) {
            scan.encrypted = true;
        }
    }
    if scan.judge_declared() == Flow::Stop || scan.encrypted {
        return;
    }
    let mut failed: Option<io::Error> = None;
    let result = reader.for_each_entries_with_decision(|entry, r| {
        if entry.is_directory || !entry.has_stream || entry.is_anti_item {
            return Ok(EntryDecision::Continue);
        }
        match scan.pump(&entry.name, r) {
            Ok(Flow::Go) => Ok(EntryDecision::Continue),
            Ok(Flow::Stop) => Ok(EntryDecision::Stop),
            Err(e) => {
                failed = Some(e);
                Ok(EntryDecision::Stop)
            }
        }
    });
    match result {
        Ok(()) if failed.is_none() => {}
        Err(e) if sevenz_locked(&e) => scan.encrypted = true,
        _ => scan.corrupt = true,
    }
}

/// The unrar library keeps its error state in a process-wide object (`ErrHandler`), so two
/// archives read at once on two threads could swap their errors: one RAR at a time.
static RAR_LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn scan_rar(data: &[u8], scan: &mut Scan<'_>) {
    use unrar::error::Code as RarCode;

    let _one_at_a_time = RAR_LOCK
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());

    let Some((path, keep)) = rar_path(data) else {
        scan.corrupt = true;
        return;
    };
    let locked = |code: RarCode| matches!(code, RarCode::MissingPassword | RarCode::BadPassword);

    let listing = match unrar::Archive::new(&path).open_for_listing() {
        Ok(l) => l,
        Err(e) => {
            if locked(e.code) {
                scan.encrypted = true;
            } else {
                scan.corrupt = true;
            }
            return;
        }
    };
    if listing.has_encrypted_headers() {
        scan.encrypted = true;
    }
    if listing.volume_info() != unrar::VolumeInfo::None {
        scan.multi_volume = true;
    }
    let mut readable: usize = 0;
    for item in listing {
        match item {
            Ok(h) => {
                let name = h.filename.to_string_lossy().into_owned();
                let is_link = h.file_attr & 0o170000 == 0o120000;
                if scan.record(&name, h.unpacked_size, h.is_directory(), is_link) == Flow::Stop {
                    break;
                }
                if h.is_encrypted() {
                    scan.encrypted = true;
                }
                if h.is_split() {
                    scan.multi_volume = true;
                }
                readable += 1;
            }
            Err(e) => {
                if locked(e.code) {
                    scan.encrypted = true;
                } else {
                    scan.corrupt = true;
                }
                break;
            }
        }
    }
    // WinRAR cannot make an archive without files, and unrar reports a lone marker block (a
    // cut-off file) as an empty archive: no records at all means the archive is damaged.
    if scan.records == 0 && !scan.encrypted {
        scan.corrupt = true;
    }
    if scan.judge_declared() == Flow::Stop
        || scan.encrypted
        || scan.multi_volume
        || scan.corrupt
        || readable == 0
    {
        return;
    }
    // Contents. `read()` holds a whole entry in memory, so an entry is read only when its
    // declared size fits in what is left of the budget (unrar stops at the declared size).
    let mut cursor = match unrar::Archive::new(&path).open_for_processing() {
        Ok(a) => Some(a),
        Err(_) => {
            scan.corrupt = true;
            return;
        }
    };
    for _ in 0..readable {
        let Some(archive) = cursor.take() else { break };
        let header = match archive.read_header() {
            Ok(Some(h)) => h,
            Ok(None) => break,
            Err(_) => {
                scan.corrupt = true;
                break;
            }
        };
        let entry = header.entry();
        let name = entry.filename.to_string_lossy().into_owned();
        let left = scan
            .rules
            .archive_max_unpacked
            .saturating_sub(scan.unpacked);
        let skip = entry.is_directory()
            || entry.file_attr & 0o170000 == 0o120000
            || entry.unpacked_size > left;
        if skip {
            match header.skip() {
                Ok(a) => cursor = Some(a),
                Err(_) => {
                    scan.corrupt = true;
                    break;
                }
            }
            continue;
        }
        match header.read() {
            Ok((bytes, next)) => {
                let flow = scan.pump(&name, &mut bytes.as_slice());
                drop(bytes);
                match flow {
                    Ok(Flow::Go) => cursor = Some(next),
                    Ok(Flow::Stop) => break,
                    Err(_) => {
                        scan.corrupt = true;
                        break;
                    }
                }
            }
            Err(e) => {
                if locked(e.code) {
                    scan.encrypted = true;
                } else {
                    scan.corrupt = true;
                }
                break;
            }
        }
    }
    // The archive handle closes before the file goes (declaration order, made explicit).
    drop(cursor);
    drop(keep);
}

/// What keeps a RAR's bytes reachable by path while unrar reads them.
enum RarFile {
    Memory { _file: std::fs::File },
    Disk { _dir: tempfile::TempDir },
}

/// unrar reads from a path. First choice: an anonymous in-memory file (memfd), reachable as
/// `/proc/self/fd/N` — no directory made and removed on disk per archive, which cost more than
/// unrar itself (ext4 inode allocation). Where memfd or /proc is not there, a private temporary
/// directory, so that no neighbour is taken for the next volume of a multi-volume archive.
/// (unrar names a next volume `…/N.rar` or `…/N.partK.rar`, which /proc/self/fd never holds.)
fn rar_path(data: &[u8]) -> Option<(std::path::PathBuf, RarFile)> {
    use std::io::Write;
    use std::os::fd::{AsRawFd, FromRawFd};

    // SAFETY: memfd_create takes a NUL-terminated name and flags; a non-negative result is a
    // new file descriptor that nothing else owns.
    let fd = unsafe { libc::memfd_create(c"mailintake-rar".as_ptr(), libc::MFD_CLOEXEC) };
    if fd >= 0 {
        let mut file = unsafe { std::fs::File::from_raw_fd(fd) };
        let path = std::path::PathBuf::from(format!("/proc/self/fd/{}", file.as_raw_fd()));
        if file.write_all(data).is_ok() && path.exists() {
            return Some((path, RarFile::Memory { _file: file }));
        }
    }
    let dir = tempfile::Builder::new()
        .prefix("mailintake-rar-")
        .tempdir()
        .ok()?;
    let path = dir.path().join("attachment.rar");
    std::fs::File::create(&path)
        .and_then(|mut f| f.write_all(data))
        .ok()?;
    Some((path, RarFile::Disk { _dir: dir }))
}

// ---------------------------------------------------------------------------------------------

/// Small, valid files built in code for tests, fixture generators and benches. No binary file
/// needs to be checked in.
pub mod testdata {
    /// CRC-32 (IEEE 802.3, reflected, as in zip, PNG and RAR).
    pub fn crc32(data: &[u8]) -> u32 {
        const fn table() -> [u32; 256] {
            let mut t = [0u32; 256];
            let mut i = 0;
            while i < 256 {
                let mut c = i as u32;
                let mut k = 0;
                while k < 8 {
                    c = if c & 1 != 0 {
                        0xEDB8_8320 ^ (c >> 1)
                    } else {
                        c >> 1
                    };
                    k += 1;
                }
                t[i] = c;
                i += 1;
            }
            t
        }
        const TABLE: [u32; 256] = table();
        let mut c = 0xFFFF_FFFFu32;
        for &b in data {
            c = TABLE[((c ^ u32::from(b)) & 0xFF) as usize] ^ (c >> 8);
        }
        c ^ 0xFFFF_FFFF
    }

    fn adler32(data: &[u8]) -> u32 {
        let (mut a, mut b) = (1u32, 0u32);
        for &x in data {
            a = (a + u32::from(x)) % 65521;
            b = (b + a) % 65521;
        }
        (b << 16) | a
    }

    /// A 1×1 red PNG: signature, IHDR, IDAT (zlib with one stored deflate block), IEND.
    pub fn png() -> Vec<u8> {
        fn chunk(out: &mut Vec<u8>, kind: &[u8; 4], body: &[u8]) {
            out.extend_from_slice(&(body.len() as u32).to_be_bytes());
            let start = out.len();
            out.extend_from_slice(kind);
            out.extend_from_slice(body);
            let crc = crc32(&out[start..]);
            out.extend_from_slice(&crc.to_be_bytes());
        }
        let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
        // width 1, height 1, depth 8, colour type 2 (RGB), deflate, filter 0, no interlace
        chunk(&mut out, b"IHDR", &[0, 0, 0, 1, 0, 0, 0, 1, 8, 2, 0, 0, 0]);
        let scanline = [0u8, 0xFF, 0x00, 0x00]; // filter byte, then R G B
        let mut zlib = vec![0x78, 0x01, 0x01, 0x04, 0x00, 0xFB, 0xFF];
        zlib.extend_from_slice(&scanline);
        zlib.extend_from_slice(&adler32(&scanline).to_be_bytes());
        chunk(&mut out, b"IDAT", &zlib);
        chunk(&mut out, b"IEND", &[]);
        out
    }

    /// A 1×1 mid-grey baseline JPEG: one quantisation table of ones, one-code Huffman tables
    /// (DC difference 0, AC end-of-block), and two bits of scan data.
    pub fn jpeg() -> Vec<u8> {
        let mut out = vec![0xFF, 0xD8];
        out.extend_from_slice(&[0xFF, 0xDB, 0x00, 0x43, 0x00]);
        out.extend_from_slice(&[1u8; 64]);
        // SOF0: precision 8, height 1, width 1, one component (id 1, 1×1 sampling, table 0)
        out.extend_from_slice(&[0xFF, 0xC0, 0x00, 0x0B, 8, 0, 1, 0, 1, 1, 1, 0x11, 0]);
        for class in [0x00u8, 0x10] {
            // DHT: one code of length 1, symbol 0 (DC: difference 0; AC: end of block)
            out.extend_from_slice(&[0xFF, 0xC4, 0x00, 0x14, class, 1]);
            out.extend_from_slice(&[0u8; 15]);
            out.push(0);
        }
        out.extend_from_slice(&[0xFF, 0xDA, 0x00, 0x08, 1, 1, 0x00, 0, 0x3F, 0]);
        out.push(0b0011_1111); // DC code 0, AC code 0, padded with ones
        out.extend_from_slice(&[0xFF, 0xD9]);
        out
    }

    /// A 1×1 GIF89a (the classic 43-byte transparent pixel).
    pub fn gif() -> Vec<u8> {
        vec![
            0x47, 0x49, 0x46, 0x38, 0x39, 0x61, 0x01, 0x00, 0x01, 0x00, 0x80, 0x00, 0x00, 0xFF,
            0xFF, 0xFF, 0x00, 0x00, 0x00, 0x21, 0xF9, 0x04, 0x01, 0x00, 0x00, 0x00, 0x00, 0x2C,
            0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x01, 0x00, 0x00, 0x02, 0x02, 0x44, 0x01, 0x00,
            0x3B,
        ]
    }

    /// One entry of a hand-made RAR 4.x archive.
    #[derive(Debug, Clone, Copy)]
    pub struct RarEntry<'a> {
        pub name: &'a str,
        pub data: &'a [u8],
        /// Sets the file header's "encrypted" flag (the data are left as they are).
        pub encrypted: bool,
        pub directory: bool,
        /// A Unix mode (host OS Unix); `None` writes Windows attributes (host OS Win32).
        pub unix_mode: Option<u32>,
    }

    impl<'a> RarEntry<'a> {
        pub fn file(name: &'a str, data: &'a [u8]) -> Self {
            RarEntry {
                name,
                data,
                encrypted: false,
                directory: false,
                unix_mode: None,
            }
        }
    }

    /// A RAR 4.x file name. ASCII as it is; anything else (flag 0x0200) as an ASCII stand-in,
    /// a NUL, then RAR's own Unicode encoding: a "high byte", then groups of up to four
    /// characters, each group led by a flags byte whose 2-bit fields (from the top) say how
    /// each character is stored — here always `10`: two bytes, UTF-16 little-endian.
    fn rar4_name(name: &str) -> Vec<u8> {
        if name.is_ascii() {
            return name.as_bytes().to_vec();
        }
        let units: Vec<u16> = name.encode_utf16().collect();
        let mut out: Vec<u8> = name
            .chars()
            .flat_map(|c| {
                let n = c.len_utf16();
                std::iter::repeat_n(if c.is_ascii() { c as u8 } else { b'_' }, n)
            })
            .collect();
        out.push(0);
        out.push(0); // high byte, unused by mode 10
        for group in units.chunks(4) {
            out.push(0xAA);
            for u in group {
                out.extend_from_slice(&u.to_le_bytes());
            }
        }
        out
    }

    /// A RAR 4.x archive of stored files (`rar a -m0`), each entry `(name, data)`; `encrypted`
    /// sets every file's "encrypted" flag.
    pub fn rar4(entries: &[(&str, &[u8])], encrypted: bool) -> Vec<u8> {
        let entries: Vec<RarEntry<'_>> = entries
            .iter()
            .map(|&(name, data)| RarEntry {
                encrypted,
                ..RarEntry::file(name, data)
            })
            .collect();
        rar4_entries(&entries, false)
    }

    /// A RAR 4.x archive, block by block. Every block starts with
    /// `HEAD_CRC u16, HEAD_TYPE u8, HEAD_FLAGS u16, HEAD_SIZE u16` (little-endian), where
    /// HEAD_CRC is the low 16 bits of the CRC-32 of the header from HEAD_TYPE to its end.
    ///
    /// - Marker `52 61 72 21 1A 07 00` (`Rar!\x1a\x07\x00`).
    /// - Main header: type 0x73, flags (0x0080 = block headers are encrypted), size 13,
    ///   then RESERVED1 u16 and RESERVED2 u32.
    /// - A file header per entry: type 0x74, flags 0x8000 (data follow the header)
    ///   | 0x0004 (encrypted) | 0x00E0 (directory) | 0x0200 (name is UTF-8), size 32 + name,
    ///   then PACK_SIZE u32, UNP_SIZE u32, HOST_OS u8 (2 Win32, 3 Unix), FILE_CRC u32 (CRC-32 of
    ///   the data), FTIME u32 (DOS date-time), UNP_VER u8 (20), METHOD u8 (0x30 = stored),
    ///   NAME_SIZE u16, ATTR u32, the name; then the data.
    /// - End of archive: type 0x7B, flags 0x4000, size 7.
    pub fn rar4_entries(entries: &[RarEntry<'_>], encrypted_headers: bool) -> Vec<u8> {
        fn block(out: &mut Vec<u8>, body_after_crc: &[u8]) {
            let crc = (crc32(body_after_crc) & 0xFFFF) as u16;
            out.extend_from_slice(&crc.to_le_bytes());
            out.extend_from_slice(body_after_crc);
        }
        let mut out = b"Rar!\x1a\x07\x00".to_vec();
        let main_flags: u16 = if encrypted_headers { 0x0080 } else { 0 };
        let mut main = vec![0x73];
        main.extend_from_slice(&main_flags.to_le_bytes());
        main.extend_from_slice(&13u16.to_le_bytes());
        main.extend_from_slice(&[0; 6]);
        block(&mut out, &main);
        for e in entries {
            let name = rar4_name(e.name);
            let name = name.as_slice();
            let data: &[u8] = if e.directory { &[] } else { e.data };
            let mut flags: u16 = 0x8000;
            if e.encrypted {
                flags |= 0x0004;
            }
            if e.directory {
                flags |= 0x00E0;
            }
            if !e.name.is_ascii() {
                flags |= 0x0200;
            }
            let (host, attr) = match e.unix_mode {
                Some(mode) => (3u8, mode),
                None => (2u8, if e.directory { 0x10 } else { 0x20 }),
            };
            let mut h = vec![0x74];
            h.extend_from_slice(&flags.to_le_bytes());
            h.extend_from_slice(&((32 + name.len()) as u16).to_le_bytes());
            h.extend_from_slice(&(data.len() as u32).to_le_bytes());
            h.extend_from_slice(&(data.len() as u32).to_le_bytes());
            h.push(host);
            h.extend_from_slice(&crc32(data).to_le_bytes());
            h.extend_from_slice(&0x5A6B_3C21u32.to_le_bytes());
            h.push(20);
            h.push(0x30);
            h.extend_from_slice(&(name.len() as u16).to_le_bytes());
            h.extend_from_slice(&attr.to_le_bytes());
            h.extend_from_slice(name);
            block(&mut out, &h);
            out.extend_from_slice(data);
        }
        block(&mut out, &[0x7B, 0x00, 0x40, 0x07, 0x00]);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_rules_load_and_validate() {
        let rules: AttachmentRules =
            toml::from_str(include_str!("../../rules/attachments.toml")).expect("deserializes");
        rules.validate().expect("valid");
        assert_eq!(rules.max_images, 5);
        assert!(rules.image_ext.iter().any(|e| e == "png"));
        let _ = AttachmentRules::shipped();
    }

    #[test]
    fn validate_rejects_bad_lists() {
        let good = AttachmentRules::shipped();
        let mut r = good.clone();
        r.image_ext.push("PNG".into());
        assert!(r.validate().is_err());
        let mut r = good.clone();
        r.document_ext.push(".pdf".into());
        assert!(r.validate().is_err());
        let mut r = good.clone();
        r.document_ext.push("zip".into());
        assert!(r.validate().unwrap_err().contains("zip"));
        let mut r = good.clone();
        r.archive_ext.clear();
        assert!(r.validate().is_err());
        let mut r = good;
        r.archive_max_ratio = 0;
        assert!(r.validate().is_err());
    }

    #[test]
    fn extension_rules() {
        assert_eq!(extension("a.JPG").as_deref(), Some("jpg"));
        assert_eq!(extension("архив.tar.gz").as_deref(), Some("gz"));
        assert_eq!(extension("отчёт.exe. ").as_deref(), Some("exe"));
        assert_eq!(extension("C:\\fakepath\\x.Png").as_deref(), Some("png"));
        assert_eq!(extension("README"), None);
        assert_eq!(extension("dir.v2/README"), None);
    }

    #[test]
    fn escaping_paths() {
        for bad in [
            "../x",
            "a/../../x",
            "/etc/passwd",
            "\\x",
            "C:x",
            "a\\..\\x",
            "a/.. /b",
        ] {
            assert!(path_escapes(bad), "{bad}");
        }
        for ok in ["a/b.png", "..a.png", "a..b/c.png", "скрины/1.png"] {
            assert!(!path_escapes(ok), "{ok}");
        }
    }

    /// A reader that counts what is taken from it.
    struct Counting<R> {
        inner: R,
        taken: u64,
    }

    impl<R: Read> Read for Counting<R> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let n = self.inner.read(buf)?;
            self.taken += n as u64;
            Ok(n)
        }
    }

    #[test]
    fn pump_never_reads_past_the_budget() {
        let mut rules = AttachmentRules::shipped();
        rules.archive_max_unpacked = 1000;
        rules.archive_ratio_floor = u64::MAX;
        let mut scan = Scan::new(&rules, 10);
        let mut first = Counting {
            inner: io::repeat(0).take(600),
            taken: 0,
        };
        assert_eq!(scan.pump("a.txt", &mut first).unwrap(), Flow::Go);
        assert!(!scan.over_size);
        let mut endless = Counting {
            inner: io::repeat(0),
            taken: 0,
        };
        assert_eq!(scan.pump("b.txt", &mut endless).unwrap(), Flow::Stop);
        assert!(scan.over_size);
        assert_eq!(first.taken + endless.taken, 1001);
        // Spent: nothing more is read at all.
        let mut more = Counting {
            inner: io::repeat(0),
            taken: 0,
        };
        assert_eq!(scan.pump("c.txt", &mut more).unwrap(), Flow::Stop);
        assert_eq!(more.taken, 0);
    }

    #[test]
    fn pump_stops_at_the_ratio() {
        let mut rules = AttachmentRules::shipped();
        rules.archive_ratio_floor = 1000;
        rules.archive_max_ratio = 10;
        let mut scan = Scan::new(&rules, 200);
        let mut endless = Counting {
            inner: io::repeat(0),
            taken: 0,
        };
        assert_eq!(scan.pump("a.txt", &mut endless).unwrap(), Flow::Stop);
        assert!(scan.over_ratio && !scan.over_size);
        assert!(endless.taken <= CHUNK as u64);
    }

    #[test]
    fn test_images_are_what_they_claim() {
        assert_eq!(sniff_image(&testdata::png()), Some(ImageFormat::Png));
        assert_eq!(sniff_image(&testdata::jpeg()), Some(ImageFormat::Jpeg));
        assert_eq!(sniff_image(&testdata::gif()), Some(ImageFormat::Gif));
        assert_eq!(testdata::crc32(b"123456789"), 0xCBF4_3926);
    }
}
