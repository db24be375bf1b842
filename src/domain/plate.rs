//! Plate text: normalization to the canonical form stored and searched (A-Z, 0-9), and
//! wildcard patterns (`*` any run, `?` one character) used by plate searches.

/// Upper-cases and keeps only A-Z and 0-9: "abc-123 " becomes "ABC123".
/// Returns `None` when nothing plate-like is left.
pub fn normalize_plate(raw: &str) -> Option<String> {
    let plate: String = raw
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_uppercase())
        .collect();
    if plate.is_empty() || plate.len() > 12 {
        None
    } else {
        Some(plate)
    }
}

/// A plate search pattern: exact text or a wildcard pattern over normalized plates.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum PlatePattern {
    Exact(String),
    Wildcard(String),
}

impl PlatePattern {
    /// Parses what a user typed. Separators are dropped; `*` and `?` make it a wildcard.
    pub fn parse(input: &str) -> Result<Self, String> {
        let cleaned: String = input
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || *c == '*' || *c == '?')
            .map(|c| c.to_ascii_uppercase())
            .collect();
        if cleaned.is_empty() {
            return Err(format!(
                "plate pattern {input:?} has no letters, digits or wildcards"
            ));
        }
        if cleaned.len() > 16 {
            return Err(format!(
                "plate pattern {input:?} is longer than 16 characters"
            ));
        }
        if cleaned.contains(['*', '?']) {
            let literal = cleaned
                .chars()
                .filter(|c| c.is_ascii_alphanumeric())
                .count();
            if literal < 2 {
                return Err(format!(
                    "wildcard plate pattern {input:?} needs at least 2 known characters"
                ));
            }
            Ok(Self::Wildcard(cleaned))
        } else {
            Ok(Self::Exact(cleaned))
        }
    }

    /// The literal characters before the first wildcard: the index prefix to scan.
    pub fn literal_prefix(&self) -> &str {
        match self {
            Self::Exact(p) => p,
            Self::Wildcard(p) => {
                let end = p.find(['*', '?']).unwrap_or(p.len());
                &p[..end]
            }
        }
    }

    /// Whether a normalized plate matches this pattern.
    pub fn matches(&self, plate: &str) -> bool {
        match self {
            Self::Exact(p) => p == plate,
            Self::Wildcard(p) => glob_match(p.as_bytes(), plate.as_bytes()),
        }
    }
}

/// Iterative glob matching with `*` and `?` (no recursion, linear in practice).
fn glob_match(pattern: &[u8], text: &[u8]) -> bool {
    let (mut p, mut t) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        if p < pattern.len() && (pattern[p] == b'?' || pattern[p] == text[t]) {
            p += 1;
            t += 1;
        } else if p < pattern.len() && pattern[p] == b'*' {
            star = Some((p, t));
            p += 1;
        } else if let Some((sp, st)) = star {
            p = sp + 1;
            t = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    while p < pattern.len() && pattern[p] == b'*' {
        p += 1;
    }
    p == pattern.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalization_drops_separators_and_lowercase() {
        assert_eq!(normalize_plate(" abc-12 3").as_deref(), Some("ABC123"));
        assert_eq!(normalize_plate("--"), None);
    }

    #[test]
    fn wildcards_match_like_a_user_expects() {
        let p = PlatePattern::parse("ab?12*").unwrap();
        assert!(p.matches("ABC12"));
        assert!(p.matches("ABX1299"));
        assert!(!p.matches("AB12"));
        assert_eq!(p.literal_prefix(), "AB");
        let p = PlatePattern::parse("*123").unwrap();
        assert!(p.matches("XYZ123"));
        assert!(!p.matches("XYZ1234"));
        assert!(PlatePattern::parse("*").is_err());
        assert_eq!(
            PlatePattern::parse("abc 123").unwrap(),
            PlatePattern::Exact("ABC123".into())
        );
    }
}
