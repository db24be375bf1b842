//! Source-agency control (policy 5b and 6a): a contributing agency's ingest filters decide what
//! it shares before any read reaches a shard, and only the source agency may correct or delete
//! its reads.

use crate::domain::{Agency, Read, Role, User};

/// Reads an agency shares, with their crops; and how many of each rule kept out.
pub struct Filtered {
    pub reads: Vec<Read>,
    pub crops: Vec<Option<Vec<u8>>>,
    pub dropped: Vec<(Read, &'static str)>,
}

/// Applies `agency`'s ingest filters to reads it contributes. `crops` may be shorter than
/// `reads` (reads without crops).
pub fn apply_ingest_filters(
    agency: &Agency,
    reads: Vec<Read>,
    crops: Vec<Option<Vec<u8>>>,
) -> Filtered {
    let mut out = Filtered {
        reads: Vec::with_capacity(reads.len()),
        crops: Vec::with_capacity(reads.len()),
        dropped: Vec::new(),
    };
    let filters = &agency.ingest_filters;
    for (read, crop) in reads
        .into_iter()
        .zip(crops.into_iter().chain(std::iter::repeat(None)))
    {
        match filters.excludes(&read) {
            Some(rule) => out.dropped.push((read, rule)),
            None => {
                out.reads.push(read);
                out.crops.push(crop);
            }
        }
    }
    out
}

/// Whether `user` may correct or delete `read`: an administrator or authorized user of the
/// read's source agency.
pub fn may_control(user: &User, read: &Read) -> Result<(), String> {
    if user.agency_id != read.agency_id {
        return Err(format!(
            "read {} belongs to source agency {}: only that agency may correct or delete it",
            read.id.to_hex(),
            read.agency_id
        ));
    }
    if !matches!(user.role, Role::AgencyAdministrator | Role::AuthorizedUser) {
        return Err(
            "only the source agency's administrator or authorized users may do this".into(),
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{GeoBox, GeoPoint, IngestFilters, ReadId, ReadSource, TimeWindow};

    fn read(plate: &str, camera: &str, lat: f64, at: i64) -> Read {
        Read {
            id: ReadId::for_frame(camera, at as u64, 0),
            plate: plate.into(),
            plate_state: None,
            captured_at: at,
            agency_id: "A".into(),
            camera_id: camera.into(),
            position: Some(GeoPoint { lat, lon: -71.0 }),
            heading_degrees: None,
            place: None,
            confidence: 0.9,
            char_confidences: vec![],
            alternates: vec![],
            plate_box: None,
            has_crop: false,
            source: ReadSource::EdgeRead { seq: 1 },
            stored_at: at,
        }
    }

    #[test]
    fn each_filter_rule_keeps_out_exactly_its_reads() {
        let mut agency = Agency::new("A", "A", true, "x", 0);
        agency.ingest_filters = IngestFilters {
            plates: vec!["un dercover-1".into()],
            cameras: vec!["cam-secret".into()],
            areas: vec![GeoBox {
                min_lat: 42.0,
                min_lon: -72.0,
                max_lat: 42.1,
                max_lon: -70.0,
            }],
            // 01:00-02:00 local at UTC-05:00 is 06:00-07:00 UTC.
            time_windows: vec![TimeWindow {
                from: "01:00".into(),
                to: "02:00".into(),
            }],
            utc_offset: Some("-05:00".into()),
        }
        .normalized()
        .unwrap();
        let noon = 1_780_000_000_000 - 1_780_000_000_000 % 86_400_000 + 12 * 3_600_000;
        let six_thirty = noon - 5 * 3_600_000 - 30 * 60_000;
        let reads = vec![
            read("ABC123", "cam-1", 41.0, noon),
            read("UNDERCOVER1", "cam-1", 41.0, noon),
            read("ABC124", "cam-secret", 41.0, noon),
            read("ABC125", "cam-1", 42.05, noon),
            read("ABC126", "cam-1", 41.0, six_thirty),
        ];
        let out = apply_ingest_filters(&agency, reads, vec![]);
        assert_eq!(out.reads.len(), 1);
        assert_eq!(out.reads[0].plate, "ABC123");
        let rules: Vec<&str> = out.dropped.iter().map(|(_, r)| *r).collect();
        assert_eq!(rules, ["plate", "camera", "area", "time window"]);
    }

    #[test]
    fn only_the_source_agency_controls_a_read() {
        let r = read("ABC123", "cam-1", 41.0, 0);
        let own = User::new("o", "A", Role::AuthorizedUser, String::new(), "t", 0);
        let other = User::new("x", "B", Role::AgencyAdministrator, String::new(), "t", 0);
        let auditor = User::new("y", "A", Role::Auditor, String::new(), "t", 0);
        assert!(may_control(&own, &r).is_ok());
        assert!(
            may_control(&other, &r)
                .unwrap_err()
                .contains("source agency A")
        );
        assert!(may_control(&auditor, &r).is_err());
    }
}
