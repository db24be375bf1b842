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
    /// A problem with the whole file (no header, no plate column, a bad option): nothing in it
    /// can be imported.
    pub error: Option<String>,
}

impl ParsedList {
    fn skip(&mut self, line: u64, reason: impl Into<String>) {
        self.skipped.push(SkippedLine {
            line,
            reason: reason.into(),
        });
    }
}

/// Lines that carry no data: blank, or comments starting with `#` or `//`.
fn is_ignorable(line: &str) -> bool {
    let t = line.trim();
    t.is_empty() || t.starts_with('#') || t.starts_with("//")
}

/// A list file's text: UTF-8 (with or without a byte-order mark), UTF-16 with a byte-order
/// mark, or else Latin-1 (every byte a character), as old exports are.
pub fn decode_text(bytes: &[u8]) -> String {
    if let Some(rest) = bytes.strip_prefix(&[0xEF, 0xBB, 0xBF]) {
        return String::from_utf8_lossy(rest).into_owned();
    }
    let utf16 = |rest: &[u8], little: bool| -> String {
        let units: Vec<u16> = rest
            .chunks_exact(2)
            .map(|c| {
                if little {
                    u16::from_le_bytes([c[0], c[1]])
                } else {
                    u16::from_be_bytes([c[0], c[1]])
                }
            })
            .collect();
        String::from_utf16_lossy(&units)
    };
    if let Some(rest) = bytes.strip_prefix(&[0xFF, 0xFE]) {
        return utf16(rest, true);
    }
    if let Some(rest) = bytes.strip_prefix(&[0xFE, 0xFF]) {
        return utf16(rest, false);
    }
    match std::str::from_utf8(bytes) {
        Ok(text) => text.to_string(),
        Err(_) => bytes.iter().map(|b| *b as char).collect(),
    }
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
    let t: String = text
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect::<String>()
        .to_ascii_uppercase();
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
        .map_err(|_| format!("date {t:?} is not a valid date (YYYYMMDD)"))
}

/// A year field (`2026`, or `26`), when present.
fn year(label: &str, text: &str) -> Result<Option<String>, String> {
    let t = text.trim();
    if t.is_empty() {
        return Ok(None);
    }
    if (t.len() == 4 || t.len() == 2) && t.chars().all(|c| c.is_ascii_digit()) {
        Ok(Some(t.to_string()))
    } else {
        Err(format!(
            "{label} {t:?} is not a year: the columns may be shifted"
        ))
    }
}

/// A listed plate: letters and digits, with spaces, dashes and dots dropped. Anything else
/// (another field, a note, a letter outside A-Z) refuses the line rather than being merged in.
fn plate(text: &str) -> Result<String, String> {
    let t = text.trim();
    if t.is_empty() {
        return Err("no plate".into());
    }
    if let Some(bad) = t
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, ' ' | '-' | '.')))
    {
        return Err(format!(
            "plate {t:?} contains {bad:?}: a plate is A-Z and 0-9 (spaces and dashes allowed)"
        ));
    }
    normalize_plate(t)
        .ok_or_else(|| format!("plate {t:?} is not a plate (1-12 letters and digits)"))
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
        plate_year: year("plate year", get(5))?,
        plate_type: field(get(6)),
        vehicle_year: year("vehicle year", get(7))?,
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

/// One record of the fixed-width extract.
fn ncic_fixed(line: &str) -> Result<ListEntry, String> {
    let chars: Vec<char> = line.trim_end().chars().collect();
    if chars.len() < NCIC_MIN_CHARS {
        return Err(format!(
            "record is {} characters; the fixed-width extract needs at least {NCIC_MIN_CHARS} (through the plate state)",
            chars.len()
        ));
    }
    let fields: Vec<String> = NCIC_COLUMNS
        .windows(2)
        .map(|w| cut(&chars, w[0], w[1]))
        .collect();
    ncic_entry(&fields)
}

/// One row of the CSV extract (12 columns; trailing empty columns tolerated).
fn ncic_csv(line: &str) -> Result<ListEntry, String> {
    let mut fields = split_csv(line, ',');
    while fields.len() > 12 && fields.last().is_some_and(|f| f.trim().is_empty()) {
        fields.pop();
    }
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

/// A plain list's plate, after any inline comment (` # ...`, ` // ...`).
fn plain_entry(line: &str) -> Result<ListEntry, String> {
    let mut t = line;
    for marker in [" #", "\t#", " //", "\t//"] {
        if let Some(at) = t.find(marker) {
            t = &t[..at];
        }
    }
    plate(t).map(|plate| ListEntry {
        plate,
        ..Default::default()
    })
}

/// Parses `text` in `format`. Duplicates (same plate and state) keep the first occurrence.
pub fn parse(format: ListFormat, text: &str, options: &DelimitedOptions) -> ParsedList {
    let mut out = ParsedList::default();
    let mut seen: HashMap<(String, Option<String>), u64> = HashMap::new();
    // CRLF, LF and old-Mac CR line ends alike.
    let text = text.replace("\r\n", "\n").replace('\r', "\n");
    let numbered: Vec<(u64, &str)> = text
        .split('\n')
        .map(|l| l.trim_start_matches('\u{feff}'))
        .enumerate()
        .map(|(i, l)| (i as u64 + 1, l))
        .filter(|(_, l)| !l.trim().is_empty())
        .collect();
    let mut rest: &[(u64, &str)] = &numbered;
    let mut columns: Option<(char, usize, Option<usize>, Option<usize>)> = None;
    match format {
        ListFormat::Ncic | ListFormat::NcicCsv => {
            // One header line, unless the first line is itself a record.
            if let Some(at) = rest.iter().position(|(_, l)| !is_ignorable(l)) {
                let first = rest[at].1;
                let is_record = match format {
                    ListFormat::Ncic => ncic_fixed(first).is_ok(),
                    _ => ncic_csv(first).is_ok(),
                };
                if !is_record {
                    rest = &rest[at + 1..];
                }
            }
        }
        ListFormat::Delimited => {
            // The header is the first line naming a plate column (it may start with `#`);
            // comment lines before it are skipped.
            let mut found = None;
            let mut problem = None;
            for (i, (number, line)) in rest.iter().enumerate() {
                let candidate = line
                    .trim()
                    .trim_start_matches('#')
                    .trim_start_matches("//")
                    .trim();
                match delimited_columns(candidate, options) {
                    Ok(c) => {
                        found = Some((i, c));
                        break;
                    }
                    Err(reason) => {
                        if problem.is_none() || !is_ignorable(line) {
                            problem = Some(format!("line {number}: {reason}"));
                        }
                        if !is_ignorable(line) {
                            break;
                        }
                    }
                }
            }
            match found {
                Some((i, c)) => {
                    columns = Some(c);
                    rest = &rest[i + 1..];
                }
                None => {
                    out.error =
                        Some(problem.unwrap_or_else(|| "the file has no header line".into()));
                    return out;
                }
            }
        }
        ListFormat::Plain => {}
    }
    for &(number, line) in rest {
        if is_ignorable(line) {
            continue;
        }
        out.lines += 1;
        let entry = match format {
            ListFormat::Ncic => ncic_fixed(line),
            ListFormat::NcicCsv => ncic_csv(line),
            ListFormat::Delimited => {
                let (delimiter, plate_at, state_at, note_at) =
                    columns.unwrap_or((',', 0, None, None));
                delimited_entry(line, delimiter, plate_at, state_at, note_at)
            }
            ListFormat::Plain => {
                if is_trailer(line) && line.split_whitespace().count() >= 3 {
                    Err("trailer record".to_string())
                } else {
                    plain_entry(line)
                }
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
            // A line that is not a record and reads like an end marker is a trailer.
            Err(_) if is_trailer(line) => out.skip(number, "trailer record"),
            Err(reason) => out.skip(number, reason),
        }
    }
    out
}

/// One row of a delimited file.
fn delimited_entry(
    line: &str,
    delimiter: char,
    plate_at: usize,
    state_at: Option<usize>,
    note_at: Option<usize>,
) -> Result<ListEntry, String> {
    let fields = split_csv(line, delimiter);
    let Some(p) = fields.get(plate_at) else {
        return Err(format!(
            "{} columns; the plate is in column {}",
            fields.len(),
            plate_at + 1
        ));
    };
    let plate = plate(p)?;
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

/// Header names (letters and digits only, lower case) taken as the plate, state and note.
const PLATE_NAMES: &[&str] = &[
    "plate",
    "platenumber",
    "plateno",
    "platenum",
    "license",
    "licenseplate",
    "licensenumber",
    "licenceplate",
    "lic",
    "licplate",
    "licno",
    "tag",
    "tagnumber",
    "tagno",
    "vrm",
    "registration",
    "regno",
    "lpn",
];
const STATE_NAMES: &[&str] = &[
    "state",
    "platestate",
    "st",
    "licstate",
    "licensestate",
    "tagstate",
    "jurisdiction",
    "province",
    "stateprovince",
];
const NOTE_NAMES: &[&str] = &[
    "note",
    "notes",
    "reason",
    "description",
    "comment",
    "comments",
    "remarks",
];

/// A header name compared without case, spaces or punctuation.
fn squeeze(name: &str) -> String {
    name.chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .collect::<String>()
        .to_ascii_lowercase()
}

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
        .map(|n| n.trim().trim_matches('"').to_string())
        .collect();
    let find = |given: &Option<String>, defaults: &[&str]| -> Result<Option<usize>, String> {
        match given {
            Some(name) => names
                .iter()
                .position(|n| squeeze(n) == squeeze(name))
                .map(Some)
                .ok_or_else(|| {
                    format!(
                        "header has no column {name:?} (columns: {})",
                        names.join(", ")
                    )
                }),
            None => Ok(names
                .iter()
                .position(|n| defaults.contains(&squeeze(n).as_str()))),
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
        assert_eq!(parsed.lines, 10, "data lines, the trailer included");
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
        assert!(no_plate.error.unwrap().contains("no plate column"));
    }

    /// What an adversarial review of messy real-world files found.
    #[test]
    fn nothing_is_merged_into_a_plate_and_no_data_line_vanishes() {
        let plain = parse(
            ListFormat::Plain,
            "ABC123 # stolen\nJKL012 // note\nPQR678,MA\n\u{c5}SE123\nEND 12\nTOTAL RECORDS 0000123\n",
            &DelimitedOptions::default(),
        );
        let plates: Vec<&str> = plain.entries.iter().map(|e| e.plate.as_str()).collect();
        assert_eq!(plates, ["ABC123", "JKL012", "END12"]);
        let reasons: Vec<&str> = plain.skipped.iter().map(|s| s.reason.as_str()).collect();
        assert!(reasons[0].contains("contains ','"), "{reasons:?}");
        assert!(reasons[1].contains("contains"), "{reasons:?}");
        assert_eq!(reasons[2], "trailer record");
        // A semicolon file whose rows start with an empty column; a header starting with '#'.
        let semi = parse(
            ListFormat::Delimited,
            "Case;Plate;State\n;XY 999;ny\n;;MA\n",
            &DelimitedOptions::default(),
        );
        assert_eq!(semi.entries.len(), 1);
        assert_eq!(semi.lines, 2);
        assert!(semi.skipped[0].reason.contains("no plate"));
        let hashed = parse(
            ListFormat::Delimited,
            "#plate,state\nabc123,ma\nEND 12,MA\n",
            &DelimitedOptions::default(),
        );
        let plates: Vec<&str> = hashed.entries.iter().map(|e| e.plate.as_str()).collect();
        assert_eq!(plates, ["ABC123", "END12"]);
        // Tag Number / Tag State headers; a state written with a space; CR-only line ends.
        let tags = parse(
            ListFormat::Delimited,
            "Tag Number,Tag State\rQQQ111, N Y\r",
            &DelimitedOptions::default(),
        );
        assert_eq!(tags.entries[0].plate_state.as_deref(), Some("NY"));
        // A headerless fixed-width extract keeps its first record.
        let record = ncic_line(&["V000000001", "FL0000000", "20260101", "FLORIDA1", "FL"]);
        let headerless = parse(ListFormat::Ncic, &record, &DelimitedOptions::default());
        assert_eq!(headerless.entries.len(), 1);
        // Trailing empty CSV columns are tolerated.
        let csv = parse(
            ListFormat::NcicCsv,
            "V000000001,MA0130100,20260101,ABC123,MA,2026,PC,2019,TOYT,CAM,4D,BLK,\n",
            &DelimitedOptions::default(),
        );
        assert_eq!(csv.entries.len(), 1, "{:?}", csv.skipped);
        // Latin-1 and UTF-16 files decode; a letter outside A-Z is refused, not dropped.
        let latin1 = decode_text(b"\xc9T\xc9123\nABC123\n");
        let parsed = parse(ListFormat::Plain, &latin1, &DelimitedOptions::default());
        assert_eq!(parsed.entries.len(), 1);
        assert!(parsed.skipped[0].reason.contains("contains"));
        let mut utf16 = vec![0xFF, 0xFE];
        for unit in "ABC123\r\n".encode_utf16() {
            utf16.extend_from_slice(&unit.to_le_bytes());
        }
        assert_eq!(
            parse(
                ListFormat::Plain,
                &decode_text(&utf16),
                &DelimitedOptions::default()
            )
            .entries
            .len(),
            1
        );
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
