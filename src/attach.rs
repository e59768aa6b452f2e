// PLACEHOLDER stub written by the lead so the crate builds; the attach helper replaces this file.
use crate::verdict::{ArchiveEntry, AttachmentKind, Reason};
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AttachmentRules {
    pub image_ext: Vec<String>,
    pub archive_ext: Vec<String>,
    pub supplement_ext: Vec<String>,
    pub document_ext: Vec<String>,
    pub dangerous_ext: Vec<String>,
    pub max_total_bytes: u64,
    pub max_images: usize,
    pub archive_max_unpacked: u64,
    pub archive_max_ratio: u64,
    pub archive_ratio_floor: u64,
    pub archive_max_entries: usize,
}
impl AttachmentRules {
    pub fn validate(&self) -> Result<(), String> {
        Ok(())
    }
}
pub struct Inspection {
    pub kind: AttachmentKind,
    pub entries: Vec<ArchiveEntry>,
    pub image_count: usize,
    pub findings: Vec<Reason>,
}
pub fn inspect(_name: &str, _ct: &str, _data: &[u8], _rules: &AttachmentRules) -> Inspection {
    Inspection { kind: AttachmentKind::Other, entries: vec![], image_count: 0, findings: vec![] }
}
