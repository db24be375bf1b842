//! The reason a search is allowed: the policy's "specific and articulable facts" standard.

use serde::{Deserialize, Serialize};

/// The purposes the policy allows (Standard of Use).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Purpose {
    CriminalInvestigation,
    DepartmentCivilInvestigation,
    CourtOrder,
    SafetyConcern,
    Wrongdoing,
}

/// Minimum length of the free-text facts: a reason, not a word.
pub const MIN_FACTS_CHARS: usize = 20;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Justification {
    pub purpose: Purpose,
    /// Case or incident number.
    pub case_number: String,
    /// Specific and articulable facts, in free text.
    pub facts: String,
}

impl Justification {
    /// Checks that the case number and facts are present and meaningful.
    pub fn validate(&self) -> Result<(), String> {
        let case = self.case_number.trim();
        if case.is_empty() {
            return Err("justification.case_number is required".into());
        }
        if case.len() > 64
            || !case
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '/' | '.' | ' '))
        {
            return Err(
                "justification.case_number must be up to 64 letters, digits, or - _ / . characters"
                    .into(),
            );
        }
        if self.facts.trim().chars().count() < MIN_FACTS_CHARS {
            return Err(format!(
                "justification.facts must state specific and articulable facts (at least {MIN_FACTS_CHARS} characters)"
            ));
        }
        Ok(())
    }
}
