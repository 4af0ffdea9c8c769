//! Text that fits its box: a line wider than the room it has is set smaller, down to a
//! legible minimum, and past that wrapped onto more lines, so nothing runs off a label.
//!
//! Widths are the base fonts' advance widths (Helvetica, from its AFM; bold is taken a little
//! wider than it is, so estimates never fall short); text in the embedded Unicode font is set
//! full-width.

/// Helvetica's advance widths of ASCII 32 (space) to 126 (`~`), in 1/1000 em.
const HELVETICA: [u16; 95] = [
    278, 278, 355, 556, 556, 889, 667, 191, 333, 333, 389, 584, 278, 333, 278, 278, // ' '../
    556, 556, 556, 556, 556, 556, 556, 556, 556, 556, // 0..9
    278, 278, 584, 584, 584, 556, 1015, // : ; < = > ? @
    667, 667, 722, 722, 667, 611, 778, 722, 278, 500, 667, 556, 833, // A..M
    722, 778, 667, 778, 722, 667, 611, 722, 667, 944, 667, 667, 611, // N..Z
    278, 278, 278, 469, 556, 333, // [ \ ] ^ _ `
    556, 556, 500, 556, 556, 278, 556, 556, 222, 222, 500, 222, 833, // a..m
    556, 556, 556, 556, 333, 500, 278, 556, 500, 722, 500, 500, 500, // n..z
    334, 260, 334, 584, // { | } ~
];

/// The smallest size text is set at before it is wrapped instead.
pub const MIN_SIZE_PT: f32 = 4.5;

/// Width of `s` at `size` points.
pub fn width_pt(s: &str, size: f32, bold: bool) -> f32 {
    let units: u32 = s
        .chars()
        .map(|c| {
            let base = match c {
                ' '..='~' => u32::from(HELVETICA[c as usize - 32]),
                // Accented Latin letters and the rest of WinAnsi: as wide as the widest capitals.
                '\u{a0}'..='\u{ff}' => 722,
                _ if super::render::win_ansi(&c.to_string()) => 722,
                // The embedded Unicode font (CJK) is full-width.
                _ => 1000,
            };
            if bold { base + 56 } else { base }
        })
        .sum();
    units as f32 * size / 1000.0
}

/// `line` set to fit `room` points: itself at `size` when it fits, smaller when that is enough,
/// else wrapped at [`MIN_SIZE_PT`] (at word boundaries where it can, anywhere where it must).
pub fn fit(line: &str, size: f32, room: f32, bold: bool) -> Vec<(String, f32)> {
    let width = width_pt(line, size, bold);
    if width <= room {
        return vec![(line.to_owned(), size)];
    }
    let smaller = size * room / width;
    if smaller >= MIN_SIZE_PT.min(size) {
        return vec![(line.to_owned(), smaller)];
    }
    let size = MIN_SIZE_PT.min(size);
    let mut lines: Vec<String> = Vec::new();
    let mut current = String::new();
    for word in line.split_inclusive(' ') {
        let candidate = format!("{current}{word}");
        if width_pt(candidate.trim_end(), size, bold) <= room {
            current = candidate;
            continue;
        }
        if !current.is_empty() {
            lines.push(std::mem::take(&mut current).trim_end().to_owned());
        }
        // A word wider than the room is cut where it must be.
        for c in word.chars() {
            if !current.is_empty() && width_pt(&format!("{current}{c}"), size, bold) > room {
                lines.push(std::mem::take(&mut current));
            }
            current.push(c);
        }
    }
    if !current.trim().is_empty() {
        lines.push(current.trim_end().to_owned());
    }
    lines.into_iter().map(|l| (l, size)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_that_fit_stay_lines_that_do_not_shrink_or_wrap() {
        assert_eq!(width_pt("AAAA", 10.0, false), 4.0 * 6.67);
        assert_eq!(
            fit("SHORT", 11.0, 200.0, true),
            vec![("SHORT".to_owned(), 11.0)]
        );
        // The channel that ran off a 4x6 label: smaller, on one line, within its room.
        let channel = fit("SANDBOX_LINEHAUL_US", 11.0, 110.0, true);
        assert_eq!(channel.len(), 1);
        assert!(channel[0].1 < 11.0 && channel[0].1 >= MIN_SIZE_PT);
        assert!(width_pt(&channel[0].0, channel[0].1, true) <= 110.0 + 0.01);
        // Far too long: wrapped at the minimum size, every line within the room, nothing lost.
        let long = "W".repeat(40) + " " + &"x".repeat(150);
        let lines = fit(&long, 11.0, 100.0, false);
        assert!(lines.len() > 2, "{lines:?}");
        for (l, size) in &lines {
            assert_eq!(*size, MIN_SIZE_PT);
            assert!(width_pt(l, *size, false) <= 100.0 + 0.01, "{l}");
        }
        let joined: String = lines.iter().map(|(l, _)| l.as_str()).collect();
        assert_eq!(joined.replace(' ', ""), long.replace(' ', ""));
    }
}
