//! Hot-list file parsers: the NCIC LPR extract (fixed width and 12-column CSV), delimited files
//! with a header and a column mapping, and plain one-plate-a-line lists. Real files are messy:
//! every line that does not become an entry is reported with its number and reason, and parsing
//! never stops at the first bad line.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::domain::normalize_plate;

/// The layouts a list can arrive in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum ListFormat {
    /// NCIC LPR extract, fixed width, one header line.
    Ncic,
    /// The NCIC extract as 12-column CSV (NIC, ORI, date, plate, state, plate year, plate type,
    /// vehicle year, make, model, style, colour), with or without a header line.
    NcicCsv,
    /// A header line and a delimiter; columns found by name (or the mapping given).
    Delimited,
    /// One plate per line.
    Plain,
}

/// How to read a delimited file.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DelimitedOptions {
    /// `;` `,` `:` or tab (`\t`); detected from the header when not given.
    #[serde(default)]
    pub delimiter: Option<char>,
    /// The header name of the plate column (default: plate, plate_number, tag, license...).
    #[serde(default)]
    pub plate_column: Option<String>,
    #[serde(default)]
    pub state_column: Option<String>,
    /// A column kept as the entry's note (reason, case, description).
    #[serde(default)]
    pub note_column: Option<String>,
}

/// The NCIC list types, by the first character of the NIC.
pub fn ncic_list_type(code: char) -> Option<&'static str> {
    Some(match code {
        'A' => "amber_alert",
        'F' => "felony_vehicle",
        'W' => "wanted_person",
        'V' => "stolen_vehicle",
        'P' => "stolen_plate",
        'M' => "missing_person",
        'C' => "supervised_release",
        'H' => "protection_order",
        'K' => "protective_interest",
        'L' => "violent_person",
        'R' => "stolen_canadian_vehicle",
        'T' => "gang_or_terrorist_member",
        'X' => "sex_offender",
        _ => return None,
    })
}

/// One plate of interest with what the source says about it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ListEntry {
    /// Normalized plate (A-Z, 0-9).
    pub plate: String,
    pub plate_state: Option<String>,
    /// NCIC list type (`stolen_vehicle`, ...) or None for agency lists.
    pub list_type: Option<String>,
    pub nic: Option<String>,
    pub ori: Option<String>,
    /// Date of entry, YYYY-MM-DD.
    pub entered_on: Option<String>,
    pub plate_year: Option<String>,
    pub plate_type: Option<String>,
    pub vehicle_year: Option<String>,
    pub make: Option<String>,
    pub model: Option<String>,
    pub style: Option<String>,
    /// `AAA` or `AAA/BBB`.
    pub colour: Option<String>,
    pub note: Option<String>,
}

/// A line that did not become an entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SkippedLine {
    pub line: u64,
    pub reason: String,
}

#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct ParsedList {
    pub entries: Vec<ListEntry>,
    pub skipped: Vec<SkippedLine>,
    /// Data lines looked at (not counting blank and comment lines or the header).
    pub lines: u64,
}

impl ParsedList {
    fn skip(&mut self, line: u64, reason: impl Into<String>) {
        self.skipped.push(SkippedLine {
            line,
            reason: reason.into(),
        });
    }
}

/// Lines that carry no data: blank, comments (`#`, `//`, `;`, `--`, `*`).
fn is_ignorable(line: &str) -> bool {
    let t = line.trim();
    t.is_empty() || ["#", "//", ";", "--", "*"].iter().any(|p| t.starts_with(p))
}

/// Trailer records some exports end with (record counts, end markers): a marker word followed by
/// more words or a count, or a line of only `*END*`-style markers.
fn is_trailer(line: &str) -> bool {
    const MARKERS: [&str; 7] = ["END", "EOF", "TRAILER", "TOTAL", "COUNT", "RECORDS", "TRL"];
    let t = line.trim().to_ascii_uppercase();
    let words: Vec<&str> = t
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
        .collect();
    match words.first() {
        Some(first) if MARKERS.contains(first) => words.len() > 1 || t.len() > first.len(),
        _ => false,
    }
}

/// A two-letter state or province code, repairing the common `0H` (zero for O) typo.
fn state_code(text: &str) -> Result<Option<String>, String> {
    let t = text.trim().to_ascii_uppercase();
    if t.is_empty() {
        return Ok(None);
    }
    let fixed: String = t.chars().map(|c| if c == '0' { 'O' } else { c }).collect();
    if fixed.len() == 2 && fixed.chars().all(|c| c.is_ascii_uppercase()) {
        Ok(Some(fixed))
    } else {
        Err(format!(
            "plate state {:?} is not a two-letter code",
            text.trim()
        ))
    }
}

fn field(text: &str) -> Option<String> {
    let t = text.trim();
    (!t.is_empty()).then(|| t.to_ascii_uppercase())
}

fn date(text: &str) -> Result<Option<String>, String> {
    let t = text.trim();
    if t.is_empty() {
        return Ok(None);
    }
    chrono::NaiveDate::parse_from_str(t, "%Y%m%d")
        .map(|d| Some(d.format("%Y-%m-%d").to_string()))
        .map_err(|_| format!("date {t:?} is not YYYYMMDD"))
}

fn plate(text: &str) -> Result<String, String> {
    normalize_plate(text).ok_or_else(|| {
        if text.trim().is_empty() {
            "no plate".to_string()
        } else {
            format!(
                "plate {:?} is not a plate (A-Z, 0-9, 1-12 characters)",
                text.trim()
            )
        }
    })
}

/// Characters `from..to` of `line` (chars, not bytes), trimmed.
fn cut(chars: &[char], from: usize, to: usize) -> String {
    if from >= chars.len() {
        return String::new();
    }
    chars[from..to.min(chars.len())].iter().collect::<String>()
}

/// The NCIC record fields in order, from a fixed-width line or a CSV row.
fn ncic_entry(fields: &[String]) -> Result<ListEntry, String> {
    let nic = fields
        .first()
        .map(|s| s.trim().to_ascii_uppercase())
        .unwrap_or_default();
    let code = nic.chars().next().ok_or("no NIC")?;
    let list_type = ncic_list_type(code)
        .ok_or_else(|| format!("NIC {nic:?}: list type {code:?} is not an NCIC LPR type"))?;
    let get = |i: usize| fields.get(i).map(String::as_str).unwrap_or("");
    let colour = field(get(11));
    if let Some(c) = &colour {
        let ok = c.split('/').count() <= 2 && c.split('/').all(|p| (2..=3).contains(&p.len()));
        if !ok {
            return Err(format!("colour {c:?} is not AAA or AAA/BBB"));
        }
    }
    Ok(ListEntry {
        plate: plate(get(3))?,
        plate_state: state_code(get(4))?,
        list_type: Some(list_type.to_string()),
        nic: Some(nic),
        ori: field(get(1)),
        entered_on: date(get(2))?,
        plate_year: field(get(5)),
        plate_type: field(get(6)),
        vehicle_year: field(get(7)),
        make: field(get(8)),
        model: field(get(9)),
        style: field(get(10)),
        colour,
        note: None,
    })
}

/// Field boundaries of the fixed-width extract (start of each field, and the end of the last).
const NCIC_COLUMNS: [usize; 13] = [0, 10, 19, 27, 37, 39, 43, 45, 49, 53, 56, 58, 65];
/// A record may stop after the plate state.
const NCIC_MIN_CHARS: usize = 39;

fn looks_like_ncic_header(line: &str) -> bool {
    let t = line.trim_start().to_ascii_uppercase();
    t.starts_with("NIC") || t.contains("ORI") || t.contains("PLATE") || t.starts_with("HDR")
}

/// Parses `text` in `format`. Duplicates (same plate and state) keep the first occurrence.
pub fn parse(format: ListFormat, text: &str, options: &DelimitedOptions) -> ParsedList {
    let mut out = ParsedList::default();
    let mut seen: HashMap<(String, Option<String>), u64> = HashMap::new();
    let mut lines = text
        .split('\n')
        .map(|l| {
            l.strip_suffix('\r')
                .unwrap_or(l)
                .trim_start_matches('\u{feff}')
        })
        .enumerate()
        .map(|(i, l)| (i as u64 + 1, l))
        .filter(|(_, l)| !is_ignorable(l))
        .peekable();
    // The header line.
    let mut columns: Option<(char, usize, Option<usize>, Option<usize>)> = None;
    match format {
        ListFormat::Ncic => {
            if let Some((_, first)) = lines.peek()
                && looks_like_ncic_header(first)
            {
                lines.next();
            }
        }
        ListFormat::NcicCsv => {
            if let Some((_, first)) = lines.peek()
                && first.split(',').next().is_some_and(|f| {
                    let f = f.trim().trim_matches('"').to_ascii_uppercase();
                    f == "NIC" || f.is_empty() || f.contains("NUMBER")
                })
            {
                lines.next();
            }
        }
        ListFormat::Delimited => {
            let Some((number, header)) = lines.next() else {
                return out;
            };
            match delimited_columns(header, options) {
                Ok(c) => columns = Some(c),
                Err(reason) => {
                    out.skip(number, reason);
                    return out;
                }
            }
        }
        ListFormat::Plain => {}
    }
    for (number, line) in lines {
        if is_trailer(line) {
            out.skip(number, "trailer record");
            continue;
        }
        out.lines += 1;
        let entry = match format {
            ListFormat::Ncic => {
                let chars: Vec<char> = line.trim_end().chars().collect();
                if chars.len() < NCIC_MIN_CHARS {
                    Err(format!(
                        "record is {} characters; the fixed-width extract needs at least {NCIC_MIN_CHARS} (through the plate state)",
                        chars.len()
                    ))
                } else {
                    let fields: Vec<String> = NCIC_COLUMNS
                        .windows(2)
                        .map(|w| cut(&chars, w[0], w[1]))
                        .collect();
                    ncic_entry(&fields)
                }
            }
            ListFormat::NcicCsv => {
                let fields = split_csv(line, ',');
                if fields.len() < 5 {
                    Err(format!(
                        "{} columns; the NCIC CSV has 12 (at least through the plate state)",
                        fields.len()
                    ))
                } else if fields.len() > 12 {
                    Err(format!("{} columns; the NCIC CSV has 12", fields.len()))
                } else {
                    ncic_entry(&fields)
                }
            }
            ListFormat::Delimited => {
                let (delimiter, plate_at, state_at, note_at) =
                    columns.unwrap_or((',', 0, None, None));
                let fields = split_csv(line, delimiter);
                match fields.get(plate_at) {
                    None => Err(format!(
                        "{} columns; the plate is in column {}",
                        fields.len(),
                        plate_at + 1
                    )),
                    Some(p) => plate(p).and_then(|plate| {
                        let plate_state = match state_at.and_then(|i| fields.get(i)) {
                            Some(s) => state_code(s)?,
                            None => None,
                        };
                        Ok(ListEntry {
                            plate,
                            plate_state,
                            note: note_at
                                .and_then(|i| fields.get(i))
                                .map(|n| n.trim().chars().take(200).collect::<String>())
                                .filter(|n| !n.is_empty()),
                            ..Default::default()
                        })
                    }),
                }
            }
            ListFormat::Plain => {
                let t = line.trim();
                plate(t).map(|plate| ListEntry {
                    plate,
                    ..Default::default()
                })
            }
        };
        match entry {
            Ok(entry) => {
                let key = (entry.plate.clone(), entry.plate_state.clone());
                if let Some(first) = seen.get(&key) {
                    out.skip(number, format!("duplicate of line {first}"));
                } else {
                    seen.insert(key, number);
                    out.entries.push(entry);
                }
            }
            Err(reason) => out.skip(number, reason),
        }
    }
    out
}

/// Splits one delimited line; fields may be double-quoted.
fn split_csv(line: &str, delimiter: char) -> Vec<String> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .delimiter(delimiter as u8)
        .flexible(true)
        .from_reader(line.as_bytes());
    match reader.records().next() {
        Some(Ok(record)) => record.iter().map(str::to_string).collect(),
        _ => line.split(delimiter).map(str::to_string).collect(),
    }
}

const PLATE_NAMES: &[&str] = &[
    "plate",
    "plate_number",
    "platenumber",
    "plate_no",
    "plate number",
    "license",
    "license_plate",
    "licenseplate",
    "license plate",
    "lic",
    "tag",
    "tag_number",
    "vrm",
    "registration",
];
const STATE_NAMES: &[&str] = &[
    "state",
    "plate_state",
    "platestate",
    "plate state",
    "st",
    "lic_state",
    "tag_state",
    "jurisdiction",
];
const NOTE_NAMES: &[&str] = &[
    "note",
    "notes",
    "reason",
    "description",
    "comment",
    "remarks",
];

/// The delimiter and the (plate, state, note) column indexes from a header line.
fn delimited_columns(
    header: &str,
    options: &DelimitedOptions,
) -> Result<(char, usize, Option<usize>, Option<usize>), String> {
    let delimiter = match options.delimiter {
        Some(d) => {
            if ![';', ',', ':', '\t', '|'].contains(&d) {
                return Err(format!("delimiter {d:?} is not one of ; , : | or tab"));
            }
            d
        }
        None => [';', '\t', '|', ',', ':']
            .into_iter()
            .max_by_key(|d| header.matches(*d).count())
            .filter(|d| header.contains(*d))
            .unwrap_or(','),
    };
    let names: Vec<String> = split_csv(header, delimiter)
        .iter()
        .map(|n| n.trim().trim_matches('"').to_ascii_lowercase())
        .collect();
    let find = |given: &Option<String>, defaults: &[&str]| -> Result<Option<usize>, String> {
        match given {
            Some(name) => names
                .iter()
                .position(|n| n == &name.to_ascii_lowercase())
                .map(Some)
                .ok_or_else(|| {
                    format!(
                        "header has no column {name:?} (columns: {})",
                        names.join(", ")
                    )
                }),
            None => Ok(names.iter().position(|n| defaults.contains(&n.as_str()))),
        }
    };
    let plate = find(&options.plate_column, PLATE_NAMES)?.ok_or_else(|| {
        format!(
            "header has no plate column (columns: {}); name it with plate_column",
            names.join(", ")
        )
    })?;
    Ok((
        delimiter,
        plate,
        find(&options.state_column, STATE_NAMES)?,
        find(&options.note_column, NOTE_NAMES)?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fixed-width record from its fields (padded to the extract's columns).
    fn ncic_line(fields: &[&str]) -> String {
        let widths = [10, 9, 8, 10, 2, 4, 2, 4, 4, 3, 2, 7];
        fields
            .iter()
            .zip(widths)
            .map(|(f, w)| format!("{f:<w$}"))
            .collect::<String>()
    }

    #[test]
    fn the_fixed_width_extract_with_messy_lines_imports_exactly_what_it_should() {
        let header = "NIC       ORI      DATE    PLATE     STPYR PTVYR MAKEMODSTCOLOR";
        let lines = [
            header.to_string(),
            ncic_line(&[
                "V123456789",
                "MA0130100",
                "20260115",
                "ABC1234",
                "MA",
                "2026",
                "PC",
                "2019",
                "TOYT",
                "CAM",
                "4D",
                "BLK",
            ]),
            ncic_line(&[
                "P000000001",
                "MA0130100",
                "20260116",
                "7tx-419",
                "0H",
                "2025",
                "PC",
            ])
            .trim_end()
            .to_string(),
            ncic_line(&["F000000002", "NY0300000", "20260117", "XYZ 999", "NY"])
                .trim_end()
                .to_string(),
            String::new(),
            "# a comment".into(),
            ncic_line(&[
                "W000000003",
                "CT0000000",
                "20260118",
                "GHI789",
                "CT",
                "2024",
                "PC",
                "2020",
                "FORD",
                "F15",
                "PK",
                "WHI/BLU",
            ]),
            ncic_line(&["V123456789", "MA0130100", "20260115", "ABC1234", "MA"]), // duplicate
            ncic_line(&["Z000000004", "MA0130100", "20260119", "JKL012", "MA"]),  // unknown type
            ncic_line(&["V000000005", "MA0130100", "20261345", "MNO345", "MA"]),  // bad date
            "V00000000 SHORT".into(),
            ncic_line(&["V000000006", "MA0130100", "20260120", "", "MA"]), // no plate
            "END OF FILE 7 RECORDS".into(),
        ];
        let text = lines.join("\r\n");
        let parsed = parse(ListFormat::Ncic, &text, &DelimitedOptions::default());
        let plates: Vec<&str> = parsed.entries.iter().map(|e| e.plate.as_str()).collect();
        assert_eq!(plates, ["ABC1234", "7TX419", "XYZ999", "GHI789"]);
        assert_eq!(
            parsed.entries[1].plate_state.as_deref(),
            Some("OH"),
            "0H read as OH"
        );
        assert_eq!(
            parsed.entries[0].list_type.as_deref(),
            Some("stolen_vehicle")
        );
        assert_eq!(parsed.entries[0].make.as_deref(), Some("TOYT"));
        assert_eq!(parsed.entries[0].colour.as_deref(), Some("BLK"));
        assert_eq!(parsed.entries[0].entered_on.as_deref(), Some("2026-01-15"));
        assert_eq!(parsed.entries[3].colour.as_deref(), Some("WHI/BLU"));
        assert_eq!(
            parsed.entries[2].list_type.as_deref(),
            Some("felony_vehicle")
        );
        let skipped: Vec<(u64, &str)> = parsed
            .skipped
            .iter()
            .map(|s| (s.line, s.reason.as_str()))
            .collect();
        assert_eq!(skipped.len(), 6, "{skipped:?}");
        assert_eq!(skipped[0], (8, "duplicate of line 2"));
        assert!(skipped[1].1.contains("not an NCIC LPR type"), "{skipped:?}");
        assert!(skipped[2].1.contains("YYYYMMDD"), "{skipped:?}");
        assert!(skipped[3].1.contains("at least 39"), "{skipped:?}");
        assert!(skipped[4].1.contains("no plate"), "{skipped:?}");
        assert_eq!(skipped[5], (13, "trailer record"));
        assert_eq!(parsed.lines, 9);
    }

    #[test]
    fn the_csv_extract_with_and_without_a_header() {
        let text = "NIC,ORI,DATE,PLATE,STATE,PYR,PTYPE,VYR,MAKE,MODEL,STYLE,COLOR\n\
                    V123456789,MA0130100,20260115,abc1234,ma,2026,PC,2019,TOYT,CAM,4D,BLK\n\
                    \"P000000001\",\"MA0130100\",\"20260116\",\"7TX 419\",\"0H\",,,,,,,\n\
                    A000000009,MA0130100,20260117,AMB3R1,MA\n\
                    V1,MA0130100,20260115,TOO,MA,1,2,3,4,5,6,7,8\n";
        let parsed = parse(ListFormat::NcicCsv, text, &DelimitedOptions::default());
        let plates: Vec<&str> = parsed.entries.iter().map(|e| e.plate.as_str()).collect();
        assert_eq!(plates, ["ABC1234", "7TX419", "AMB3R1"]);
        assert_eq!(parsed.entries[2].list_type.as_deref(), Some("amber_alert"));
        assert_eq!(parsed.entries[1].plate_state.as_deref(), Some("OH"));
        assert_eq!(parsed.skipped.len(), 1);
        assert_eq!(parsed.skipped[0].line, 5);
        let without = text.split_once('\n').unwrap().1;
        assert_eq!(
            parse(ListFormat::NcicCsv, without, &DelimitedOptions::default())
                .entries
                .len(),
            3
        );
    }

    #[test]
    fn delimited_files_find_their_columns_with_any_delimiter() {
        for delimiter in [';', ',', ':', '\t'] {
            let d = delimiter.to_string();
            let text = [
                "Case;Tag;St;Reason",
                "C-1;ab-123;ma;stolen",
                "C-2; xy 9;ny;",
                "C-3;;ma;none",
                "C-4;AB123;MA;dup",
            ]
            .iter()
            .map(|l| l.replace(';', &d))
            .collect::<Vec<_>>()
            .join("\n");
            let parsed = parse(ListFormat::Delimited, &text, &DelimitedOptions::default());
            let plates: Vec<&str> = parsed.entries.iter().map(|e| e.plate.as_str()).collect();
            assert_eq!(plates, ["AB123", "XY9"], "delimiter {delimiter:?}");
            assert_eq!(parsed.entries[0].note.as_deref(), Some("stolen"));
            assert_eq!(parsed.skipped.len(), 2, "{:?}", parsed.skipped);
        }
        let mapped = parse(
            ListFormat::Delimited,
            "id|vehicle|where\n1|QQQ111|RI\n",
            &DelimitedOptions {
                delimiter: Some('|'),
                plate_column: Some("vehicle".into()),
                state_column: Some("where".into()),
                note_column: None,
            },
        );
        assert_eq!(mapped.entries[0].plate, "QQQ111");
        assert_eq!(mapped.entries[0].plate_state.as_deref(), Some("RI"));
        let no_plate = parse(
            ListFormat::Delimited,
            "a,b\n1,2\n",
            &DelimitedOptions::default(),
        );
        assert!(no_plate.entries.is_empty());
        assert!(no_plate.skipped[0].reason.contains("no plate column"));
    }

    #[test]
    fn plain_lists_normalise_and_report() {
        let text = "abc123\r\n\r\n# watch\r\nABC-123\r\n  7tx 419 \r\n!!!\r\nTHISISWAYTOOLONG1\r\n";
        let parsed = parse(ListFormat::Plain, text, &DelimitedOptions::default());
        let plates: Vec<&str> = parsed.entries.iter().map(|e| e.plate.as_str()).collect();
        assert_eq!(plates, ["ABC123", "7TX419"]);
        let lines: Vec<u64> = parsed.skipped.iter().map(|s| s.line).collect();
        assert_eq!(lines, [4, 6, 7]);
        assert_eq!(parsed.skipped[0].reason, "duplicate of line 1");
    }
}
