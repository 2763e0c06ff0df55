//! The host's TSC frequency, for TCG guests on `microvm`.
//!
//! Under TCG a guest's `rdtsc` returns the host's TSC, so the guest's TSC runs at the host's
//! rate. On `q35` the guest kernel calibrates it against the HPET or the ACPI PM timer;
//! `microvm` has neither, calibration against the PIT fails under TCG's uneven speed, and
//! the kernel would be left without a usable clock. The harness therefore measures the rate
//! once per process and tells the guest (`tsc_early_khz=`, see [`super::qemu`]).
//!
//! Measured against `CLOCK_MONOTONIC_RAW` over [`WINDOW`]; each end is the tightest of a few
//! paired reads, so a preemption between the two reads of a pair does not skew it. The
//! result is good to a few tens of ppm, which is what the guest's clock drifts by.

use std::sync::OnceLock;
use std::time::Duration;

/// How long the measurement runs.
pub const WINDOW: Duration = Duration::from_millis(25);

/// The host's TSC frequency in kHz, measured on first use; `None` where there is no TSC
/// to read (not x86_64).
pub fn host_khz() -> Option<u64> {
    static KHZ: OnceLock<Option<u64>> = OnceLock::new();
    *KHZ.get_or_init(measure)
}

#[cfg(target_arch = "x86_64")]
fn measure() -> Option<u64> {
    use rustix::time::{ClockId, clock_gettime};
    let nanos = || {
        let t = clock_gettime(ClockId::MonotonicRaw);
        t.tv_sec as i128 * 1_000_000_000 + t.tv_nsec as i128
    };
    // SAFETY: `rdtsc` has no preconditions on x86_64; it only reads the counter.
    let tsc = || unsafe { core::arch::x86_64::_rdtsc() } as i128;
    // The (tsc, ns) pair whose two TSC reads around the clock read are closest.
    let pair = || {
        (0..5)
            .map(|_| {
                let before = tsc();
                let ns = nanos();
                let after = tsc();
                (after - before, (before + after) / 2, ns)
            })
            .min_by_key(|(width, _, _)| *width)
            .map(|(_, tsc, ns)| (tsc, ns))
            .expect("five samples")
    };
    let (tsc0, ns0) = pair();
    std::thread::sleep(WINDOW);
    let (tsc1, ns1) = pair();
    khz(tsc1 - tsc0, ns1 - ns0)
}

#[cfg(not(target_arch = "x86_64"))]
fn measure() -> Option<u64> {
    None
}

/// kHz from `ticks` counted in `nanos` nanoseconds, rounded; `None` for nonsense.
fn khz(ticks: i128, nanos: i128) -> Option<u64> {
    if ticks <= 0 || nanos <= 0 {
        return None;
    }
    u64::try_from((ticks * 1_000_000 + nanos / 2) / nanos).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn khz_is_ticks_per_millisecond() {
        assert_eq!(khz(2_297_533_000, 1_000_000_000), Some(2_297_533));
        assert_eq!(khz(57_438, 25_000), Some(2_297_520));
        assert_eq!(khz(0, 1), None);
        assert_eq!(khz(1, 0), None);
    }

    #[test]
    #[cfg(target_arch = "x86_64")]
    fn host_tsc_runs_at_a_plausible_rate() {
        let khz = host_khz().expect("x86_64 has a TSC");
        // Any x86 TSC of the last two decades: between 500 MHz and 10 GHz.
        assert!((500_000..10_000_000).contains(&khz), "{khz} kHz");
        // A second measurement agrees to within 0.1 %.
        let again = measure().unwrap();
        let diff = khz.abs_diff(again) as f64 / khz as f64;
        assert!(diff < 0.001, "{khz} vs {again} kHz");
    }
}
