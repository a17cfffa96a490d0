//! The built-in routing rules against requests written as customers write them
//! (`tests/routing/requests.tsv`): every one must land in its expected category, priority
//! and tier. The accuracy is printed for the closing note and the README.

use helpdesk::routing::{RouteInput, Rules};

#[test]
fn customer_requests_route_to_the_expected_category_priority_and_tier() {
    let table = include_str!("../routing/requests.tsv");
    let rules = Rules::new(Vec::new(), true);
    let mut total = 0;
    let mut wrong = Vec::new();
    for line in table
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
    {
        let cols: Vec<&str> = line.split('\t').collect();
        assert_eq!(cols.len(), 5, "malformed row: {line}");
        let input = RouteInput {
            subject: cols[0],
            text: cols[1],
            from: None,
            recipients: &[],
            has_attachment: false,
            headers: &[],
        };
        let got = rules.route(&input);
        total += 1;
        let got_row = format!("{}\t{}\t{}", got.category, got.priority, got.tier);
        let want_row = cols[2..].join("\t");
        if got_row != want_row {
            wrong.push(format!(
                "{} | {}: got {got_row} ({:?}), want {want_row}",
                cols[0], cols[1], got.matched
            ));
        }
    }
    println!("routing table: {}/{} correct", total - wrong.len(), total);
    assert!(
        total >= 40,
        "the table must hold at least 40 requests, has {total}"
    );
    assert!(wrong.is_empty(), "misrouted:\n{}", wrong.join("\n"));
}
