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

/// The median of a figure's values over the rounds, and the values in round order as text
/// (one decimal); `None` without values.
pub fn median(values: &[f64]) -> Option<(f64, String)> {
    let listed = values
        .iter()
        .map(|v| format!("{v:.1}"))
        .collect::<Vec<_>>()
        .join(", ");
    let mut sorted = values.to_vec();
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
        assert_eq!(
            median(&[37.9, 29.5, 31.7]),
            Some((31.7, "37.9, 29.5, 31.7".to_owned()))
        );
        assert_eq!(median(&[]), None);
    }
}
