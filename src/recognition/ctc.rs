//! Decoding the reader's per-step class probabilities (CTC, class 0 = blank) into plate text:
//! greedy decoding with per-character confidence, and prefix beam search for alternates.

use std::collections::HashMap;

/// The greedy decoding of one plate.
#[derive(Debug, Clone, PartialEq)]
pub struct Decoded {
    pub text: String,
    /// For each character: the highest probability among the steps that emitted it.
    pub char_confidences: Vec<f32>,
    /// Product of the character confidences (0 for an empty text).
    pub confidence: f32,
}

/// Greedy CTC: argmax per step, collapse repeats, drop blanks.
/// `probs` is `steps x classes`, row-major; `alphabet[i]` is class `i + 1`.
pub fn greedy(probs: &[f32], classes: usize, alphabet: &[char]) -> Decoded {
    let mut text = String::new();
    let mut confidences: Vec<f32> = Vec::new();
    let mut previous = 0usize;
    for step in probs.chunks_exact(classes) {
        let (best, p) = argmax(step);
        if best != 0 && best == previous {
            if let Some(last) = confidences.last_mut() {
                *last = last.max(p);
            }
        } else if best != 0
            && let Some(c) = alphabet.get(best - 1)
        {
            text.push(*c);
            confidences.push(p);
        }
        previous = best;
    }
    let confidence = if confidences.is_empty() {
        0.0
    } else {
        confidences.iter().product()
    };
    Decoded {
        text,
        char_confidences: confidences,
        confidence,
    }
}

fn argmax(step: &[f32]) -> (usize, f32) {
    let mut best = (0usize, f32::MIN);
    for (i, p) in step.iter().enumerate() {
        if *p > best.1 {
            best = (i, *p);
        }
    }
    best
}

/// CTC prefix beam search: the `top_k` most probable texts with their probabilities,
/// most probable first.
pub fn beam_search(
    probs: &[f32],
    classes: usize,
    alphabet: &[char],
    beam: usize,
    top_k: usize,
) -> Vec<(String, f32)> {
    // prefix -> (probability ending in blank, probability ending in non-blank)
    let mut beams: HashMap<Vec<usize>, (f32, f32)> = HashMap::from([(Vec::new(), (1.0, 0.0))]);
    for step in probs.chunks_exact(classes) {
        // Only classes with a meaningful probability are worth extending.
        let candidates: Vec<usize> = (0..classes).filter(|c| step[*c] > 1e-3).collect();
        let mut next: HashMap<Vec<usize>, (f32, f32)> = HashMap::new();
        for (prefix, (p_blank, p_char)) in &beams {
            let total = p_blank + p_char;
            for &c in &candidates {
                let p = step[c];
                if c == 0 {
                    next.entry(prefix.clone()).or_default().0 += total * p;
                    continue;
                }
                let last = prefix.last().copied();
                let mut extended = prefix.clone();
                extended.push(c);
                if last == Some(c) {
                    // Repeat without a blank between collapses into the same prefix.
                    next.entry(prefix.clone()).or_default().1 += p_char * p;
                    next.entry(extended).or_default().1 += p_blank * p;
                } else {
                    next.entry(extended).or_default().1 += total * p;
                }
            }
        }
        let mut ranked: Vec<_> = next.into_iter().collect();
        ranked.sort_by(|a, b| (b.1.0 + b.1.1).total_cmp(&(a.1.0 + a.1.1)));
        ranked.truncate(beam.max(1));
        beams = ranked.into_iter().collect();
    }
    let mut ranked: Vec<(String, f32)> = beams
        .into_iter()
        .filter(|(prefix, _)| !prefix.is_empty())
        .map(|(prefix, (b, c))| {
            let text = prefix.iter().filter_map(|i| alphabet.get(i - 1)).collect();
            (text, b + c)
        })
        .collect();
    ranked.sort_by(|a, b| b.1.total_cmp(&a.1));
    ranked.truncate(top_k);
    ranked
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALPHABET: [char; 3] = ['A', 'B', 'C'];

    fn row(p: [f32; 4]) -> Vec<f32> {
        p.to_vec()
    }

    #[test]
    fn greedy_collapses_repeats_and_blanks() {
        // A A blank A B B -> "AAB"
        let probs: Vec<f32> = [
            row([0.1, 0.9, 0.0, 0.0]),
            row([0.2, 0.8, 0.0, 0.0]),
            row([0.9, 0.1, 0.0, 0.0]),
            row([0.3, 0.7, 0.0, 0.0]),
            row([0.4, 0.0, 0.6, 0.0]),
            row([0.1, 0.0, 0.9, 0.0]),
        ]
        .concat();
        let d = greedy(&probs, 4, &ALPHABET);
        assert_eq!(d.text, "AAB");
        assert_eq!(d.char_confidences, vec![0.9, 0.7, 0.9]);
        assert!((d.confidence - 0.9 * 0.7 * 0.9).abs() < 1e-6);
    }

    #[test]
    fn beam_search_offers_the_runner_up_as_an_alternate() {
        let probs: Vec<f32> = [row([0.0, 0.6, 0.4, 0.0]), row([0.9, 0.05, 0.05, 0.0])].concat();
        let top = beam_search(&probs, 4, &ALPHABET, 8, 3);
        assert_eq!(top[0].0, "A");
        assert_eq!(top[1].0, "B");
        assert!(top[0].1 > top[1].1);
    }
}
