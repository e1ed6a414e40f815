//! Amounts as Kenyan customers read them on M-Pesa messages: `KES 1,250`.

/// `KES` and whole shillings with comma thousands separators, the same in both languages.
pub fn format_kes(shillings: u64) -> String {
    let digits = shillings.to_string();
    let mut grouped = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            grouped.push(',');
        }
        grouped.push(digit);
    }
    format!("KES {grouped}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn groups_thousands_with_commas() {
        assert_eq!(format_kes(0), "KES 0");
        assert_eq!(format_kes(5), "KES 5");
        assert_eq!(format_kes(999), "KES 999");
        assert_eq!(format_kes(1_000), "KES 1,000");
        assert_eq!(format_kes(1_250), "KES 1,250");
        assert_eq!(format_kes(250_000), "KES 250,000");
        assert_eq!(format_kes(1_000_000), "KES 1,000,000");
        assert_eq!(format_kes(u64::MAX), "KES 18,446,744,073,709,551,615");
    }

    proptest! {
        #[test]
        fn removing_the_commas_gives_the_number_back(shillings in any::<u64>()) {
            let text = format_kes(shillings);
            let number = text.strip_prefix("KES ").unwrap();
            prop_assert_eq!(number.replace(',', "").parse::<u64>().unwrap(), shillings);
            // Groups after the first are exactly three digits; the first is one to three.
            let groups: Vec<&str> = number.split(',').collect();
            prop_assert!((1..=3).contains(&groups[0].len()));
            prop_assert!(groups[1..].iter().all(|g| g.len() == 3));
        }
    }
}
