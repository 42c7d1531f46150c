//! Comparisons measured in rounds: every target in turn, [`ROUNDS`] times over, each ratio the
//! median of its rounds' ratios. The machine's speed drifts (other tenants share its host) by
//! a third within minutes; a drift then falls on every target alike instead of on whichever
//! ran while it lasted.

/// Times every target of a comparison is measured, in turn.
pub const ROUNDS: u64 = 3;

/// The seconds of each load in each round: `seconds` in all, over the rounds, and at least
/// two (the first second of each run is left out of its CPU window).
pub fn round_seconds(seconds: u64) -> u64 {
    seconds.div_ceil(ROUNDS).max(2)
}

/// The median over `rounds` of `figure`, and its value in each round in round order, as text
/// with `decimals` decimals; `None` when a round lacks the figure.
pub fn median<R>(
    rounds: &[R],
    decimals: usize,
    figure: impl Fn(&R) -> Option<f64>,
) -> Option<(f64, String)> {
    let values = rounds.iter().map(figure).collect::<Option<Vec<f64>>>()?;
    let listed = values
        .iter()
        .map(|v| format!("{v:.decimals$}"))
        .collect::<Vec<_>>()
        .join(", ");
    let mut sorted = values;
    sorted.sort_by(f64::total_cmp);
    Some((*sorted.get(sorted.len() / 2)?, listed))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_measurement_time_is_shared_by_the_rounds() {
        assert_eq!(round_seconds(10), 4);
        assert_eq!(round_seconds(9), 3);
        assert_eq!(round_seconds(1), 2);
    }

    #[test]
    fn the_median_is_the_middle_round_in_order_of_value() {
        let rounds = [37.9, 29.5, 31.7];
        assert_eq!(
            median(&rounds, 1, |v| Some(*v)),
            Some((31.7, "37.9, 29.5, 31.7".to_owned()))
        );
        assert_eq!(
            median(&[0.754, 0.8], 2, |v| Some(*v)),
            Some((0.8, "0.75, 0.80".to_owned()))
        );
        assert_eq!(median(&rounds, 1, |_| None), None);
        assert_eq!(median(&[] as &[f64], 1, |v| Some(*v)), None);
    }
}
