//! Segment documents (the `segments` extension's view of a network's segments).

use neutrino_lib::resource::stamp;
use neutrino_lib::Map;
use neutrino_store::schema::SEGMENTS;
use neutrino_store::Tx;
use serde_json::{json, Value};

use crate::error::Result;
use crate::types::Segment;

/// Stores the segments of a new network.
pub async fn add(tx: &mut Tx, network: &Map, segs: &[Segment]) -> Result<Vec<Map>> {
    let mut out = vec![];
    let project = stamp::str_of(network, "project_id").to_string();
    for (i, s) in segs.iter().enumerate() {
        let mut doc = json!({
            "network_id": network["id"],
            "network_type": s.network_type,
            "physical_network": s.physical_network,
            "segmentation_id": s.segmentation_id,
            "name": Value::Null,
            "segment_index": i,
        })
        .as_object()
        .cloned()
        .unwrap_or_default();
        stamp::created(&mut doc, &project, true, false);
        tx.insert(&SEGMENTS, &doc).await?;
        out.push(doc);
    }
    Ok(out)
}

/// The segments of a network, in index order.
pub async fn of_network(tx: &mut Tx, network_id: &str) -> Result<Vec<Map>> {
    let mut segs = tx.list(&SEGMENTS, &[("network_id", vec![network_id.to_string()])]).await?;
    segs.sort_by_key(|s| s.get("segment_index").and_then(Value::as_i64).unwrap_or(0));
    Ok(segs)
}

/// A segment document as a [`Segment`].
pub fn as_segment(doc: &Map) -> Segment {
    Segment {
        network_type: stamp::str_of(doc, "network_type").to_string(),
        physical_network: doc.get("physical_network").and_then(Value::as_str).map(String::from),
        segmentation_id: doc.get("segmentation_id").and_then(Value::as_i64),
    }
}
