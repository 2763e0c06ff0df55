//! `support::kubectl_log`: client-go's rate-limiter waits read from kubectl's log, in both
//! of its formats (the bench reports their sum next to kubectl's wall time).

use crate::support::kubectl_log::{go_duration_ms, throttled_ms};

#[test]
fn sums_waits_in_both_client_go_formats() {
    let old = "I1124 09:50:01.123456   42 request.go:629] Waited for 107.65ms due to client-side throttling, not priority and fairness, request: GET:https://127.0.0.1:6443/api/v1/pods?limit=500\n";
    let new = "I1124 12:06:00.000000   42 request.go:683] \"Waited before sending request\" delay=\"174.158842ms\" reason=\"client-side throttling, not priority and fairness\" verb=\"GET\" URL=\"https://127.0.0.1:6443/api/v1/pods?limit=500\"\n";
    let other = "I1124 12:06:00.100000   42 round_trippers.go:553] GET https://127.0.0.1:6443/api/v1/pods?limit=500 200 OK in 12 milliseconds\n";
    assert!((throttled_ms(old) - 107.65).abs() < 1e-9);
    assert!((throttled_ms(new) - 174.158842).abs() < 1e-9);
    let mixed = format!("{old}{other}{new}{new}");
    assert!((throttled_ms(&mixed) - (107.65 + 2.0 * 174.158842)).abs() < 1e-9);
    assert_eq!(throttled_ms(other), 0.0);
    assert!(throttled_ms("").is_sign_positive());
}

#[test]
fn parses_go_durations() {
    assert_eq!(go_duration_ms("1.5s"), Some(1500.0));
    assert_eq!(go_duration_ms("1m2.5s"), Some(62_500.0));
    assert_eq!(go_duration_ms("850µs"), Some(0.85));
    assert_eq!(go_duration_ms("12ms"), Some(12.0));
    assert_eq!(go_duration_ms("12"), None);
    assert_eq!(go_duration_ms("ms"), None);
    assert_eq!(go_duration_ms(""), None);
}
