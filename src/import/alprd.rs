//! OpenALPR `alprd` results: one JSON object per line (or one JSON array of objects), each an
//! `alpr_results` message (one frame, `results[]` plates) or an `alpr_group` message (one
//! vehicle, `best_plate_number`). Confidences are percentages. Other message types (heartbeats,
//! vehicle-only messages) are not ALPR reads and are reported as rejected.

use serde_json::Value;

use super::{Parsed, Rejected};
use crate::domain::{Alternate, GeoPoint, Read, ReadId, ReadSource, normalize_plate};
use crate::util::now_millis;

pub fn parse(text: &str, agency_id: &str) -> Parsed {
    let mut parsed = Parsed::default();
    let trimmed = text.trim_start();
    let records: Vec<(u64, Result<Value, String>)> = if trimmed.starts_with('[') {
        match serde_json::from_str::<Vec<Value>>(trimmed) {
            Ok(values) => values
                .into_iter()
                .enumerate()
                .map(|(i, v)| (i as u64 + 1, Ok(v)))
                .collect(),
            Err(e) => vec![(1, Err(format!("not a JSON array of results: {e}")))],
        }
    } else {
        text.lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty())
            .map(|(i, l)| {
                (
                    i as u64 + 1,
                    serde_json::from_str::<Value>(l).map_err(|e| format!("not JSON: {e}")),
                )
            })
            .collect()
    };
    let stored_at = now_millis();
    for (line, record) in records {
        parsed.records += 1;
        let result = record.and_then(|v| reads_of(&v, line, agency_id, stored_at));
        match result {
            Ok(reads) => parsed.reads.extend(reads),
            Err(reason) => parsed.rejected.push(Rejected { line, reason }),
        }
    }
    parsed
}

fn text_of(v: &Value, key: &str) -> Option<String> {
    match v.get(key)? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn position_of(v: &Value) -> Result<Option<GeoPoint>, String> {
    match (
        v.get("gps_latitude").and_then(Value::as_f64),
        v.get("gps_longitude").and_then(Value::as_f64),
    ) {
        (Some(lat), Some(lon)) if lat == 0.0 && lon == 0.0 => Ok(None),
        (Some(lat), Some(lon)) => {
            let p = GeoPoint { lat, lon };
            p.validate()?;
            Ok(Some(p))
        }
        _ => Ok(None),
    }
}

fn percent(v: Option<&Value>) -> Result<f32, String> {
    let c = v.and_then(Value::as_f64).ok_or("confidence is missing")?;
    if !(0.0..=100.0).contains(&c) {
        return Err(format!("confidence {c} is not a percentage"));
    }
    Ok((c / 100.0) as f32)
}

fn candidates(v: Option<&Value>, best: &str) -> Vec<Alternate> {
    let list = v
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    let candidates = list.iter().filter_map(|c| {
        let plate = normalize_plate(c.get("plate")?.as_str()?)?;
        let confidence = percent(c.get("confidence")).ok()?;
        Some(Alternate { plate, confidence })
    });
    Alternate::tidy(best, candidates, 5)
}

fn reads_of(v: &Value, line: u64, agency_id: &str, stored_at: i64) -> Result<Vec<Read>, String> {
    let kind = v
        .get("data_type")
        .and_then(Value::as_str)
        .ok_or("data_type is missing: not an alprd message")?;
    let camera = text_of(v, "camera_id").unwrap_or_else(|| "alprd".into());
    let camera_id = match text_of(v, "site_id") {
        Some(site) if !site.is_empty() => format!("{site}/{camera}"),
        _ => camera,
    };
    let position = position_of(v)?;
    let base = |id: ReadId,
                plate: String,
                captured_at: i64,
                confidence: f32,
                alternates: Vec<Alternate>,
                state: Option<String>| Read {
        id,
        plate,
        plate_state: state,
        captured_at,
        agency_id: agency_id.to_string(),
        camera_id: camera_id.clone(),
        position,
        heading_degrees: v
            .get("travel_direction")
            .and_then(Value::as_f64)
            .map(|d| d as f32)
            .filter(|d| (0.0..360.0).contains(d)),
        place: None,
        confidence,
        char_confidences: Vec::new(),
        alternates,
        plate_box: None,
        has_crop: false,
        source: ReadSource::Import {
            format: "alprd-json".into(),
            line,
        },
        stored_at,
    };
    let check_time = |t: i64| -> Result<i64, String> {
        if t <= 946_684_800_000 || t > stored_at + 5 * 60_000 {
            Err(format!(
                "time {t} is not a plausible capture time in epoch milliseconds"
            ))
        } else {
            Ok(t)
        }
    };
    match kind {
        "alpr_results" => {
            let at = check_time(
                v.get("epoch_time")
                    .and_then(Value::as_i64)
                    .ok_or("epoch_time is missing")?,
            )?;
            let uuid = text_of(v, "uuid").ok_or("uuid is missing")?;
            let results = v
                .get("results")
                .and_then(Value::as_array)
                .ok_or("results is missing")?;
            let mut reads = Vec::new();
            for (i, r) in results.iter().enumerate() {
                let raw = r
                    .get("plate")
                    .and_then(Value::as_str)
                    .ok_or(format!("results[{i}].plate is missing"))?;
                let plate = normalize_plate(raw)
                    .ok_or(format!("results[{i}].plate {raw:?} is not a plate"))?;
                let confidence =
                    percent(r.get("confidence")).map_err(|e| format!("results[{i}]: {e}"))?;
                let alternates = candidates(r.get("candidates"), &plate);
                let state = r
                    .get("region")
                    .and_then(Value::as_str)
                    .filter(|s| !s.is_empty())
                    .map(str::to_ascii_uppercase);
                let id = ReadId::for_import(agency_id, "alprd-json", &format!("{uuid}#{i}"));
                reads.push(base(id, plate, at, confidence, alternates, state));
            }
            Ok(reads)
        }
        "alpr_group" => {
            let at = check_time(
                v.get("epoch_start")
                    .and_then(Value::as_i64)
                    .ok_or("epoch_start is missing")?,
            )?;
            let raw = v
                .get("best_plate_number")
                .and_then(Value::as_str)
                .ok_or("best_plate_number is missing")?;
            let plate =
                normalize_plate(raw).ok_or(format!("best_plate_number {raw:?} is not a plate"))?;
            let confidence = percent(v.get("best_confidence"))?;
            let key = text_of(v, "best_uuid")
                .or_else(|| text_of(v, "uuid"))
                .ok_or("best_uuid is missing")?;
            let alternates = candidates(v.get("candidates"), &plate);
            let state = v
                .get("best_region")
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
                .map(str::to_ascii_uppercase);
            let id = ReadId::for_import(agency_id, "alprd-json", &format!("group:{key}"));
            Ok(vec![base(id, plate, at, confidence, alternates, state)])
        }
        other => Err(format!(
            "data_type {other:?} is not an ALPR read (expected alpr_results or alpr_group)"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_groups_and_non_alpr_messages() {
        let text = r#"{"version":2,"data_type":"alpr_results","epoch_time":1633233600000,"uuid":"u-1","camera_id":12,"site_id":"north","results":[{"plate":"ABC123","confidence":91.5,"region":"wa","candidates":[{"plate":"ABC123","confidence":91.5},{"plate":"A8C123","confidence":70.0}]}]}
{"data_type":"heartbeat","epoch_time":1633233600000}
{"data_type":"alpr_group","epoch_start":1633233601000,"best_plate_number":"xyz-987","best_confidence":88.0,"best_uuid":"u-2","camera_id":12,"gps_latitude":47.6,"gps_longitude":-122.3}
not json
{"data_type":"alpr_results","epoch_time":1633233600000,"uuid":"u-3","results":[{"plate":"!!","confidence":50}]}
"#;
        let parsed = parse(text, "SPD");
        assert_eq!(parsed.records, 5);
        assert_eq!(parsed.reads.len(), 2);
        assert_eq!(parsed.reads[0].plate, "ABC123");
        assert_eq!(parsed.reads[0].camera_id, "north/12");
        assert_eq!(
            parsed.reads[0].alternates,
            vec![Alternate {
                plate: "A8C123".into(),
                confidence: 0.7
            }]
        );
        assert_eq!(parsed.reads[1].plate, "XYZ987");
        assert!(parsed.reads[1].position.is_some());
        let lines: Vec<u64> = parsed.rejected.iter().map(|r| r.line).collect();
        assert_eq!(lines, vec![2, 4, 5]);
        assert!(parsed.rejected[0].reason.contains("heartbeat"));
        // Same content, same ids: a re-import stores nothing twice.
        assert_eq!(parse(text, "SPD").reads[0].id, parsed.reads[0].id);
    }
}
