//! The pipe-delimited public-records export (Seattle Police Department layout):
//! `zipcode|dt|location|address|device|plate|lon|lat`, `NA` for nulls, `dt` as
//! `MM/DD/YYYY - HH:MM:SS` in local time without a zone (the caller gives the UTC offset).

use chrono::{FixedOffset, NaiveDateTime, TimeZone};

use super::{Parsed, Rejected};
use crate::domain::{GeoPoint, Read, ReadId, ReadSource, normalize_plate};
use crate::util::now_millis;

const HEADER: [&str; 8] = [
    "zipcode", "dt", "location", "address", "device", "plate", "lon", "lat",
];

fn field(value: &str) -> Option<&str> {
    let v = value.trim();
    if v.is_empty() || v == "NA" {
        None
    } else {
        Some(v)
    }
}

pub fn parse(text: &str, agency_id: &str, utc_offset_minutes: i32) -> Parsed {
    let mut parsed = Parsed::default();
    let Some(offset) = FixedOffset::east_opt(utc_offset_minutes * 60) else {
        parsed.rejected.push(Rejected {
            line: 0,
            reason: format!("UTC offset {utc_offset_minutes} minutes is not valid"),
        });
        return parsed;
    };
    let mut lines = text.lines().enumerate();
    let Some((_, header)) = lines.next() else {
        parsed.rejected.push(Rejected {
            line: 1,
            reason: "the file is empty".into(),
        });
        return parsed;
    };
    let columns: Vec<&str> = header
        .trim_end_matches('\r')
        .split('|')
        .map(str::trim)
        .collect();
    if columns != HEADER {
        parsed.rejected.push(Rejected {
            line: 1,
            reason: format!("header {columns:?} is not {HEADER:?}"),
        });
        return parsed;
    }
    let stored_at = now_millis();
    for (index, raw) in lines {
        let line_no = index as u64 + 1;
        let line = raw.trim_end_matches('\r');
        if line.trim().is_empty() {
            continue;
        }
        parsed.records += 1;
        match parse_line(line, line_no, agency_id, offset, stored_at) {
            Ok(read) => parsed.reads.push(read),
            Err(reason) => parsed.rejected.push(Rejected {
                line: line_no,
                reason,
            }),
        }
    }
    parsed
}

fn parse_line(
    line: &str,
    line_no: u64,
    agency_id: &str,
    offset: FixedOffset,
    stored_at: i64,
) -> Result<Read, String> {
    let f: Vec<&str> = line.split('|').collect();
    if f.len() != HEADER.len() {
        return Err(format!("{} fields, expected {}", f.len(), HEADER.len()));
    }
    let dt = field(f[1]).ok_or("dt is missing")?;
    let local = NaiveDateTime::parse_from_str(dt, "%m/%d/%Y - %H:%M:%S")
        .map_err(|e| format!("dt {dt:?} is not MM/DD/YYYY - HH:MM:SS: {e}"))?;
    let captured_at = offset
        .from_local_datetime(&local)
        .single()
        .ok_or_else(|| format!("dt {dt:?} is not a valid local time"))?
        .timestamp_millis();
    if captured_at > stored_at + 5 * 60_000 {
        return Err(format!("dt {dt:?} is in the future"));
    }
    let plate_raw = field(f[5]).ok_or("plate is missing")?;
    let plate =
        normalize_plate(plate_raw).ok_or_else(|| format!("plate {plate_raw:?} is not a plate"))?;
    let device = field(f[4]).unwrap_or("unknown-device").to_string();
    let position = match (field(f[7]), field(f[6])) {
        (Some(lat), Some(lon)) => {
            let lat: f64 = lat
                .parse()
                .map_err(|_| format!("lat {lat:?} is not a number"))?;
            let lon: f64 = lon
                .parse()
                .map_err(|_| format!("lon {lon:?} is not a number"))?;
            let p = GeoPoint { lat, lon };
            p.validate()?;
            Some(p)
        }
        (None, None) => None,
        _ => return Err("only one of lat and lon is given".into()),
    };
    let place = match (field(f[3]), field(f[2])) {
        (Some(address), Some(unit)) => Some(format!("{address} ({unit})")),
        (Some(address), None) => Some(address.to_string()),
        (None, Some(unit)) => Some(unit.to_string()),
        (None, None) => None,
    };
    Ok(Read {
        // The whole record is the natural key: an identical line is the same read.
        id: ReadId::for_import(agency_id, "spd-psv", line.trim()),
        plate,
        plate_state: None,
        captured_at,
        agency_id: agency_id.to_string(),
        camera_id: device,
        position,
        heading_degrees: None,
        place,
        confidence: 1.0,
        char_confidences: Vec::new(),
        alternates: Vec::new(),
        plate_box: None,
        has_crop: false,
        source: ReadSource::Import {
            format: "spd-psv".into(),
            line: line_no,
        },
        stored_at,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "zipcode|dt|location|address|device|plate|lon|lat\n\
98101|10/02/2021 - 21:48:03|NORTH 034035|1ST AVE / PIKE ST|M207541_Deleted_2021-10-21_22 50:42|ABC1234|-122.34|47.61\n\
NA|10/02/2021 - 21:49:00|NA|NA|SPD2020627MDC|XYZ9876|NA|NA\n\
98101|13/45/2021 - 21:48:03|NA|NA|D1|ABC1234|NA|NA\n\
98101|10/02/2021 - 21:48:03|NA|NA|D1|--|NA|NA\n\
98101|10/02/2021 - 21:48:03|NA|NA|D1\n\
98101|10/02/2021 - 21:48:03|NORTH 034035|1ST AVE / PIKE ST|M207541_Deleted_2021-10-21_22 50:42|ABC1234|-122.34|47.61\n";

    #[test]
    fn real_quirks_parse_and_bad_lines_are_reported_with_reasons() {
        let parsed = parse(SAMPLE, "SPD", -7 * 60);
        assert_eq!(parsed.records, 6);
        assert_eq!(parsed.reads.len(), 3);
        let lines: Vec<u64> = parsed.rejected.iter().map(|r| r.line).collect();
        assert_eq!(lines, vec![4, 5, 6]);
        assert!(parsed.rejected[0].reason.contains("dt"));
        assert!(parsed.rejected[1].reason.contains("plate"));
        assert!(parsed.rejected[2].reason.contains("fields"));
        let first = &parsed.reads[0];
        assert_eq!(first.camera_id, "M207541_Deleted_2021-10-21_22 50:42");
        // 21:48:03 PDT is 04:48:03 UTC the next day.
        assert_eq!(
            crate::util::format_millis(first.captured_at),
            "2021-10-03T04:48:03.000Z"
        );
        assert!(parsed.reads[1].position.is_none());
        // An identical line maps to the same id: stored once.
        assert_eq!(parsed.reads[0].id, parsed.reads[2].id);
    }
}
