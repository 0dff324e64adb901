//! `segments` (the segment extension).

use crate::attr::{Attr, Check, Dflt};
use crate::resource::ResourceDef;

const ATTRS: &[Attr] = &[
    Attr::ro("network_id").required().fs().check(Check::Uuid),
    Attr::ro("physical_network").post(Dflt::Null).fs().check(Check::StrOrNull(64)),
    Attr::ro("network_type").required().fs().check(Check::Str(32)),
    Attr::ro("segmentation_id").post(Dflt::Null).sort().check(Check::IntOrNull(0, u32::MAX as i64)),
    Attr::ro("name").post(Dflt::Null).put().fs().check(Check::StrOrNull(255)),
    Attr::ro("segment_index").hidden(),
];

/// The segment resource.
pub static SEGMENT: ResourceDef = ResourceDef {
    member: "segment",
    collection: "segments",
    path: "segments",
    label: "Segment",
    not_found: "SegmentNotFound",
    attrs: ATTRS,
    project: true,
    standard: true,
    tags: false,
};
