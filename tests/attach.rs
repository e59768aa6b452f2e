//! `attach::inspect` on files and archives built here in code: no binary fixture is checked in.

use std::io::{Cursor, Write};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use mailintake::verdict::attach::testdata::{self, RarEntry};
use mailintake::verdict::attach::{inspect, AttachmentRules, Inspection};
use mailintake::verdict::{AttachmentKind, Code};

fn rules() -> AttachmentRules {
    AttachmentRules::shipped()
}

fn check(name: &str, data: &[u8]) -> Inspection {
    inspect(name, "application/octet-stream", data, &rules())
}

fn has(ins: &Inspection, code: Code) -> bool {
    ins.findings.iter().any(|r| r.code == code)
}

/// Clean: no findings at all.
#[track_caller]
fn assert_clean(ins: &Inspection) {
    assert!(
        ins.findings.is_empty(),
        "unexpected findings: {:#?}",
        ins.findings
    );
}

#[track_caller]
fn assert_only(ins: &Inspection, code: Code) {
    assert!(has(ins, code), "expected {code:?}, got {:#?}", ins.findings);
    assert!(
        ins.findings.iter().all(|r| r.code == code),
        "expected only {code:?}, got {:#?}",
        ins.findings
    );
}

/// Details name the file.
#[track_caller]
fn assert_names(ins: &Inspection, name: &str) {
    for r in &ins.findings {
        assert!(
            r.detail.contains(name),
            "{:?} does not name {name}",
            r.detail
        );
    }
}

/// Generators for archives and odd files.
mod gen {
    use super::*;
    use zip::write::SimpleFileOptions;
    use zip::{CompressionMethod, ZipWriter};

    pub fn deflated() -> SimpleFileOptions {
        SimpleFileOptions::default().compression_method(CompressionMethod::Deflated)
    }

    pub fn stored() -> SimpleFileOptions {
        SimpleFileOptions::default().compression_method(CompressionMethod::Stored)
    }

    /// A zip built by `build`.
    pub fn zip_with(build: impl FnOnce(&mut ZipWriter<Cursor<Vec<u8>>>)) -> Vec<u8> {
        let mut w = ZipWriter::new(Cursor::new(Vec::new()));
        build(&mut w);
        w.finish().expect("zip finishes").into_inner()
    }

    /// A deflated zip of `(name, data)`.
    pub fn zip(entries: &[(&str, &[u8])]) -> Vec<u8> {
        zip_with(|w| {
            for (name, data) in entries {
                w.start_file(*name, deflated()).expect("start");
                w.write_all(data).expect("write");
            }
        })
    }

    /// `megabytes` MiB of zeros, deflated in 1 MiB chunks.
    pub fn zeros_zip(name: &str, megabytes: usize) -> Vec<u8> {
        zip_with(|w| {
            let options = deflated().compression_level(Some(1)).large_file(true);
            w.start_file(name, options).expect("start");
            let chunk = vec![0u8; 1 << 20];
            for _ in 0..megabytes {
                w.write_all(&chunk).expect("write");
            }
        })
    }

    /// A minimal docx: a zip container with the parts Word needs.
    pub fn docx(evil: bool) -> Vec<u8> {
        zip_with(|w| {
            w.start_file("[Content_Types].xml", deflated()).unwrap();
            w.write_all(b"<?xml version=\"1.0\"?><Types/>").unwrap();
            w.start_file("word/document.xml", deflated()).unwrap();
            w.write_all(b"<w:document/>").unwrap();
            if evil {
                w.start_file("../../evil.exe", deflated()).unwrap();
                w.write_all(b"MZ\x90\x00").unwrap();
            }
        })
    }

    pub fn sevenz(entries: &[(&str, &[u8])]) -> Vec<u8> {
        sevenz_with(entries, None, false)
    }

    /// A 7z archive; with a password the content is AES-encrypted, and so are the headers
    /// when `encrypt_header`.
    pub fn sevenz_with(
        entries: &[(&str, &[u8])],
        password: Option<&str>,
        encrypt_header: bool,
    ) -> Vec<u8> {
        use sevenz_rust2::encoder_options::AesEncoderOptions;
        use sevenz_rust2::{ArchiveEntry, ArchiveWriter, EncoderMethod};
        let mut w = ArchiveWriter::new(Cursor::new(Vec::new())).expect("7z writer");
        if let Some(pw) = password {
            w.set_content_methods(vec![
                AesEncoderOptions::new(pw.into()).into(),
                EncoderMethod::LZMA2.into(),
            ]);
        }
        w.set_encrypt_header(encrypt_header);
        for (name, data) in entries {
            w.push_archive_entry(ArchiveEntry::new_file(name), Some(*data))
                .expect("7z entry");
        }
        w.finish().expect("7z finishes").into_inner()
    }

    pub fn sevenz_entries(entries: Vec<(sevenz_rust2::ArchiveEntry, &[u8])>) -> Vec<u8> {
        let mut w = sevenz_rust2::ArchiveWriter::new(Cursor::new(Vec::new())).unwrap();
        for (entry, data) in entries {
            if entry.is_directory {
                w.push_archive_entry::<&[u8]>(entry, None).unwrap();
            } else {
                w.push_archive_entry(entry, Some(data)).unwrap();
            }
        }
        w.finish().unwrap().into_inner()
    }

    /// Deterministic noise (xorshift), for garbage files.
    pub fn noise(len: usize, seed: u64) -> Vec<u8> {
        let mut x = seed | 1;
        (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x >> 24) as u8
            })
            .collect()
    }

    /// Something that starts like a Windows program.
    pub fn exe() -> Vec<u8> {
        let mut d = b"MZ\x90\x00\x03\x00\x00\x00".to_vec();
        d.extend_from_slice(&[0; 56]);
        d.extend_from_slice(b"This program cannot be run in DOS mode.");
        d
    }

    pub fn elf() -> Vec<u8> {
        let mut d = b"\x7fELF\x02\x01\x01\x00".to_vec();
        d.extend_from_slice(&[0; 56]);
        d
    }

    pub fn pdf() -> Vec<u8> {
        b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n".to_vec()
    }

    pub fn ole2() -> Vec<u8> {
        let mut d = vec![0xD0, 0xCF, 0x11, 0xE0, 0xA1, 0xB1, 0x1A, 0xE1];
        d.extend_from_slice(&[0; 504]);
        d
    }

    pub fn mp4() -> Vec<u8> {
        let mut d = vec![0, 0, 0, 0x18];
        d.extend_from_slice(b"ftypmp42\0\0\0\0mp42isom");
        d.extend_from_slice(&[0, 0, 0, 8]);
        d.extend_from_slice(b"mdat");
        d
    }

    pub fn bmp() -> Vec<u8> {
        let mut d = b"BM".to_vec();
        d.extend_from_slice(&[0x3A, 0, 0, 0, 0, 0, 0, 0, 0x36, 0, 0, 0, 0x28, 0, 0, 0]);
        d.extend_from_slice(&[1, 0, 0, 0, 1, 0, 0, 0, 1, 0, 24, 0]);
        d.extend_from_slice(&[0; 28]);
        d
    }

    pub fn tiff() -> Vec<u8> {
        let mut d = b"II*\0\x08\0\0\0".to_vec();
        d.extend_from_slice(&[0; 32]);
        d
    }

    pub fn heic() -> Vec<u8> {
        let mut d = vec![0, 0, 0, 0x18];
        d.extend_from_slice(b"ftypheic\0\0\0\0mif1heic");
        d
    }
}

// ---------------------------------------------------------------------------------------------
// Single files

#[test]
fn screenshots_are_images_by_content() {
    for (name, data) in [
        ("скрин.png", testdata::png()),
        ("скрин.jpg", testdata::jpeg()),
        ("скрин.JPEG", testdata::jpeg()),
        ("скрин.gif", testdata::gif()),
    ] {
        let ins = check(name, &data);
        assert_eq!(ins.kind, AttachmentKind::Image, "{name}");
        assert_clean(&ins);
        assert!(ins.entries.is_empty());
        assert_eq!(ins.image_count, 0);
    }
}

#[test]
fn png_named_jpg_is_an_image_with_a_warning() {
    let ins = check("скрин.jpg", &testdata::png());
    assert_eq!(ins.kind, AttachmentKind::Image);
    assert_only(&ins, Code::ExtensionMismatch);
    assert_names(&ins, "скрин.jpg");
    assert!(ins.findings[0].detail.contains("PNG"));
}

#[test]
fn content_type_is_only_a_hint() {
    let ins = inspect(
        "скрин.png",
        "application/x-msdownload",
        &testdata::png(),
        &rules(),
    );
    assert_eq!(ins.kind, AttachmentKind::Image);
    assert_clean(&ins);
    let ins = inspect("скрин.png", "image/png", &gen::exe(), &rules());
    assert_only(&ins, Code::AttachmentDangerous);
}

#[test]
fn executables_are_dangerous_whatever_the_name() {
    for (name, data) in [
        ("фото.jpg", gen::exe()),
        ("отчёт.pdf", gen::exe()),
        ("readme.txt", gen::exe()),
        ("tool", gen::elf()),
        ("документ.docx", gen::elf()),
        ("Main.csv", vec![0xCA, 0xFE, 0xBA, 0xBE, 0, 0, 0, 52]),
        ("x.png", vec![0xCF, 0xFA, 0xED, 0xFE, 7, 0, 0, 1]),
    ] {
        let ins = check(name, &data);
        assert_eq!(ins.kind, AttachmentKind::Other, "{name}");
        assert_only(&ins, Code::AttachmentDangerous);
        assert_names(&ins, name);
    }
}

#[test]
fn dangerous_extensions_are_dangerous() {
    for name in [
        "запуск.bat",
        "setup.EXE",
        "макрос.vbs",
        "script.ps1",
        "ярлык.lnk",
        "run.sh",
        "отчёт.pdf.exe",
        "отчёт.exe.",
        "отчёт.exe ",
        "таблица.xlsm",
        "образ.iso",
    ] {
        let ins = check(name, b"echo hello\r\n");
        assert_eq!(ins.kind, AttachmentKind::Other, "{name}");
        assert_only(&ins, Code::AttachmentDangerous);
    }
    let ins = check("запуск.bat", b"@echo off");
    assert!(ins.findings[0].detail.contains("«запуск.bat»"));
}

#[test]
fn direction_override_in_a_name_is_dangerous() {
    let name = "отчёт\u{202E}fdp.exe";
    let ins = check(name, &gen::pdf());
    assert_only(&ins, Code::AttachmentDangerous);
    assert!(!ins.findings[0].detail.contains('\u{202E}'));
    let ins = check("скрин\u{202E}gnp.png", &testdata::png());
    assert_only(&ins, Code::AttachmentDangerous);
}

#[test]
fn shebang_is_a_script_except_in_text() {
    let script = b"#!/bin/sh\nrm -rf /\n";
    assert_only(&check("notes.log", script), Code::AttachmentDangerous);
    assert_only(&check("photo.png", script), Code::AttachmentDangerous);
    let ins = check("notes.txt", script);
    assert_eq!(ins.kind, AttachmentKind::Document);
    assert_clean(&ins);
    assert_clean(&check("data.csv", script));
}

#[test]
fn claimed_type_with_foreign_bytes_is_dangerous() {
    for (name, data) in [
        ("скрин.png", gen::noise(4096, 1)),
        (
            "скрин.jpg",
            b"<html><script>alert(1)</script></html>".to_vec(),
        ),
        ("скрин.gif", vec![0x42]),
        ("отчёт.pdf", b"not a pdf at all".to_vec()),
        ("письмо.docx", gen::ole2()[..4].to_vec()),
        ("таблица.xlsx", gen::pdf()),
        ("таблица.ods", gen::ole2()),
        ("видео.mp4", gen::noise(2048, 2)),
        ("видео.avi", gen::pdf()),
        ("a.zip", gen::noise(1000, 3)),
        ("a.7z", gen::noise(1000, 4)),
        ("a.rar", gen::noise(1000, 5)),
        ("a.zip", gen::pdf()),
    ] {
        let ins = check(name, &data);
        assert_eq!(ins.kind, AttachmentKind::Other, "{name}");
        assert_only(&ins, Code::AttachmentDangerous);
        assert_names(&ins, name);
    }
}

#[test]
fn documents_and_supplements() {
    let supplement = AttachmentKind::Supplement;
    let document = AttachmentKind::Document;
    for (name, data, kind) in [
        ("письмо.doc", gen::ole2(), supplement),
        ("письмо.doc", b"{\\rtf1\\ansi hello}".to_vec(), supplement),
        (
            "письмо.doc",
            b"<html><body>\xcf\xf0\xe8\xe2\xe5\xf2</body></html>".to_vec(),
            supplement,
        ),
        ("письмо.docx", gen::docx(false), supplement),
        ("запись.mp4", gen::mp4(), supplement),
        ("запись.mov", gen::mp4(), supplement),
        ("запись.3gp", gen::mp4(), supplement),
        ("запись.mkv", vec![0x1A, 0x45, 0xDF, 0xA3, 0x9F], supplement),
        (
            "запись.webm",
            vec![0x1A, 0x45, 0xDF, 0xA3, 0x9F],
            supplement,
        ),
        ("запись.avi", b"RIFF\x10\0\0\0AVI LIST".to_vec(), supplement),
        (
            "запись.wmv",
            vec![0x30, 0x26, 0xB2, 0x75, 0x8E, 0x66, 0xCF, 0x11, 0xA6],
            supplement,
        ),
        ("запись.flv", b"FLV\x01\x05".to_vec(), supplement),
        ("запись.mpg", vec![0, 0, 1, 0xBA, 0x44], supplement),
        ("отчёт.pdf", gen::pdf(), document),
        ("отчёт.xls", gen::ole2(), document),
        (
            "отчёт.xls",
            b"<?xml version=\"1.0\"?><Workbook/>".to_vec(),
            document,
        ),
        (
            "отчёт.xlsx",
            gen::zip(&[("xl/workbook.xml", b"<workbook/>")]),
            document,
        ),
        (
            "отчёт.odt",
            gen::zip(&[("mimetype", b"application/vnd.oasis")]),
            document,
        ),
        ("отчёт.rtf", b"{\\rtf1 text}".to_vec(), document),
        (
            "лог.txt",
            "Ошибка при входе в МИС".as_bytes().to_vec(),
            document,
        ),
        ("лог.txt", gen::noise(100, 6), document),
        ("данные.csv", b"a;b;c\n1;2;3\n".to_vec(), document),
    ] {
        let ins = check(name, &data);
        assert_eq!(ins.kind, kind, "{name}");
        assert_clean(&ins);
        assert!(ins.entries.is_empty(), "{name} must not be listed");
    }
}

#[test]
fn office_documents_are_never_opened() {
    // A docx is a zip; even one hiding an escaping executable is a supplement, not an archive.
    let ins = check("заявка.docx", &gen::docx(true));
    assert_eq!(ins.kind, AttachmentKind::Supplement);
    assert_clean(&ins);
    assert!(ins.entries.is_empty());
    assert_eq!(ins.image_count, 0);
}

#[test]
fn formats_not_accepted() {
    for (name, data) in [
        ("скрин.bmp", gen::bmp()),
        ("скрин.tiff", gen::tiff()),
        ("скрин.heic", gen::heic()),
        ("логи.tar.gz", vec![0x1F, 0x8B, 0x08, 0, 0, 0, 0, 0]),
        ("логи.tgz", vec![0x1F, 0x8B, 0x08, 0, 0, 0, 0, 0]),
        ("README", b"hello".to_vec()),
        ("страница.html", b"<html></html>".to_vec()),
    ] {
        let ins = check(name, &data);
        assert_eq!(ins.kind, AttachmentKind::Other, "{name}");
        assert_only(&ins, Code::AttachmentType);
        assert_names(&ins, name);
    }
    let ins = check("скрин.tiff", &gen::tiff());
    assert!(ins.findings[0].detail.contains("п. 3.5 Регламента"));
}

#[test]
fn real_image_of_a_refused_kind_under_an_image_name_is_a_type_problem() {
    for (name, data) in [
        ("скрин.png", gen::bmp()),
        ("скрин.jpg", gen::tiff()),
        ("скрин.jpg", gen::heic()),
    ] {
        let ins = check(name, &data);
        assert_eq!(ins.kind, AttachmentKind::Other, "{name}");
        assert_only(&ins, Code::AttachmentType);
    }
}

#[test]
fn empty_and_tiny_files() {
    for name in ["скрин.png", "a.zip", "отчёт.pdf", "лог.txt", "noext"] {
        let ins = check(name, b"");
        assert_eq!(ins.kind, AttachmentKind::Other, "{name}");
        assert_only(&ins, Code::AttachmentType);
        assert!(ins.findings[0].detail.contains("пустой"));
    }
    assert_only(&check("empty.exe", b""), Code::AttachmentDangerous);
    assert_only(&check("скрин.png", b"\x89"), Code::AttachmentDangerous);
    assert_only(&check("a.zip", b"P"), Code::AttachmentDangerous);
    assert_only(&check("a.rar", b"R"), Code::AttachmentDangerous);
    assert_clean(&check("лог.txt", b"x"));
}

// ---------------------------------------------------------------------------------------------
// ZIP

fn normal_zip() -> Vec<u8> {
    gen::zip_with(|w| {
        w.add_directory("скрины/", gen::deflated()).unwrap();
        w.start_file("скрины/ошибка 1.png", gen::deflated())
            .unwrap();
        w.write_all(&testdata::png()).unwrap();
        w.start_file("скрины/ошибка 2.JPG", gen::stored()).unwrap();
        w.write_all(&testdata::jpeg()).unwrap();
        w.start_file("протокол.pdf", gen::deflated()).unwrap();
        w.write_all(&gen::pdf()).unwrap();
        w.start_file("__MACOSX/скрины/._ошибка 1.png", gen::deflated())
            .unwrap();
        w.write_all(b"\x00\x05\x16\x07\x00\x02\x00\x00Mac OS X")
            .unwrap();
    })
}

#[test]
fn zip_is_listed() {
    let ins = check("скрины.zip", &normal_zip());
    assert_eq!(ins.kind, AttachmentKind::Archive);
    assert_clean(&ins);
    let names: Vec<&str> = ins.entries.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(
        names,
        ["скрины/ошибка 1.png", "скрины/ошибка 2.JPG", "протокол.pdf"]
    );
    assert_eq!(ins.image_count, 2);
    assert_eq!(ins.entries[0].bytes, testdata::png().len() as u64);
    assert_eq!(ins.entries[0].kind, AttachmentKind::Image);
    assert_eq!(ins.entries[2].kind, AttachmentKind::Document);
}

#[test]
fn zip_with_windows_cp866_names() {
    // «ошибка.png» in CP866, without the UTF-8 flag: what Windows Explorer writes.
    let raw: Vec<u8> = vec![0xAE, 0xE8, 0xA8, 0xA1, 0xAA, 0xA0, b'.', b'p', b'n', b'g'];
    let data = gen::zip_with(|w| {
        w.start_file_with_options(gen::deflated().name(&raw))
            .unwrap();
        w.write_all(&testdata::png()).unwrap();
    });
    let ins = check("a.zip", &data);
    assert_clean(&ins);
    assert_eq!(ins.entries[0].name, "ошибка.png");
    assert_eq!(ins.image_count, 1);
}

#[test]
fn empty_zip_is_an_empty_archive() {
    let data = gen::zip(&[]);
    assert!(data.starts_with(b"PK\x05\x06"));
    let ins = check("пусто.zip", &data);
    assert_eq!(ins.kind, AttachmentKind::Archive);
    assert_clean(&ins);
    assert!(ins.entries.is_empty());
}

#[test]
fn zip_with_escaping_paths_is_dangerous() {
    for evil in [
        "../evil.txt",
        "docs/../../evil.txt",
        "/etc/cron.d/x.txt",
        "C:/Windows/x.txt",
    ] {
        let data = gen::zip(&[("ok.png", &testdata::png()), (evil, b"text")]);
        let ins = check("a.zip", &data);
        assert!(
            has(&ins, Code::AttachmentDangerous),
            "{evil}: {:#?}",
            ins.findings
        );
        assert!(
            ins.findings.iter().any(|r| r.detail.contains(evil)),
            "{evil}: {:#?}",
            ins.findings
        );
    }
    // Backslashes are written by some Windows tools.
    let data = gen::zip(&[("..\\..\\evil.txt", b"text")]);
    assert!(has(&check("a.zip", &data), Code::AttachmentDangerous));
}

#[test]
fn zip_with_symlink_is_dangerous() {
    let data = gen::zip_with(|w| {
        w.start_file("a.png", gen::deflated()).unwrap();
        w.write_all(&testdata::png()).unwrap();
        w.add_symlink("b.png", "/etc/passwd", gen::deflated())
            .unwrap();
    });
    let ins = check("a.zip", &data);
    assert_only(&ins, Code::AttachmentDangerous);
    assert!(ins.findings[0].detail.contains("символические ссылки"));
}

#[test]
fn zip_with_executables_is_dangerous() {
    let data = gen::zip(&[
        ("ok.png", &testdata::png()),
        ("setup.exe", b"whatever"),
        ("фото.jpg", &gen::exe()),
        ("запуск.cmd", b"@echo off"),
        ("tool", &gen::elf()),
        ("run.py", b"import os"),
    ]);
    let ins = check("a.zip", &data);
    assert!(has(&ins, Code::AttachmentDangerous));
    let detail = &ins
        .findings
        .iter()
        .find(|r| r.code == Code::AttachmentDangerous)
        .unwrap()
        .detail;
    assert!(detail.contains("«setup.exe»"), "{detail}");
    assert!(detail.contains("и ещё 2"), "{detail}"); // five in all: three named
                                                     // "tool" has no extension: also a wrong type, but the danger is what matters.
    assert!(ins.entries.iter().any(|e| e.name == "tool"));
    let one = gen::zip(&[("ok.png", &testdata::png()), ("фото.jpg", &gen::exe())]);
    let ins = check("a.zip", &one);
    assert_only(&ins, Code::AttachmentDangerous);
    assert!(ins.findings[0].detail.contains("«фото.jpg»"));
}

#[test]
fn zip_with_wrong_types_and_nested_archives() {
    let inner = gen::zip(&[("x.png", &testdata::png())]);
    let data = gen::zip(&[
        ("ok.png", &testdata::png()),
        ("скрин.bmp", &gen::bmp()),
        ("inner.zip", &inner),
        ("inner.bin", &inner),
        ("notes.docx", &gen::docx(false)),
        ("table.xlsx", &inner),
    ]);
    let ins = check("a.zip", &data);
    assert_eq!(ins.kind, AttachmentKind::Archive);
    assert_only(&ins, Code::AttachmentType);
    let details: Vec<&str> = ins.findings.iter().map(|r| r.detail.as_str()).collect();
    let nested = details.iter().find(|d| d.contains("вложенные")).unwrap();
    assert!(
        nested.contains("inner.zip") && nested.contains("inner.bin"),
        "{nested}"
    );
    assert!(
        !nested.contains("notes.docx") && !nested.contains("table.xlsx"),
        "{nested}"
    );
    let wrong = details
        .iter()
        .find(|d| d.contains("непринимаемого"))
        .unwrap();
    assert!(wrong.contains("скрин.bmp"), "{wrong}");
    assert_eq!(ins.image_count, 1);
    let kinds: Vec<AttachmentKind> = ins.entries.iter().map(|e| e.kind).collect();
    assert_eq!(
        kinds,
        [
            AttachmentKind::Image,
            AttachmentKind::Other,
            AttachmentKind::Archive,
            AttachmentKind::Other,
            AttachmentKind::Supplement,
            AttachmentKind::Document
        ]
    );
}

#[test]
fn encrypted_zip_is_unreadable() {
    use zip::unstable::write::FileOptionsExt;
    let data = gen::zip_with(|w| {
        let options = gen::deflated()
            .with_deprecated_encryption(b"secret")
            .unwrap();
        w.start_file("скрин.png", options).unwrap();
        w.write_all(&testdata::png()).unwrap();
    });
    let ins = check("скрины.zip", &data);
    assert_eq!(ins.kind, AttachmentKind::Archive);
    assert_only(&ins, Code::ArchiveUnreadable);
    assert_eq!(
        ins.findings[0].detail,
        "Архив «скрины.zip» защищён паролем — пришлите его без пароля."
    );
    // Still listed from the central directory.
    assert_eq!(ins.image_count, 1);
}

fn zip_bomb_200mb() -> &'static [u8] {
    static BOMB: OnceLock<Vec<u8>> = OnceLock::new();
    BOMB.get_or_init(|| gen::zeros_zip("zeros.txt", 200))
}

#[test]
fn zip_bomb_by_declared_size() {
    let data = zip_bomb_200mb();
    assert!(data.len() < 2 << 20, "{} bytes", data.len());
    let started = Instant::now();
    let ins = check("bomb.zip", data);
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    assert!(has(&ins, Code::AttachmentDangerous), "{:#?}", ins.findings);
    assert!(ins.findings.iter().any(|r| r.detail.contains("100 МБ")));
    assert_eq!(ins.entries[0].bytes, 200 << 20);
}

#[test]
fn zip_bomb_by_ratio() {
    // 5 MiB of zeros: within 100 MiB, but compressed over a hundredfold.
    let data = gen::zeros_zip("zeros.txt", 5);
    let ins = check("bomb.zip", &data);
    assert_only(&ins, Code::AttachmentDangerous);
    assert!(ins.findings[0].detail.contains("сжат подозрительно сильно"));
    // Under the floor the same ratio is fine: small files compress well honestly.
    let small = gen::zip(&[("zeros.txt", &vec![0u8; 512 * 1024])]);
    assert_clean(&check("small.zip", &small));
}

/// Patch the declared uncompressed size of every entry (local and central headers).
fn patch_uncompressed_size(zip: &mut [u8], size: u32) {
    let mut i = 0;
    while i + 30 <= zip.len() {
        if zip[i..].starts_with(b"PK\x03\x04") {
            zip[i + 22..i + 26].copy_from_slice(&size.to_le_bytes());
        } else if zip[i..].starts_with(b"PK\x01\x02") {
            zip[i + 24..i + 28].copy_from_slice(&size.to_le_bytes());
        }
        i += 1;
    }
}

#[test]
fn zip_that_lies_about_sizes_is_dangerous() {
    // 2 MiB of text declared as 1000 bytes: the declared sizes pass, the stream does not.
    let text: Vec<u8> = b"0123456789abcdef".repeat(128 * 1024);
    let mut data = gen::zip(&[("log.txt", &text)]);
    patch_uncompressed_size(&mut data, 1000);
    let ins = check("a.zip", &data);
    assert_eq!(ins.entries[0].bytes, 1000);
    assert_only(&ins, Code::AttachmentDangerous);
    assert!(ins.findings[0].detail.contains("log.txt"));
}

#[test]
fn zip_with_too_many_entries_is_dangerous() {
    let data = gen::zip_with(|w| {
        for i in 0..1001 {
            w.start_file(format!("{i}.txt"), gen::stored()).unwrap();
            w.write_all(b"x").unwrap();
        }
    });
    let ins = check("many.zip", &data);
    assert_only(&ins, Code::AttachmentDangerous);
    assert_eq!(ins.entries.len(), 1000);
    assert!(ins.findings[0].detail.contains("1000"));
    // Exactly at the limit is fine.
    let data = gen::zip_with(|w| {
        for i in 0..1000 {
            w.start_file(format!("{i}.txt"), gen::stored()).unwrap();
            w.write_all(b"x").unwrap();
        }
    });
    assert_clean(&check("many.zip", &data));
}

#[test]
fn truncated_or_corrupt_zip_is_unreadable() {
    let data = normal_zip();
    for cut in [data.len() / 2, data.len() - 10, 30] {
        let ins = check("a.zip", &data[..cut]);
        assert_eq!(ins.kind, AttachmentKind::Archive, "cut at {cut}");
        assert_only(&ins, Code::ArchiveUnreadable);
        assert!(ins.findings[0].detail.contains("повреждён"));
    }
    // A flipped byte in stored data: the CRC catches it.
    let png = testdata::png();
    let mut data = gen::zip_with(|w| {
        w.start_file("a.png", gen::stored()).unwrap();
        w.write_all(&png).unwrap();
    });
    let at = data.windows(png.len()).position(|w| w == png).unwrap() + 20;
    data[at] ^= 0x55;
    assert_only(&check("a.zip", &data), Code::ArchiveUnreadable);
}

#[test]
fn zip_named_rar_is_checked_as_zip_with_a_warning() {
    let ins = check("скрины.rar", &normal_zip());
    assert_eq!(ins.kind, AttachmentKind::Archive);
    assert_only(&ins, Code::ExtensionMismatch);
    assert_eq!(ins.image_count, 2);
}

// ---------------------------------------------------------------------------------------------
// 7z

#[test]
fn sevenz_is_listed() {
    let png = testdata::png();
    let data = gen::sevenz(&[
        ("скрин 1.png", &png),
        ("скрин 2.gif", &testdata::gif()),
        ("отчёт.pdf", &gen::pdf()),
    ]);
    let ins = check("скрины.7z", &data);
    assert_eq!(ins.kind, AttachmentKind::Archive);
    assert_clean(&ins);
    assert_eq!(ins.image_count, 2);
    assert_eq!(ins.entries.len(), 3);
    assert_eq!(ins.entries[0].name, "скрин 1.png");
    assert_eq!(ins.entries[0].bytes, png.len() as u64);
}

#[test]
fn sevenz_with_directory_and_symlink() {
    let png = testdata::png();
    let mut link = sevenz_rust2::ArchiveEntry::new_file("link.png");
    link.has_windows_attributes = true;
    link.windows_attributes = 0x8000 | (0o120777 << 16);
    let data = gen::sevenz_entries(vec![
        (sevenz_rust2::ArchiveEntry::new_directory("скрины"), &[][..]),
        (
            sevenz_rust2::ArchiveEntry::new_file("скрины/a.png"),
            &png[..],
        ),
        (link, b"/etc/passwd"),
    ]);
    let ins = check("a.7z", &data);
    assert_only(&ins, Code::AttachmentDangerous);
    assert!(ins.findings[0].detail.contains("link.png"));
    assert_eq!(ins.entries.len(), 1);
}

#[test]
fn sevenz_with_executables_and_nested_archives() {
    let inner = gen::sevenz(&[("x.png", &testdata::png())]);
    let data = gen::sevenz(&[
        ("фото.jpg", &gen::exe()),
        ("inner.7z", &inner),
        ("data.bin", &inner),
    ]);
    let ins = check("a.7z", &data);
    assert!(has(&ins, Code::AttachmentDangerous));
    assert!(has(&ins, Code::AttachmentType));
    let text: String = ins.findings.iter().map(|r| r.detail.clone()).collect();
    assert!(text.contains("фото.jpg") && text.contains("inner.7z") && text.contains("data.bin"));
}

#[test]
fn encrypted_sevenz_is_unreadable() {
    let png = testdata::png();
    for encrypt_header in [false, true] {
        let data = gen::sevenz_with(&[("скрин.png", &png)], Some("secret"), encrypt_header);
        let ins = check("скрины.7z", &data);
        assert_eq!(ins.kind, AttachmentKind::Archive);
        assert_only(&ins, Code::ArchiveUnreadable);
        assert!(
            ins.findings[0].detail.contains("паролем"),
            "{encrypt_header}: {:#?}",
            ins.findings
        );
        if !encrypt_header {
            assert_eq!(ins.image_count, 1);
        }
    }
}

#[test]
fn sevenz_bombs() {
    let zeros = vec![0u8; 300_000];
    let data = gen::sevenz(&[("zeros.txt", &zeros)]);
    let mut small = rules();
    small.archive_max_unpacked = 200_000;
    let ins = inspect("bomb.7z", "", &data, &small);
    assert_only(&ins, Code::AttachmentDangerous);
    let mut tight = rules();
    tight.archive_ratio_floor = 100_000;
    let ins = inspect("bomb.7z", "", &data, &tight);
    assert_only(&ins, Code::AttachmentDangerous);
    assert!(ins.findings[0].detail.contains("сжат"));
    assert_clean(&check("ok.7z", &data));
}

#[test]
fn truncated_or_corrupt_sevenz_is_unreadable() {
    let text = b"lorem ipsum dolor sit amet ".repeat(200);
    let data = gen::sevenz(&[("a.txt", &text), ("b.png", &testdata::png())]);
    for cut in [data.len() / 2, data.len() - 1, 10] {
        let ins = check("a.7z", &data[..cut]);
        assert_eq!(ins.kind, AttachmentKind::Archive);
        assert_only(&ins, Code::ArchiveUnreadable);
    }
    // A flipped bit in the packed stream: a decoding or CRC error.
    let mut bad = data.clone();
    bad[40] ^= 0x10;
    assert_only(&check("a.7z", &bad), Code::ArchiveUnreadable);
}

// ---------------------------------------------------------------------------------------------
// RAR (hand-made RAR 4.x, see `testdata::rar4_entries`)

#[test]
fn rar_is_listed() {
    let png = testdata::png();
    let pdf = gen::pdf();
    let data = testdata::rar4_entries(
        &[
            RarEntry {
                directory: true,
                ..RarEntry::file("скрины", b"")
            },
            RarEntry::file("скрины/ошибка.png", &png),
            RarEntry::file("скрины/b.gif", &testdata::gif()),
            RarEntry::file("протокол.pdf", &pdf),
        ],
        false,
    );
    let ins = check("скрины.rar", &data);
    assert_eq!(ins.kind, AttachmentKind::Archive);
    assert_clean(&ins);
    let names: Vec<&str> = ins.entries.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(names, ["скрины/ошибка.png", "скрины/b.gif", "протокол.pdf"]);
    assert_eq!(ins.image_count, 2);
    assert_eq!(ins.entries[0].bytes, png.len() as u64);
}

#[test]
fn encrypted_rar_is_unreadable() {
    let png = testdata::png();
    let ins = check("скрины.rar", &testdata::rar4(&[("a.png", &png)], true));
    assert_only(&ins, Code::ArchiveUnreadable);
    assert!(ins.findings[0].detail.contains("паролем"));
    assert_eq!(ins.image_count, 1);
    let ins = check(
        "скрины.rar",
        &testdata::rar4_entries(&[RarEntry::file("a.png", &png)], true),
    );
    assert_only(&ins, Code::ArchiveUnreadable);
    assert!(
        ins.findings[0].detail.contains("паролем"),
        "{:#?}",
        ins.findings
    );
}

#[test]
fn truncated_or_corrupt_rar_is_unreadable() {
    let png = testdata::png();
    let data = testdata::rar4(&[("a.png", &png), ("b.png", &png)], false);
    for cut in [7, 20, data.len() / 2, data.len() - 8] {
        let ins = check("a.rar", &data[..cut]);
        assert_eq!(ins.kind, AttachmentKind::Archive);
        assert_only(&ins, Code::ArchiveUnreadable);
    }
    let mut bad = data.clone();
    let at = bad.windows(png.len()).position(|w| w == png).unwrap() + 30;
    bad[at] ^= 0x01;
    assert_only(&check("a.rar", &bad), Code::ArchiveUnreadable);
}

#[test]
fn rar_with_dangerous_entries() {
    let png = testdata::png();
    let exe = gen::exe();
    let data = testdata::rar4(
        &[("ok.png", &png), ("фото.jpg", &exe), ("run.bat", b"@echo")],
        false,
    );
    let ins = check("a.rar", &data);
    assert_only(&ins, Code::AttachmentDangerous);
    assert!(ins.findings[0].detail.contains("фото.jpg"));
    assert!(ins.findings[0].detail.contains("run.bat"));

    let data = testdata::rar4(&[("../evil.txt", b"x")], false);
    assert_only(&check("a.rar", &data), Code::AttachmentDangerous);

    let link = RarEntry {
        unix_mode: Some(0o120777),
        ..RarEntry::file("link.png", b"/etc/passwd")
    };
    let data = testdata::rar4_entries(&[RarEntry::file("a.png", &png), link], false);
    let ins = check("a.rar", &data);
    assert_only(&ins, Code::AttachmentDangerous);
    assert!(ins.findings[0].detail.contains("ссылки"));

    let inner = gen::zip(&[("x.png", &png)]);
    let data = testdata::rar4(&[("inner.zip", &inner)], false);
    assert_only(&check("a.rar", &data), Code::AttachmentType);
}

#[test]
fn rar_limits() {
    let names: Vec<String> = (0..1001).map(|i| format!("{i}.txt")).collect();
    let entries: Vec<(&str, &[u8])> = names.iter().map(|n| (n.as_str(), &b"x"[..])).collect();
    let ins = check("many.rar", &testdata::rar4(&entries, false));
    assert_only(&ins, Code::AttachmentDangerous);
    assert_eq!(ins.entries.len(), 1000);

    let big = vec![0u8; 300_000];
    let data = testdata::rar4(&[("big.txt", &big)], false);
    let mut small = rules();
    small.archive_max_unpacked = 200_000;
    assert_only(
        &inspect("a.rar", "", &data, &small),
        Code::AttachmentDangerous,
    );
    assert_clean(&check("a.rar", &data));
}

#[test]
fn rar_leaves_no_temporary_files() {
    fn ours() -> usize {
        std::fs::read_dir(std::env::temp_dir())
            .map(|d| {
                d.filter_map(Result::ok)
                    .filter(|e| {
                        e.file_name()
                            .to_string_lossy()
                            .starts_with("mailintake-rar-")
                    })
                    .count()
            })
            .unwrap_or(0)
    }
    // Other tests run in parallel and may hold a directory for a moment; this test's own
    // inspections must not add to the count once they are done.
    let data = testdata::rar4(&[("a.png", &testdata::png())], false);
    for _ in 0..20 {
        let _ = check("a.rar", &data);
        let _ = check("a.rar", &data[..data.len() / 2]);
    }
    let mut left = ours();
    for _ in 0..50 {
        if left == 0 {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
        left = ours();
    }
    assert_eq!(left, 0);
}

// ---------------------------------------------------------------------------------------------
// Never panics

/// Every truncation (in steps) and a spread of bit flips of each archive: `inspect` returns.
#[test]
fn never_panics_on_damaged_archives() {
    let png = testdata::png();
    let inner = gen::zip(&[("x.png", &png)]);
    let samples: Vec<(&str, Vec<u8>)> = vec![
        ("a.zip", normal_zip()),
        (
            "a.zip",
            gen::zip(&[("../evil.txt", b"x"), ("i.zip", &inner)]),
        ),
        ("a.zip", gen::zeros_zip("z.txt", 2)),
        ("a.zip", {
            use zip::unstable::write::FileOptionsExt;
            gen::zip_with(|w| {
                let o = gen::deflated().with_deprecated_encryption(b"pw").unwrap();
                w.start_file("a.png", o).unwrap();
                w.write_all(&png).unwrap();
            })
        }),
        (
            "a.7z",
            gen::sevenz(&[("a.png", &png), ("b.txt", &b"hello ".repeat(300))]),
        ),
        (
            "a.7z",
            gen::sevenz_with(&[("a.png", &png)], Some("pw"), true),
        ),
        (
            "a.rar",
            testdata::rar4(&[("a.png", &png), ("b.pdf", &gen::pdf())], false),
        ),
        ("a.rar", testdata::rar4(&[("a.png", &png)], true)),
    ];
    let rules = rules();
    let started = Instant::now();
    let mut runs = 0;
    for (name, data) in &samples {
        let step = (data.len() / 150).max(1);
        for cut in (0..data.len()).step_by(step) {
            let _ = inspect(name, "", &data[..cut], &rules);
            runs += 1;
        }
        let step = (data.len() / 100).max(1);
        for (n, at) in (0..data.len()).step_by(step).enumerate() {
            let mut bad = data.clone();
            bad[at] ^= 1 << (n % 8);
            let ins = inspect(name, "", &bad, &rules);
            assert!(!ins.findings.is_empty() || ins.kind != AttachmentKind::Other);
            runs += 1;
        }
    }
    eprintln!(
        "{runs} damaged archives inspected in {:?}",
        started.elapsed()
    );
}

#[test]
fn never_panics_on_noise() {
    let rules = rules();
    let names = [
        "a.zip", "a.7z", "a.rar", "a.png", "a.pdf", "a.docx", "a.mp4", "a", "a.txt",
    ];
    for seed in 0..40u64 {
        let len = (seed as usize * 37) % 700;
        let mut data = gen::noise(len, seed + 10);
        // Give some of them a plausible start.
        let magic: &[u8] = match seed % 4 {
            0 => b"PK\x03\x04",
            1 => &[b'7', b'z', 0xBC, 0xAF, 0x27, 0x1C, 0, 4],
            2 => b"Rar!\x1a\x07\x00",
            _ => b"Rar!\x1a\x07\x01\x00",
        };
        if data.len() >= magic.len() {
            data[..magic.len()].copy_from_slice(magic);
        }
        for name in names {
            let _ = inspect(name, "", &data, &rules);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Speed (run in release: `cargo test --release --test attach -- --ignored --nocapture`)

#[test]
#[ignore = "timing; run in release"]
fn timing() {
    let rules = rules();
    let shots = [testdata::png(), testdata::jpeg(), testdata::gif()];
    let rounds = 2000;
    let started = Instant::now();
    for _ in 0..rounds {
        for (i, s) in shots.iter().enumerate() {
            let _ = inspect(&format!("скрин{i}.png"), "image/png", s, &rules);
        }
    }
    let per_image = started.elapsed() / (rounds * 3);
    // A 1 MB zip: 3 screenshot-sized noise images of ~330 KB, stored as a real zip would hold
    // JPEGs (incompressible).
    let noise: Vec<Vec<u8>> = (0..3).map(|i| gen::noise(330_000, i + 1)).collect();
    let zip = gen::zip(&[
        ("1.jpg", &noise[0]),
        ("2.jpg", &noise[1]),
        ("3.jpg", &noise[2]),
    ]);
    let started = Instant::now();
    for _ in 0..50 {
        let _ = inspect("скрины.zip", "", &zip, &rules);
    }
    let per_zip = started.elapsed() / 50;
    let seven = gen::sevenz(&[
        ("1.jpg", &noise[0]),
        ("2.jpg", &noise[1]),
        ("3.jpg", &noise[2]),
    ]);
    let started = Instant::now();
    for _ in 0..20 {
        let _ = inspect("скрины.7z", "", &seven, &rules);
    }
    let per_7z = started.elapsed() / 20;
    let rar = testdata::rar4(
        &[
            ("1.jpg", &noise[0]),
            ("2.jpg", &noise[1]),
            ("3.jpg", &noise[2]),
        ],
        false,
    );
    let started = Instant::now();
    for _ in 0..20 {
        let _ = inspect("скрины.rar", "", &rar, &rules);
    }
    let per_rar = started.elapsed() / 20;
    let bomb = zip_bomb_200mb();
    let started = Instant::now();
    let _ = inspect("bomb.zip", "", bomb, &rules);
    let per_bomb = started.elapsed();
    let five = gen::zeros_zip("z.txt", 5);
    let started = Instant::now();
    let _ = inspect("bomb.zip", "", &five, &rules);
    let per_ratio_bomb = started.elapsed();
    eprintln!(
        "image {per_image:?}; 1 MB zip {per_zip:?} ({} bytes); 1 MB 7z {per_7z:?}; 1 MB rar {per_rar:?}; \
         200 MB bomb {per_bomb:?}; 5 MB ratio bomb {per_ratio_bomb:?}",
        zip.len()
    );
}
