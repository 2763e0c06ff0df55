//! CronJob schedules and time zones, checked as kube-apiserver checks them: the schedule with
//! the standard cron parser (robfig/cron's `ParseStandard`: five fields — minute, hour, day
//! of month, month, day of week — or a descriptor such as `@hourly`), the time zone by its
//! shape (an IANA name such as `Europe/Berlin`; the server does not load the zone database,
//! which a VM image may not carry).

/// One schedule field: its name and allowed range, and names for values (months, days).
struct Field {
    name: &'static str,
    min: u32,
    max: u32,
    names: &'static [&'static str],
}

const MONTHS: [&str; 12] = [
    "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
];
const DAYS: [&str; 7] = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"];

const FIELDS: [Field; 5] = [
    Field {
        name: "minute",
        min: 0,
        max: 59,
        names: &[],
    },
    Field {
        name: "hour",
        min: 0,
        max: 23,
        names: &[],
    },
    Field {
        name: "day of month",
        min: 1,
        max: 31,
        names: &[],
    },
    Field {
        name: "month",
        min: 1,
        max: 12,
        names: &MONTHS,
    },
    Field {
        name: "day of week",
        min: 0,
        max: 6,
        names: &DAYS,
    },
];

/// The descriptors a schedule may be instead of five fields.
const DESCRIPTORS: [&str; 7] = [
    "@yearly",
    "@annually",
    "@monthly",
    "@weekly",
    "@daily",
    "@midnight",
    "@hourly",
];

/// Checks a schedule; the error says what is wrong, as the cron parser words it.
pub fn check_schedule(schedule: &str) -> Result<(), String> {
    if schedule.contains("TZ") {
        return Err("cannot use TZ or CRON_TZ in schedule, use timeZone field instead".into());
    }
    let schedule = schedule.trim();
    if schedule.starts_with('@') {
        if DESCRIPTORS.contains(&schedule) {
            return Ok(());
        }
        if let Some(every) = schedule.strip_prefix("@every ") {
            return check_duration(every.trim());
        }
        return Err(format!("unrecognized descriptor: {schedule}"));
    }
    let parts: Vec<&str> = schedule.split_whitespace().collect();
    if parts.len() != FIELDS.len() {
        return Err(format!(
            "expected exactly 5 fields, found {}: {parts:?}",
            parts.len()
        ));
    }
    for (part, field) in parts.iter().zip(&FIELDS) {
        for range in part.split(',') {
            check_range(range, field).map_err(|e| format!("{} field: {e}", field.name))?;
        }
    }
    Ok(())
}

/// `*`, `?`, `a`, `a-b`, each optionally `/step`.
fn check_range(expr: &str, field: &Field) -> Result<(), String> {
    let (range, step) = match expr.split_once('/') {
        Some((r, s)) => (r, Some(s)),
        None => (expr, None),
    };
    let (start, end) = match range {
        "*" | "?" => (field.min, field.max),
        _ => match range.split_once('-') {
            Some((a, b)) => (value(a, field)?, value(b, field)?),
            None => {
                let v = value(range, field)?;
                // `a/step` runs from a to the field's maximum.
                (v, if step.is_some() { field.max } else { v })
            }
        },
    };
    if start < field.min {
        return Err(format!(
            "beginning of range ({start}) below minimum ({}): {expr}",
            field.min
        ));
    }
    if end > field.max {
        return Err(format!(
            "end of range ({end}) above maximum ({}): {expr}",
            field.max
        ));
    }
    if start > end {
        return Err(format!(
            "beginning of range ({start}) beyond end of range ({end}): {expr}"
        ));
    }
    if let Some(step) = step {
        match step.parse::<u32>() {
            Ok(0) => return Err(format!("step of range should be a positive number: {expr}")),
            Ok(_) => {}
            Err(_) => return Err(format!("failed to parse int from {step}: {expr}")),
        }
    }
    Ok(())
}

fn value(text: &str, field: &Field) -> Result<u32, String> {
    let lower = text.to_ascii_lowercase();
    if let Some(i) = field.names.iter().position(|n| *n == lower) {
        return Ok(i as u32 + field.min);
    }
    text.parse::<u32>()
        .map_err(|_| format!("failed to parse int from {text}"))
}

/// A Go duration as `@every` takes it: numbers with units h, m, s, ms, us, ns.
fn check_duration(text: &str) -> Result<(), String> {
    let bad = || format!("failed to parse duration @every {text}: invalid duration");
    let mut rest = text;
    if rest.is_empty() {
        return Err(bad());
    }
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(bad)?;
        if digits == 0 {
            return Err(bad());
        }
        rest = &rest[digits..];
        let unit = ["ns", "us", "µs", "ms", "h", "m", "s"]
            .into_iter()
            .find(|u| rest.starts_with(u))
            .ok_or_else(bad)?;
        rest = &rest[unit.len()..];
    }
    Ok(())
}

/// Checks a CronJob `timeZone` as kube-apiserver does, apart from loading the zone.
pub fn check_time_zone(tz: &str) -> Result<(), String> {
    if tz.is_empty() {
        return Err("timeZone must be nil or non-empty string".into());
    }
    let part_ok = |p: &str| {
        p != "."
            && p != ".."
            && !p.starts_with('-')
            && (1..=14).contains(&p.len())
            && p.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | '+'))
    };
    if !tz.split('/').all(part_ok) {
        return Err(format!("unknown time zone {tz}"));
    }
    if tz.eq_ignore_ascii_case("local") {
        return Err(
            "timeZone must be an explicit time zone as defined in https://www.iana.org/time-zones"
                .into(),
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn standard_schedules_and_descriptors_pass() {
        for s in [
            "*/5 * * * *",
            "0 0 * * *",
            "15,45 8-18/2 1-15 JAN-jun mon-FRI",
            "0 12 ? * 0",
            "30 2 * * sun",
            "@hourly",
            "@daily",
            "@annually",
            "@every 1h30m",
        ] {
            assert_eq!(check_schedule(s), Ok(()), "{s}");
        }
    }

    #[test]
    fn bad_schedules_fail_with_the_reason() {
        for (s, why) in [
            ("* * * *", "expected exactly 5 fields, found 4"),
            ("60 * * * *", "end of range (60) above maximum (59)"),
            ("* * 0 * *", "beginning of range (0) below minimum (1)"),
            ("5-2 * * * *", "beyond end of range"),
            ("*/0 * * * *", "step of range should be a positive number"),
            ("* * * foo *", "failed to parse int from foo"),
            ("* * * * 7", "above maximum (6)"),
            ("@sometimes", "unrecognized descriptor"),
            ("@every soon", "failed to parse duration"),
            ("TZ=UTC 0 * * * *", "use timeZone field instead"),
        ] {
            let err = check_schedule(s).expect_err(s);
            assert!(err.contains(why), "{s}: {err}");
        }
    }

    #[test]
    fn time_zones_by_shape() {
        for tz in [
            "Etc/UTC",
            "America/Argentina/Buenos_Aires",
            "UTC",
            "Etc/GMT+5",
        ] {
            assert_eq!(check_time_zone(tz), Ok(()), "{tz}");
        }
        for tz in [
            "",
            "Local",
            "Europe/../etc",
            "Not A Zone",
            "-Europe/Berlin",
            "Europe/Averyveryverylongcity",
        ] {
            assert!(check_time_zone(tz).is_err(), "{tz}");
        }
    }
}
